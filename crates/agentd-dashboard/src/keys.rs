//! API keys: the list, creating one (its secret shown once, on the answer to the POST,
//! never in a URL), revoking one. Keys need the admin capability, as in the API.

use agentd_control::{Admin, ControlError, NewKey, input};
use agentd_core::{ApiKeyId, PageBounds, ResourceKind, Scope};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State as AxumState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::State;
use crate::auth::{Viewer, signed_in};
use crate::pages::{CursorQuery, Result, form, page_of, signed_in_page};

fn create_form(viewer: &Viewer) -> Markup {
    html! {
        form.card method="post" action="/keys" {
            input type="hidden" name="csrf" value=(viewer.csrf);
            label for="name" { "Name" }
            input #name type="text" name="name" maxlength="100" required;
            fieldset {
                legend { "Scopes (none ticked: every scope you hold)" }
                @for scope in Scope::ALL {
                    label.check {
                        input type="checkbox" name={ "scope_" (scope.as_str()) } value="on";
                        " " (scope.as_str())
                    }
                }
            }
            label for="expires_in_days" { "Expires after (days, optional)" }
            input #expires_in_days type="number" name="expires_in_days" min="1" max="3650";
            button type="submit" { "Create key" }
        }
    }
}

pub(crate) async fn list(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    Query(q): Query<CursorQuery>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let ctx = viewer.principal.authorize::<Admin>()?;
    let keys = state.control.api_keys_list(&ctx, &page_of(q.cursor.as_deref(), PageBounds::RESOURCES)?).await?;
    let body = html! {
        section { h2 { "New key" } (create_form(&viewer)) }
        section {
            h2 { "Keys" }
            @if keys.data.is_empty() { p.muted { "No keys." } } @else {
                div.scroll { table {
                    thead { tr { th { "Name" } th { "Prefix" } th { "Scopes" } th { "Created" } th { "Last used" } th { "" } } }
                    tbody { @for k in &keys.data {
                        tr {
                            td { (k.name) }
                            td { code { (k.prefix) } }
                            td { (k.scopes.iter().map(Scope::as_str).collect::<Vec<_>>().join(", ")) }
                            td { (k.created_at) }
                            td { @match k.last_used_at { Some(t) => (t), None => "never" } }
                            td {
                                @if let Some(t) = k.revoked_at { "revoked " (t) } @else {
                                    form.inline method="post" action={ "/keys/" (k.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(viewer.csrf);
                                        button.danger type="submit" aria-label={ "Revoke " (k.name) } { "Revoke" }
                                    }
                                }
                            }
                        }
                    } }
                } }
            }
            @if let Some(next) = &keys.next_cursor { p { a href={ "/keys?cursor=" (next) } { "Next page" } } }
        }
    };
    signed_in_page(&state, &viewer, "API keys", body).await
}

#[derive(Deserialize)]
pub(crate) struct CreateForm {
    csrf: Option<String>,
    name: String,
    scope_read: Option<String>,
    scope_invoke: Option<String>,
    scope_deploy: Option<String>,
    scope_admin: Option<String>,
    expires_in_days: Option<String>,
}

pub(crate) async fn create(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    parsed: std::result::Result<Form<CreateForm>, FormRejection>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let f = form(parsed)?;
    viewer.check_csrf(f.csrf.as_deref())?;
    let ctx = viewer.principal.authorize::<Admin>()?;
    let ticked = [
        (Scope::Read, &f.scope_read),
        (Scope::Invoke, &f.scope_invoke),
        (Scope::Deploy, &f.scope_deploy),
        (Scope::Admin, &f.scope_admin),
    ];
    let scopes: Vec<Scope> = ticked.iter().filter(|(_, v)| v.is_some()).map(|(s, _)| *s).collect();
    let days = match f.expires_in_days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => Some(
            d.parse::<u32>()
                .map_err(|_| crate::auth::Failure::bad_request("expires_in_days: a whole number of days"))?,
        ),
    };
    let new = NewKey {
        name: input::KeyName::parse(&f.name)?,
        scopes: input::key_scopes(if scopes.is_empty() { None } else { Some(scopes) })?,
        expiry: input::KeyExpiry::parse(days)?,
    };
    let created = state.control.api_key_create(&ctx, new).await?;
    let body = html! {
        section.secret {
            p { "The key " strong { (created.key.name) } " is made. Copy its secret now: it is not shown again." }
            p {
                code #secret { (created.secret.expose()) }
                " "
                button type="button" data-copy="secret" { "Copy" }
            }
        }
        p { a href="/keys" { "Back to the keys" } }
    };
    signed_in_page(&state, &viewer, "Key created", body).await
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

pub(crate) async fn revoke(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    Path(id): Path<String>,
    parsed: std::result::Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    viewer.check_csrf(form(parsed)?.csrf.as_deref())?;
    let ctx = viewer.principal.authorize::<Admin>()?;
    let id = ApiKeyId::parse(&id).map_err(|_| ControlError::NotFound(ResourceKind::ApiKey))?;
    state.control.api_key_revoke(&ctx, &id).await?;
    Ok(Redirect::to("/keys").into_response())
}
