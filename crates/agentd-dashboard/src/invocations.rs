//! Invocations: the filtered table, one invocation's page with live logs over SSE, the
//! answer box, and artifact downloads.

use std::convert::Infallible;
use std::time::Duration;

use agentd_control::{EventFollower, Followed, InvocationFilter, Invoke, Read};
use agentd_core::{Event, EventKind, InvocationStatus, PageBounds, Slug};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State as AxumState};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::Stream;
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::{Failure, signed_in};
use crate::pages::{Result, St, form, invocation_id, page_of, signed_in_page};
use crate::views::{badge, json};

#[derive(Deserialize)]
pub(crate) struct InvocationsQuery {
    agent: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

pub(crate) async fn invocations(
    AxumState(state): St,
    headers: HeaderMap,
    Query(q): Query<InvocationsQuery>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let ctx = viewer.principal.authorize::<Read>()?;
    let agent = q.agent.as_deref().filter(|a| !a.is_empty());
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    let filter = InvocationFilter {
        agent: agent.map(|a| Slug::parse(a).map_err(|e| Failure::bad_request(format!("agent: {e}")))).transpose()?,
        status: status
            .map(|s| InvocationStatus::parse(s).map_err(|e| Failure::bad_request(format!("status: {e}"))))
            .transpose()?,
        ..InvocationFilter::default()
    };
    let list =
        state.control.invocations_list(&ctx, &filter, &page_of(q.cursor.as_deref(), PageBounds::RESOURCES)?).await?;
    let next = list.next_cursor.as_ref().map(|c| {
        let mut query = format!("/invocations?cursor={c}");
        if let Some(a) = agent {
            query.push_str(&format!("&agent={a}"));
        }
        if let Some(s) = filter.status {
            query.push_str(&format!("&status={}", s.as_str()));
        }
        query
    });
    let body = html! {
        form.filters method="get" action="/invocations" {
            label for="agent" { "Agent" }
            input #agent type="text" name="agent" value=(agent.unwrap_or(""));
            label for="status" { "Status" }
            select #status name="status" {
                option value="" { "any" }
                @for s in InvocationStatus::ALL {
                    option value=(s.as_str()) selected[filter.status == Some(*s)] { (s.as_str()) }
                }
            }
            button type="submit" { "Filter" }
        }
        @if list.data.is_empty() { p.muted { "No invocations." } } @else {
            div.scroll { table {
                thead { tr { th { "Invocation" } th { "Agent" } th { "Status" } th { "Created" } } }
                tbody {
                    @for i in &list.data {
                        tr {
                            td { a href={ "/invocations/" (i.id) } { code { (i.id) } } }
                            td { (i.agent) " v" (i.version) }
                            td { (badge(i.status.as_str())) }
                            td { (i.created_at) }
                        }
                    }
                }
            } }
        }
        @if let Some(next) = next { p { a href=(next) { "Next page" } } }
    };
    signed_in_page(&state, &viewer, "Invocations", body).await
}

fn log_line(event: &Event) -> Markup {
    let text = match (&event.message, &event.data) {
        (Some(m), _) => m.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => String::new(),
    };
    html! {
        li class={ "ev k-" (event.kind.as_str()) " st-" (event.stream.as_str()) } data-seq=(event.seq) {
            span.kind { (event.kind.as_str()) } " " span.text { (text) }
        }
    }
}

