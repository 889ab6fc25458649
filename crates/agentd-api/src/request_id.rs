//! A request id for every request: generated here, returned in `x-request-id`, carried
//! in a task-local so error bodies and log spans can name it without threading it
//! through every function.

use agentd_core::RequestId;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being served, if called within one.
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

pub async fn middleware(request: Request, next: Next) -> Response {
    let id = RequestId::generate();
    // `tenant_id` is filled in once the caller is authenticated.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        client_ip = crate::client_ip::current().map(tracing::field::display),
        tenant_id = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let mut response = CURRENT.scope(id.clone(), next.run(request).instrument(span.clone())).await;
    span.in_scope(|| {
        tracing::info!(status = response.status().as_u16(), latency_ms = started.elapsed().as_millis() as u64, "served")
    });
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
