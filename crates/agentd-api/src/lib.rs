//! The REST front end of agentd: HTTP in, the domain layer (`agentd-control`) underneath.
//! It holds no domain logic: a handler parses its input into the domain's types,
//! authenticates and authorizes the caller (a [`Ctx`](agentd_control::Ctx) for exactly
//! the capability the operation takes), calls the operation, and maps the result to the
//! wire types of `agentd-api-types`. Every error leaves through [`ApiError`], which
//! chooses status codes and stable machine codes in one place.
//!
//! Surfaces, one module each: [`v1`] (the tenant REST API), [`worker`] (the protocol
//! remote workers pull runs with), and the operational probes.

mod client_ip;
mod error;
mod extract;
mod health;
pub mod metrics;
pub mod openapi;
mod rate_limit_headers;
mod request_id;
pub mod v1;
pub mod worker;

use agentd_control::Control;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

pub use client_ip::TrustedProxies;
pub use error::ApiError;
pub use extract::request_origin;
pub use health::Draining;
pub use metrics::{MetricsExporter, MetricsInstallError};

/// JSON bodies are small; uploads and memory store items get their own limits per route.
const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// What a memory store item's body may carry beside its value: namespace, key, `ttl_s`.
const MEMORY_ITEM_ENVELOPE: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub(crate) control: Control,
    pub(crate) metrics: Option<MetricsExporter>,
    pub(crate) draining: Draining,
}

/// How the HTTP side is deployed: what the domain layer need not know.
#[derive(Clone, Default)]
pub struct ApiOptions {
    /// Peers whose `X-Forwarded-For` names the client (a TLS proxy in front).
    pub trusted_proxies: TrustedProxies,
    /// Serves `GET /metrics` when set.
    pub metrics: Option<MetricsExporter>,
    /// Makes `/readyz` answer `503` once started (a graceful shutdown).
    pub draining: Draining,
    /// Pages served beside `/v1` (the web dashboard), under the same request ids, client
    /// addresses and limits as the API.
    pub pages: Option<Router>,
}

/// Every route of the server. Serve it with connect info
/// (`into_make_service_with_connect_info::<SocketAddr>`) so requests know their client.
pub fn router(control: Control, options: ApiOptions) -> Router {
    let settings = control.settings();
    let upload = usize::try_from(settings.max_upload_bytes).unwrap_or(usize::MAX);
    // Bodies are bounded before any tenant is known, so by the default item limit: a
    // tenant whose own limit is higher still writes values up to the default's size.
    let item = usize::try_from(settings.default_limits.max_store_item_bytes).unwrap_or(usize::MAX);
    let memory_item = item.max(JSON_BODY_LIMIT).saturating_add(MEMORY_ITEM_ENVELOPE);
    let limits = v1::BodyLimits { upload, memory_item };
    let state = AppState { control, metrics: options.metrics, draining: options.draining };
    let api = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape))
        .merge(openapi::routes())
        .nest("/v1", v1::routes(limits).merge(worker::routes()))
        .with_state(state);
    let app = match options.pages {
        Some(pages) => api.merge(pages),
        None => api,
    };
    app.route_layer(axum::middleware::from_fn(metrics::route_template))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(rate_limit_headers::middleware))
        .layer(axum::middleware::from_fn(request_id::middleware))
        .layer(axum::middleware::from_fn_with_state(options.trusted_proxies, client_ip::middleware))
}

/// A panicking handler still answers with a problem document (and is logged once).
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::internal(std::io::Error::other("a request handler panicked")).into_response()
}

async fn not_found() -> ApiError {
    ApiError::request(
        axum::http::StatusCode::NOT_FOUND,
        "route_not_found",
        "no such route; every route is listed at /docs (and /openapi.json)",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::request(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}
