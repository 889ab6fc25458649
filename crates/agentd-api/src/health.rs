//! Liveness and readiness probes. `/healthz` answers while the process serves at all;
//! `/readyz` answers `200` only when every check passes (the store answers, its
//! migrations are current, the blob store takes writes, the server is not draining),
//! else `503`, with a body naming each check and why a failed one failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::AppState;

/// Set once a graceful shutdown begins: from then on `/readyz` answers `503` so load
/// balancers stop sending new work while requests in flight finish.
#[derive(Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = state.control.readiness().await;
    let draining = match state.draining.is_draining() {
        true => Err("the server is shutting down".to_owned()),
        false => Ok(()),
    };
    checks.push(agentd_control::ReadinessCheck { name: "draining", outcome: draining });
    let mut body = Map::new();
    let mut failed = Vec::new();
    for check in checks {
        let shown = match check.outcome {
            Ok(()) => json!({ "ok": true }),
            Err(detail) => {
                failed.push(check.name);
                json!({ "ok": false, "detail": detail })
            }
        };
        body.insert(check.name.to_owned(), shown);
    }
    let (status, word) = match failed.is_empty() {
        true => (StatusCode::OK, "ready"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
    };
    (status, Json(json!({ "status": word, "failed": failed, "checks": body }))).into_response()
}
