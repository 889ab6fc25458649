//! The pages: each parses its input, authorizes through the domain, calls it and renders.

use std::convert::Infallible;
use std::time::Duration;

use agentd_control::{
    ControlError, EventFollower, Followed, Invalid, InvocationFilter, Invoke, InvokeSpec, Login, Read, Signup, input,
};
use agentd_core::{
    AgentStatus, Cursor, Event, EventKind, InvocationId, InvocationStatus, PageBounds, PageRequest, ResourceKind, Slug,
};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State as AxumState};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::Stream;
use maud::{Markup, html};
use serde::Deserialize;

use crate::State;
use crate::auth::{CSRF_COOKIE, Failure, SESSION_COOKIE, Viewer, cookie, random_token, same, set_cookie, signed_in};
use crate::views::{Nav, badge, json, page, render};

pub(crate) type Result<T> = std::result::Result<T, Failure>;
type St = AxumState<State>;

pub(crate) fn form<T>(parsed: std::result::Result<Form<T>, FormRejection>) -> Result<T> {
    parsed.map(|Form(f)| f).map_err(|e| Failure::bad_request(e.body_text()))
}

pub(crate) fn page_of<C: Cursor>(cursor: Option<&str>, bounds: PageBounds) -> Result<PageRequest<C>> {
    let cursor = cursor.filter(|c| !c.is_empty());
    PageRequest::parse(None, cursor, bounds).map_err(|e| ControlError::from(Invalid::from(e)).into())
}

fn slug_of(raw: &str, kind: ResourceKind) -> Result<Slug> {
    Slug::parse(raw).map_err(|_| ControlError::NotFound(kind).into())
}

fn invocation_id(raw: &str) -> Result<InvocationId> {
    InvocationId::parse(raw).map_err(|_| ControlError::NotFound(ResourceKind::Invocation).into())
}

/// Renders a signed-in page: the frame names the workspace.
pub(crate) async fn signed_in_page(state: &State, viewer: &Viewer, title: &str, body: Markup) -> Result<Response> {
    let me = state.control.me(&viewer.principal.authorize::<Read>()?).await?;
    let nav = Nav { workspace: &me.tenant.name, csrf: &viewer.csrf };
    Ok(render(page(title, Some(nav), body)))
}

pub(crate) async fn home(AxumState(state): St, headers: HeaderMap) -> Result<Redirect> {
    Ok(match crate::auth::viewer(&state, &headers).await? {
        Some(_) => Redirect::to("/agents"),
        None => Redirect::to("/login"),
    })
}

// ---- Sign up, log in, log out ----

/// A signed-out form: its CSRF token is the `agentd_csrf` cookie's (set here if absent).
pub(crate) fn signed_out_form(
    state: &State,
    headers: &HeaderMap,
    title: &str,
    body: impl FnOnce(&str) -> Markup,
) -> Response {
    let token = cookie(headers, CSRF_COOKIE).map_or_else(random_token, str::to_owned);
    let mut response = render(page(title, None, body(&token)));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(state, CSRF_COOKIE, &token));
    response
}

pub(crate) fn check_signed_out_csrf(headers: &HeaderMap, sent: Option<&str>) -> Result<()> {
    match (cookie(headers, CSRF_COOKIE), sent) {
        (Some(expected), Some(sent)) if same(expected, sent) => Ok(()),
        _ => Err(Failure::Csrf),
    }
}

/// Sets the session cookie and goes to `to`.
pub(crate) fn start_session(state: &State, token: &str, to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(state, SESSION_COOKIE, token));
    response
}

pub(crate) async fn signup_form(AxumState(state): St, headers: HeaderMap) -> Response {
    signed_out_form(&state, &headers, "Sign up", |csrf| {
        html! {
            form.card method="post" action="/signup" {
                input type="hidden" name="csrf" value=(csrf);
                label for="email" { "Email" }
                input #email type="email" name="email" autocomplete="email" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="new-password" minlength="8" required;
                label for="workspace_name" { "Workspace name" }
                input #workspace_name type="text" name="workspace_name" required;
                label for="workspace_slug" { "Workspace slug" }
                input #workspace_slug type="text" name="workspace_slug" pattern="[a-z0-9][a-z0-9-]*" required;
                button type="submit" { "Create workspace" }
            }
            p { "Already have an account? " a href="/login" { "Log in" } }
        }
    })
}

