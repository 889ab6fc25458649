//! An agent's pages: the list, one agent (versions, manifest, secrets) and the invoke form.

use agentd_control::{Invoke, InvokeSpec, Read, input};
use agentd_core::{AgentStatus, PageBounds, ResourceKind};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State as AxumState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::auth::{Failure, signed_in};
use crate::pages::{CursorQuery, Result, St, form, page_of, signed_in_page, slug_of};
use crate::views::{badge, json};

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
