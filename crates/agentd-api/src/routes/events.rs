//! `GET /v1/invocations/{id}/events`: the invocation's events as Server-Sent Events, live.
//! Each SSE event carries `id: <seq>`, `event: <kind>` and the event as JSON; a client that
//! reconnects with `Last-Event-ID` (or `?after=SEQ`) resumes after that event. When the
//! invocation has ended, a last `event: end` with its final status closes the stream.
//!
//! The stream reads the store, never worker memory, so it works on any replica: new events
//! wake it through store signals (`LISTEN/NOTIFY` on PostgreSQL), with a re-read every
//! second as a backstop for a missed signal.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use agentd_core::{Event, InvocationId, Scope, TenantCtx};
use agentd_store::Signal;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::auth::Caller;
use crate::extract::ApiQuery;
use crate::{ApiError, AppState};

const BACKSTOP: Duration = Duration::from_secs(1);
const PAGE: u32 = 500;

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    after: Option<u64>,
}

pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let ctx = caller.authorize(Scope::Read)?;
    let id = super::path_invocation_id(&id)?;
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::bad_request("invalid_last_event_id", "Last-Event-ID must be the seq of an event")
        })?),
        None => None,
    };
    // Subscribe before the first read, so nothing appended in between is missed.
    let signals = state.store.subscribe();
    // Fails with 404 before any byte is streamed for a missing or foreign invocation.
    state.store.invocation_get(&ctx, &id).await?;
    let after = last_event_id.or(q.after).unwrap_or(0);
    let follow = Follow { state, ctx, id, after, signals, pending: VecDeque::new(), done: false };
    Ok(Sse::new(futures_util::stream::unfold(follow, |mut follow| async move {
        let next = follow.next().await?;
        Some((Ok(next), follow))
    }))
    .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Follow {
    state: AppState,
    ctx: TenantCtx,
    id: InvocationId,
    after: u64,
    signals: broadcast::Receiver<Signal>,
    pending: VecDeque<Event>,
    done: bool,
}

impl Follow {
    /// The next SSE event, or `None` once the end was sent.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(sse_event(&event));
            }
            if self.done {
                return None;
            }
            match self.step().await {
                Ok(Some(end)) => {
                    self.done = true;
                    return Some(end);
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(error = ?err, invocation = %self.id, "event stream stopped");
                    self.done = true;
                    let problem = serde_json::json!({"code": err.code(), "detail": err.to_string()});
                    return Some(SseEvent::default().event("error").data(problem.to_string()));
                }
            }
        }
    }

    /// Loads new events into `pending`; when there are none, returns the `end` event if the
    /// invocation is over, or waits for a change.
    async fn step(&mut self) -> Result<Option<SseEvent>, ApiError> {
        if self.load().await? {
            return Ok(None);
        }
        let invocation = self.state.store.invocation_get(&self.ctx, &self.id).await?;
        if invocation.status.is_terminal() {
            // The closing status event commits with the status, but it may have landed
            // between the read above and this one.
            if self.load().await? {
                return Ok(None);
            }
            let end = serde_json::json!({"status": invocation.status, "error": invocation.error});
            return Ok(Some(SseEvent::default().event("end").data(end.to_string())));
        }
        let id = &self.id;
        let woken = async {
            loop {
                match self.signals.recv().await {
                    Ok(Signal::EventsAppended(changed) | Signal::InvocationChanged(changed)) if &changed == id => {
                        return;
                    }
                    Ok(_) => continue,
                    // Lagged: we may have missed ours; re-read. Closed: the backstop covers it.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(BACKSTOP) => {}
        }
        Ok(None)
    }

    /// True when new events were found.
    async fn load(&mut self) -> Result<bool, ApiError> {
        let page = self.state.store.events_list(&self.ctx, &self.id, self.after, Some(PAGE)).await?;
        if let Some(last) = page.data.last() {
            self.after = last.seq;
        }
        let found = !page.data.is_empty();
        self.pending.extend(page.data);
        Ok(found)
    }
}

fn sse_event(event: &Event) -> SseEvent {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    SseEvent::default().id(event.seq.to_string()).event(event.kind.as_str()).data(data)
}
