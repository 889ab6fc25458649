//! A request id for every request: generated here, returned in `x-request-id`, carried
//! in a task-local so error bodies and log spans can name it without threading it
//! through every function. The same layer writes the one log line per request (method,
//! route template, status, latency) and records the HTTP metrics, both by route
//! template rather than path so that ids in paths neither flood the log's fields nor
//! become label values.

use agentd_core::RequestId;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::metrics::RouteTemplate;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being served, if called within one.
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Names the invocation a request is about on its span, so every later line of the
/// request (and its closing line) carries `invocation_id`.
pub fn record_invocation(id: &agentd_core::InvocationId) {
    tracing::Span::current().record("invocation_id", id.as_str());
}

pub async fn middleware(request: Request, next: Next) -> Response {
    let id = RequestId::generate();
    // `tenant_id` is filled in once the caller is authenticated.
    let method = crate::metrics::method_label(request.method());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method,
        client_ip = crate::client_ip::current().map(tracing::field::display),
        tenant_id = tracing::field::Empty,
        invocation_id = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let mut response = CURRENT.scope(id.clone(), next.run(request).instrument(span.clone())).await;
    let took = started.elapsed();
    let route = match response.extensions_mut().remove::<RouteTemplate>() {
        Some(RouteTemplate(template)) => template,
        None => "unmatched".to_owned(),
    };
    let status = response.status().as_u16();
    span.in_scope(|| tracing::info!(route = %route, status, latency_ms = took.as_secs_f64() * 1000.0, "served"));
    agentd_control::metrics::http_request_served(method, route, status, took);
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