#[derive(Deserialize)]
pub(crate) struct SignupForm {
    csrf: Option<String>,
    email: String,
    password: String,
    workspace_name: String,
    workspace_slug: String,
}

pub(crate) async fn signup(
    AxumState(state): St,
    headers: HeaderMap,
    parsed: std::result::Result<Form<SignupForm>, FormRejection>,
) -> Result<Response> {
    let f = form(parsed)?;
    check_signed_out_csrf(&headers, f.csrf.as_deref())?;
    let signup = Signup {
        email: input::Email::parse(&f.email)?,
        password: input::Password::parse(f.password.clone())?,
        workspace_name: input::WorkspaceName::parse(&f.workspace_name)?,
        workspace_slug: input::workspace_slug(&f.workspace_slug)?,
    };
    let origin = agentd_api::request_origin();
    let created = state.control.signup(signup, origin.clone()).await?;
    let login = Login { email: f.email, password: f.password, workspace_slug: Some(created.tenant.slug.to_string()) };
    let session = state.control.login(login, origin).await?;
    Ok(start_session(&state, session.token.expose(), "/agents"))
}

pub(crate) async fn login_form(AxumState(state): St, headers: HeaderMap) -> Response {
    signed_out_form(&state, &headers, "Log in", |csrf| {
        html! {
            form.card method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="email" { "Email" }
                input #email type="email" name="email" autocomplete="email" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                label for="workspace_slug" { "Workspace slug (optional)" }
                input #workspace_slug type="text" name="workspace_slug";
                button type="submit" { "Log in" }
            }
            p { "New here? " a href="/signup" { "Sign up" } }
        }
    })
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    csrf: Option<String>,
    email: String,
    password: String,
    workspace_slug: Option<String>,
}

pub(crate) async fn login(
    AxumState(state): St,
    headers: HeaderMap,
    parsed: std::result::Result<Form<LoginForm>, FormRejection>,
) -> Result<Response> {
    let f = form(parsed)?;
    check_signed_out_csrf(&headers, f.csrf.as_deref())?;
    let workspace_slug = f.workspace_slug.filter(|s| !s.trim().is_empty());
    let login = Login { email: f.email, password: f.password, workspace_slug };
    match state.control.login(login, agentd_api::request_origin()).await {
        Ok(session) => Ok(start_session(&state, session.token.expose(), "/agents")),
        // A wrong password is an error page, not a redirect back to the same form.
        Err(ControlError::Unauthenticated(u)) => Err(Failure::Api(ControlError::Unauthenticated(u).into())),
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: Option<String>,
}

pub(crate) async fn logout(
    AxumState(state): St,
    headers: HeaderMap,
    parsed: std::result::Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    viewer.check_csrf(form(parsed)?.csrf.as_deref())?;
    state.control.logout(&viewer.principal.authorize::<Read>()?).await?;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&state, SESSION_COOKIE, ""));
    Ok(response)
}

// ---- Agents ----

#[derive(Deserialize)]
pub(crate) struct CursorQuery {
    pub(crate) cursor: Option<String>,
}

pub(crate) async fn agents(AxumState(state): St, headers: HeaderMap, Query(q): Query<CursorQuery>) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let ctx = viewer.principal.authorize::<Read>()?;
    let agents = state.control.agents_list(&ctx, &page_of(q.cursor.as_deref(), PageBounds::RESOURCES)?).await?;
    let body = html! {
        @if agents.data.is_empty() {
            p { "No agents yet. Deploy one with " code { "agentd deploy" } "." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Agent" } th { "Status" } th { "Active version" } th { "Description" } } }
                tbody {
                    @for a in &agents.data {
                        tr {
                            td { a href={ "/agents/" (a.slug) } { (a.name) } br; small.muted { (a.slug) } }
                            td { (badge(agent_status(a.status))) }
                            td { @match a.active_version { Some(v) => { "v" (v) }, None => { "none" } } }
                            td { (a.description.as_deref().unwrap_or("")) }
                        }
                    }
                }
            } }
        }
        @if let Some(next) = &agents.next_cursor {
            p { a href={ "/agents?cursor=" (next) } { "Next page" } }
        }
    };
    signed_in_page(&state, &viewer, "Agents", body).await
}

fn agent_status(status: AgentStatus) -> &'static str {
    match status {
        AgentStatus::Active => "active",
        AgentStatus::Disabled => "disabled",
    }
}

