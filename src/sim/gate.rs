//! The door every request to a simulated vendor goes through: counted, run
//! through the fault knobs, then answered by the vendor's handler (or not at
//! all, for an injected reset).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use super::conn::ConnHandle;
use super::faults::{FaultBoard, Verdict};
use super::stats::Stats;

/// What all the vendors of one sandbox share: counters, knobs, and the
/// signal that ends sleeping and hung requests at shutdown.
pub(crate) struct Front {
    pub(crate) faults: FaultBoard,
    pub(crate) stats: Stats,
    pub(crate) shutdown: CancellationToken,
}

impl Front {
    /// A front for `kinds` vendor kinds, numbered from 0, with no knob set.
    pub(crate) fn new(kinds: usize) -> Arc<Front> {
        Arc::new(Front {
            faults: FaultBoard::new(kinds),
            stats: Stats::new(kinds),
            shutdown: CancellationToken::new(),
        })
    }
}

/// One vendor kind's way in.
#[derive(Clone)]
pub(crate) struct Gate {
    kind: usize,
    front: Arc<Front>,
}

impl Gate {
    pub(crate) fn new(kind: usize, front: Arc<Front>) -> Gate {
        Gate { kind, front }
    }

    /// The kind's number, for its counters.
    pub(crate) fn kind(&self) -> usize {
        self.kind
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.front.stats
    }

    /// The path every vendor request takes: counted, run through the fault
    /// knobs, then answered by `handle` (which gets the `reject_auth` knob).
    pub(crate) async fn serve(
        &self,
        conn: &ConnHandle,
        handle: impl FnOnce(bool) -> Response,
    ) -> Response {
        let (kind, front) = (self.kind, &*self.front);
        front.stats.received(kind);
        let _in_flight = front.faults.enter(kind);
        match front.faults.check(kind, &front.shutdown).await {
            Verdict::Pass { reject_auth } => {
                let response = handle(reject_auth);
                front.stats.answered(kind, response.status().as_u16());
                response
            }
            Verdict::Respond(response) => {
                front.stats.answered(kind, response.status().as_u16());
                response
            }
            Verdict::Reset => {
                front.stats.reset_connection(kind);
                conn.reset();
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