pub(crate) async fn invocation(AxumState(state): St, headers: HeaderMap, Path(id): Path<String>) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let ctx = viewer.principal.authorize::<Read>()?;
    let id = invocation_id(&id)?;
    // Events first: a change after them comes over the stream (and reloads the page), so
    // the page never shows a status older than the events it lists.
    let events = state.control.invocation_logs(&ctx, &id, &page_of(None, PageBounds::EVENTS)?).await?;
    let inv = state.control.invocation_get(&ctx, &id).await?;
    let after = events.data.last().map_or(0, |e| e.seq);
    let artifacts = state.control.artifacts_list(&ctx, &id, &page_of(None, PageBounds::RESOURCES)?).await?;
    let question = match inv.status {
        InvocationStatus::WaitingForInput => {
            state.control.interrupts(&ctx, &id).await?.into_iter().rev().find(|q| q.answer.is_none())
        }
        _ => None,
    };
    let usage = serde_json::to_value(&inv.usage).unwrap_or_default();
    let body = html! {
        dl.facts {
            dt { "Status" } dd #status data-status=(inv.status.as_str()) { (badge(inv.status.as_str())) }
            dt { "Agent" } dd { a href={ "/agents/" (inv.agent) } { (inv.agent) } " v" (inv.version) }
            @if let Some(t) = &inv.thread_id { dt { "Thread" } dd { code { (t) } } }
            dt { "Priority" } dd { (inv.priority) }
            dt { "Attempt" } dd { (inv.attempt) " of " (inv.max_attempts) }
            dt { "Created" } dd { (inv.created_at) }
            @if let Some(t) = inv.started_at { dt { "Started" } dd { (t) } }
            @if let Some(t) = inv.finished_at { dt { "Finished" } dd { (t) } }
        }
        @if let Some(q) = &question {
            section.answer {
                h2 { "The agent asks" }
                (json(&q.value))
                form.card method="post" action={ "/invocations/" (inv.id) "/respond" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for="answer" { "Your answer (JSON, or plain text sent as a string)" }
                    textarea #answer name="answer" rows="3" required {}
                    button type="submit" { "Answer" }
                }
            }
        }
        section { h2 { "Input" } (json(&inv.input)) }
        @if let Some(out) = &inv.output { section { h2 { "Output" } (json(out)) } }
        @if let Some(err) = &inv.error {
            section { h2 { "Error" } p.error { code { (err.code) } ": " (err.message) } }
        }
        section { h2 { "Usage" } (json(&usage)) }
        @if !artifacts.data.is_empty() {
            section {
                h2 { "Artifacts" }
                ul { @for a in &artifacts.data {
                    li { a href={ "/invocations/" (inv.id) "/artifacts/" (a.name) } download { (a.name) } " (" (a.size) " B)" }
                } }
            }
        }
        section {
            h2 { "Logs" }
            ol #logs.logs aria-live="polite" data-events={ "/invocations/" (inv.id) "/events?after=" (after) }
                data-terminal=(inv.status.is_terminal()) {
                @for e in &events.data { (log_line(e)) }
            }
        }
    };
    signed_in_page(&state, &viewer, &format!("Invocation {}", inv.id), body).await
}

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    after: Option<u64>,
}

/// The invocation's events, live, for the page's script: the domain's event follower as
/// Server-Sent Events (`id` the seq, so a reconnecting `EventSource` resumes with
/// `Last-Event-ID` without a gap). Each `data` is the line as the page shows it.
pub(crate) async fn events(
    AxumState(state): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = std::result::Result<SseEvent, Infallible>>>> {
    let viewer = signed_in(&state, &headers).await?;
    let ctx = viewer.principal.authorize::<Read>()?;
    let id = invocation_id(&id)?;
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let after = last.or(q.after).unwrap_or(0);
    let follower = state.control.follow_events(&ctx, &id, after).await?;
    let stream = futures_util::stream::unfold(Some(follower), |follower| async move {
        let mut follower: EventFollower = follower?;
        match follower.next().await {
            Ok(Some(Followed::Event(event))) => {
                let line = log_line(&event).into_string();
                let sse = SseEvent::default().id(event.seq.to_string()).event(event_name(event.kind)).data(line);
                Some((Ok(sse), Some(follower)))
            }
            Ok(Some(Followed::End { status, .. })) => {
                Some((Ok(SseEvent::default().event("end").data(status.as_str())), None))
            }
            Ok(None) => None,
            Err(err) => {
                tracing::error!(error = ?err, "dashboard event stream stopped");
                Some((Ok(SseEvent::default().event("failed").data("the event stream stopped")), None))
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A status change or a question reloads the page (it shows them); the rest are lines.
fn event_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Status | EventKind::Interrupt => "change",
        _ => "line",
    }
}

#[derive(Deserialize)]
pub(crate) struct AnswerForm {
    csrf: Option<String>,
    answer: Option<String>,
}

pub(crate) async fn respond(
    AxumState(state): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    parsed: std::result::Result<Form<AnswerForm>, FormRejection>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let f = form(parsed)?;
    viewer.check_csrf(f.csrf.as_deref())?;
    let ctx = viewer.principal.authorize::<Invoke>()?;
    let id = invocation_id(&id)?;
    let raw = f.answer.unwrap_or_default();
    let answer = serde_json::from_str(raw.trim()).unwrap_or(serde_json::Value::String(raw));
    state.control.respond(&ctx, &id, answer, None).await?;
    Ok(Redirect::to(&format!("/invocations/{id}")).into_response())
}

/// An artifact's bytes, as a download (never rendered inline: it is the agent's content).
pub(crate) async fn artifact(
    AxumState(state): St,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let ctx = viewer.principal.authorize::<Read>()?;
    let id = invocation_id(&id)?;
    let content = state.control.artifact_read(&ctx, &id, &name).await?;
    let file = name.rsplit('/').next().unwrap_or("artifact").replace(['"', '\\', '\r', '\n'], "_");
    let disposition = header::HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
        .unwrap_or_else(|_| header::HeaderValue::from_static("attachment"));
    let headers = [
        (header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream")),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    Ok((headers, content.bytes).into_response())
}