pub(crate) async fn agent(AxumState(state): St, headers: HeaderMap, Path(slug): Path<String>) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let ctx = viewer.principal.authorize::<Read>()?;
    let slug = slug_of(&slug, ResourceKind::Agent)?;
    let agent = state.control.agent_get(&ctx, &slug).await?;
    let versions = state.control.versions_list(&ctx, &slug, &page_of(None, PageBounds::RESOURCES)?).await?;
    let secrets = state.control.secrets_list(&ctx, &slug).await?;
    let active = versions.data.iter().find(|v| Some(v.version) == agent.active_version);
    let body = html! {
        p { (badge(agent_status(agent.status))) " " code { (agent.slug) } }
        @if let Some(d) = &agent.description { p.description { (d) } }
        section {
            h2 { "Invoke" }
            @if agent.active_version.is_some() {
                form.card method="post" action={ "/agents/" (agent.slug) "/invoke" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for="input" { "Input (JSON)" }
                    textarea #input name="input" rows="6" spellcheck="false" { "{}" }
                    label for="thread_id" { "Thread id (optional)" }
                    input #thread_id type="text" name="thread_id";
                    label for="priority" { "Priority 0–9 (optional)" }
                    input #priority type="number" name="priority" min="0" max="9";
                    button type="submit" { "Invoke" }
                }
            } @else {
                p { "This agent has no active version yet." }
            }
        }
        section {
            h2 { "Versions" }
            div.scroll { table {
                thead { tr { th { "Version" } th { "Build" } th { "Size" } th { "Digest" } th { "Created" } } }
                tbody {
                    @for v in &versions.data {
                        tr {
                            td { "v" (v.version) @if Some(v.version) == agent.active_version { " " (badge("active")) } }
                            td { (serde_json::to_value(&v.build).ok().and_then(|b| b.get("status").and_then(|s| s.as_str()).map(str::to_owned)).unwrap_or_default()) }
                            td { (v.size_bytes) " B" }
                            td { code.digest { (v.digest) } }
                            td { (v.created_at) }
                        }
                    }
                }
            } }
        }
        @if let Some(v) = active {
            section { h2 { "Manifest (v" (v.version) ")" } (json(&v.manifest)) }
        }
        section {
            h2 { "Secrets" }
            @if secrets.is_empty() { p.muted { "No secrets." } } @else {
                ul { @for s in &secrets { li { code { (s.name) } " (updated " (s.updated_at) ")" } } }
            }
        }
        p { a href={ "/invocations?agent=" (agent.slug) } { "This agent's invocations" } }
    };
    signed_in_page(&state, &viewer, &agent.name, body).await
}

#[derive(Deserialize)]
pub(crate) struct InvokeForm {
    csrf: Option<String>,
    input: Option<String>,
    thread_id: Option<String>,
    priority: Option<String>,
}

pub(crate) async fn invoke(
    AxumState(state): St,
    headers: HeaderMap,
    Path(slug): Path<String>,
    parsed: std::result::Result<Form<InvokeForm>, FormRejection>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let f = form(parsed)?;
    viewer.check_csrf(f.csrf.as_deref())?;
    let ctx = viewer.principal.authorize::<Invoke>()?;
    let slug = slug_of(&slug, ResourceKind::Agent)?;
    let raw = f.input.unwrap_or_default();
    let input = match raw.trim() {
        "" => serde_json::json!({}),
        text => serde_json::from_str(text).map_err(|e| Failure::bad_request(format!("the input is not JSON: {e}")))?,
    };
    let priority = match f.priority.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(p.parse::<u8>().map_err(|_| Failure::bad_request("priority: a whole number from 0 to 9"))?),
    };
    let thread = f.thread_id.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let spec = InvokeSpec {
        input,
        priority: input::Priority::parse(priority)?,
        max_attempts: input::MaxAttempts::parse(None)?,
        timeout_s: None,
        metadata: input::Metadata::parse(None)?,
        idempotency_key: None,
        env: input::EnvVars::parse(Default::default())?,
        input_timeout_s: None,
        thread_id: thread.map(input::thread_id).transpose()?,
        multitask_strategy: None,
        webhook_url: None,
    };
    let accepted = state.control.invoke(&ctx, &slug, spec, None).await?;
    Ok(Redirect::to(&format!("/invocations/{}", accepted.invocation.id)).into_response())
}

// ---- Invocations ----

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
