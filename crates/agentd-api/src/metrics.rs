//! `GET /metrics`: the process's metrics in the Prometheus text format. The recorder
//! is installed once per process ([`MetricsExporter::install`]); the names and what
//! records them live in `agentd_control::metrics`. A scrape of the server also reads the
//! queue's depth from the store, so those gauges are fresh without a loop of their own.
//!
//! With a token set (`--metrics-token`), a scrape must send it as a bearer token; without
//! one the route is open, like most exporters: it carries no tenant's data (no label is
//! an id), only volumes. docs/OPERATIONS.md says so.

use std::sync::Arc;

use agentd_core::Secret;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// Latency buckets in seconds, from a fast route (a millisecond) to a long `?wait=`.
const SECONDS_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The installed recorder and who may read it.
#[derive(Clone)]
pub struct MetricsExporter {
    handle: PrometheusHandle,
    /// SHA-256 of the bearer token a scrape must send, if the operator set one.
    token_hash: Option<Arc<[u8; 32]>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot install the metrics recorder: {0}")]
pub struct MetricsInstallError(String);

impl MetricsExporter {
    /// Installs the process's Prometheus recorder (once per process).
    pub fn install(token: Option<&Secret>) -> Result<MetricsExporter, MetricsInstallError> {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .map_err(|e| MetricsInstallError(e.to_string()))?
            .install_recorder()
            .map_err(|e| MetricsInstallError(e.to_string()))?;
        agentd_control::metrics::describe();
        let token_hash = token.map(|t| Arc::new(Sha256::digest(t.expose().as_bytes()).into()));
        Ok(MetricsExporter { handle, token_hash })
    }

    /// Whether `headers` carry the token, when one is required.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token_hash else { return true };
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let sent: [u8; 32] = Sha256::digest(sent.as_bytes()).into();
        // Digests of equal length, compared without an early exit.
        sent.iter().zip(expected.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// The text exposition of every metric recorded so far.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// The answer to a scrape: `401` without the token, when one is required.
    fn scrape(&self, headers: &HeaderMap) -> Response {
        if !self.admits(headers) {
            return ApiError::request(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "this server's metrics need its metrics token as `Authorization: Bearer <token>`",
            )
            .into_response();
        }
        let mut response = self.render().into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
        response
    }

    /// A router serving only `GET /metrics`, for a process without the API (`agentd worker`).
    pub fn router(self) -> axum::Router {
        axum::Router::new().route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let exporter = self.clone();
                async move { exporter.scrape(&headers) }
            }),
        )
    }
}

/// The server's `GET /metrics`; `404` when the process has no exporter.
pub(crate) async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(exporter) = &state.metrics else {
        return crate::not_found().await.into_response();
    };
    if exporter.admits(&headers)
        && let Err(err) = state.control.observe_queue().await
    {
        // The other metrics are still worth having; the queue gauges keep their last value.
        tracing::warn!(error = ?err, "reading the queue for /metrics failed");
    }
    exporter.scrape(&headers)
}

/// The route template a request matched, carried out on its response so the outer
/// layers (the request log and the HTTP metrics) can name it; they see `unmatched` for
/// a request no route took.
#[derive(Clone)]
pub(crate) struct RouteTemplate(pub String);

/// Runs inside routing (a `route_layer`), where the matched template is known.
pub(crate) async fn route_template(request: Request, next: Next) -> Response {
    let template = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(template) = template {
        response.extensions_mut().insert(RouteTemplate(template));
    }
    response
}

/// A method as a bounded label value.
pub(crate) fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
