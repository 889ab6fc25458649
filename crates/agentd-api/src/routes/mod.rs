//! The route table. One file per resource; each handler is extract → authorize → call
//! the domain → map to a view.

mod accounts;
mod agents;
mod artifacts;
mod events;
mod health;
mod invocations;
mod keys;
mod worker;

use agentd_core::Slug;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::{ApiError, AppState, request_id};

/// JSON bodies are small; bundle uploads get their own, larger limit.
const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// A remote worker sends buffered output in batches (lines are capped at 64 KiB).
const WORKER_EVENTS_LIMIT: usize = 64 * 1024 * 1024;
/// One artifact upload; the sandbox caps `/outputs` well below this.
const WORKER_ARTIFACT_LIMIT: usize = 1024 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let upload_limit = usize::try_from(state.settings.max_upload_bytes).unwrap_or(usize::MAX);
    let v1 = Router::new()
        .route("/signup", post(accounts::signup))
        .route("/auth/login", post(accounts::login))
        .route("/me", get(accounts::me))
        .route("/api-keys", get(keys::list).post(keys::create))
        .route("/api-keys/{id}", axum::routing::delete(keys::revoke))
        .route("/agents", get(agents::list).post(agents::create))
        .route("/agents/{slug}", get(agents::show).patch(agents::patch).delete(agents::delete))
        .route(
            "/agents/{slug}/versions",
            get(agents::versions).post(agents::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/agents/{slug}/versions/{n}/activate", post(agents::activate))
        .route("/agents/{slug}/invoke", post(invocations::invoke))
        .route("/invocations", get(invocations::list))
        .route("/invocations/{id}", get(invocations::show))
        .route("/invocations/{id}/logs", get(invocations::logs))
        .route("/invocations/{id}/events", get(events::stream))
        .route("/invocations/{id}/cancel", post(invocations::cancel))
        .route("/invocations/{id}/artifacts", get(artifacts::list))
        .route("/invocations/{id}/artifacts/{*name}", get(artifacts::download))
        .route("/worker/claim", post(worker::claim))
        .route("/worker/heartbeat", post(worker::heartbeat))
        .route("/worker/events", post(worker::events).layer(DefaultBodyLimit::max(WORKER_EVENTS_LIMIT)))
        .route("/worker/complete", post(worker::complete))
        .route("/worker/release", post(worker::release))
        .route("/worker/bundles/{digest}", get(worker::bundle))
        .route("/worker/artifacts", post(worker::artifact).layer(DefaultBodyLimit::max(WORKER_ARTIFACT_LIMIT)));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/v1", v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(request_id::middleware))
        .with_state(state)
}

/// A panicking handler still answers with a problem document (and is logged once).
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::internal(std::io::Error::other("a request handler panicked")).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "route_not_found", "no such route; see /v1 in the API reference")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// A slug from the path. One that cannot be valid cannot exist, so it is `404`.
fn path_slug(raw: &str, what: &str) -> Result<Slug, ApiError> {
    Slug::parse(raw).map_err(|_| ApiError::not_found(what))
}

/// An invocation id from the path. One that cannot be valid cannot exist, so it is `404`.
fn path_invocation_id(raw: &str) -> Result<agentd_core::InvocationId, ApiError> {
    agentd_core::InvocationId::parse(raw).map_err(|_| ApiError::not_found("invocation"))
}

/// `?limit=&cursor=` on every list.
#[derive(Debug, Default, serde::Deserialize)]
struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}
