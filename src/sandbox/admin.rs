//! `/_sandbox/*`: statistics and fault knobs over HTTP, for tests and
//! benchmarks that run the sandbox as a separate process. Unauthenticated:
//! the sandbox only listens on loopback.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::knobs::FaultSettings;
use super::shared::Shared;
use crate::sim::wire;

/// The admin routes.
pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sandbox/stats", get(stats))
        .route("/_sandbox/reset-stats", post(reset_stats))
        .route("/_sandbox/faults", get(get_faults).post(set_faults))
        .route("/_sandbox/health", get(health))
        .with_state(shared)
}

#[derive(Deserialize)]
struct StatsQuery {
    /// `false` leaves out the per-invite record, which can be large.
    invites: Option<bool>,
}

async fn stats(State(app): State<Arc<Shared>>, Query(q): Query<StatsQuery>) -> Response {
    let snap = app.snapshot(q.invites.unwrap_or(true));
    wire::json(StatusCode::OK, wire::JSON, &snap, false)
}

async fn reset_stats(State(app): State<Arc<Shared>>) -> StatusCode {
    app.reset_stats();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(app): State<Arc<Shared>>) -> Response {
    wire::json(StatusCode::OK, wire::JSON, &app.faults(), false)
}

/// Replaces all knobs with the body's; answers the settings now in force.
async fn set_faults(State(app): State<Arc<Shared>>, body: Bytes) -> Response {
    let refused = |msg: String| {
        let body = serde_json::json!({ "error": msg });
        wire::json(StatusCode::BAD_REQUEST, wire::JSON, &body, false)
    };
    let settings: FaultSettings = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return refused(e.to_string()),
    };
    if let Err(e) = app.set_faults(settings) {
        return refused(e);
    }
    wire::json(StatusCode::OK, wire::JSON, &app.faults(), false)
}

async fn health() -> Response {
    "ok\n".into_response()
}
