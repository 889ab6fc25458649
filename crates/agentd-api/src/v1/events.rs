//! `GET /v1/invocations/{id}/events`: the invocation's events as Server-Sent Events, live.
//! Each SSE event carries `id: <seq>`, `event: <kind>` and the event as JSON; a client that
//! reconnects with `Last-Event-ID` (or `?after=SEQ`) resumes after that event. When the
//! invocation has ended, a last `event: end` with its final status closes the stream.
//! Following is the domain's (`EventFollower`); this module only speaks SSE.

use std::convert::Infallible;
use std::time::Duration;

use agentd_api_types::Event;
use agentd_control::{EventFollower, Followed, Read};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use futures_util::Stream;
use serde::Deserialize;

use crate::extract::{ApiQuery, Caller, last_event_id, path_invocation_id};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/invocations/{id}/events", get(stream))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<u64>,
}

#[utoipa::path(
    get,
    operation_id = "events_stream",
    path = "/v1/invocations/{id}/events",
    tag = "invocations",
    summary = "An invocation's events, live (Server-Sent Events)",
    params(("id" = String, Path, description = "Invocation id"), EventsQuery, ("Last-Event-ID" = Option<String>, Header, description = "The last seq seen: resume after it")),
    responses((status = 200, description = "Server-Sent Events: each `data` is an Event as JSON, `id` its seq", body = String, content_type = "text/event-stream"))
)]
async fn stream(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let id = path_invocation_id(&id)?;
    let after = last_event_id(&headers)?.or(q.after).unwrap_or(0);
    // Fails with 404 before any byte is streamed for a missing or foreign invocation.
    let follower = state.control.follow_events(&ctx, &id, after).await?;
    // The guard rides in the stream's state: the stream counts as open until it is dropped.
    let open = agentd_control::metrics::OpenStream::open();
    let stream = futures_util::stream::unfold((Some(follower), open), |(follower, open)| async move {
        let mut follower: EventFollower = follower?;
        match follower.next().await {
            Ok(Some(Followed::Event(event))) => Some((Ok(sse_event(&event)), (Some(follower), open))),
            Ok(Some(Followed::End { status, error })) => {
                let end = serde_json::json!({"status": status, "error": error});
                Some((Ok(SseEvent::default().event("end").data(end.to_string())), (None, open)))
            }
            Ok(None) => None,
            Err(err) => Some((Ok(stream_failed(err.into(), "event stream stopped")), (None, open))),
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The last message of a stream the store failed under: `event: error` with the problem's
/// `code` and `detail`.
pub(crate) fn stream_failed(err: ApiError, what: &'static str) -> SseEvent {
    tracing::error!(error = ?err, "{what}");
    let (_, code) = err.status_and_code();
    let problem = serde_json::json!({"code": code, "detail": err.to_string()});
    SseEvent::default().event("error").data(problem.to_string())
}

fn sse_event(event: &Event) -> SseEvent {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    SseEvent::default().id(event.seq.to_string()).event(event.kind.as_str()).data(data)
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(stream))]
pub(super) struct Doc;
