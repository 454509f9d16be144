//! `/_sandbox/*`: statistics and fault knobs over HTTP, for tests and
//! benchmarks that run the sandbox as a separate process. Unauthenticated:
//! the sandbox only listens on loopback.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::faults::FaultSettings;
use super::{Shared, wire};

#[derive(Deserialize)]
pub(crate) struct StatsQuery {
    /// `false` leaves out the per-invite record, which can be large.
    invites: Option<bool>,
}

pub(crate) async fn stats(State(app): State<Arc<Shared>>, Query(q): Query<StatsQuery>) -> Response {
    let snap = app.snapshot(q.invites.unwrap_or(true));
    wire::json(StatusCode::OK, wire::JSON, &snap, false)
}

pub(crate) async fn reset_stats(State(app): State<Arc<Shared>>) -> StatusCode {
    app.reset_stats();
    StatusCode::NO_CONTENT
}

pub(crate) async fn get_faults(State(app): State<Arc<Shared>>) -> Response {
    wire::json(StatusCode::OK, wire::JSON, &app.faults.get(), false)
}

/// Replaces all knobs with the body's; answers the settings now in force.
pub(crate) async fn set_faults(State(app): State<Arc<Shared>>, body: Bytes) -> Response {
    let refused = |msg: String| {
        let body = serde_json::json!({ "error": msg });
        wire::json(StatusCode::BAD_REQUEST, wire::JSON, &body, false)
    };
    let settings: FaultSettings = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return refused(e.to_string()),
    };
    if let Err(e) = app.faults.set(settings) {
        return refused(e);
    }
    wire::json(StatusCode::OK, wire::JSON, &app.faults.get(), false)
}

pub(crate) async fn health() -> Response {
    "ok\n".into_response()
}
