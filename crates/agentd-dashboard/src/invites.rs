//! Inviting a member (the invite's link shown once) and accepting an invite: a new account
//! for the invited email, or an existing one by its email and password.

use agentd_control::{AcceptInvite, Admin, InviteSpec, input};
use agentd_core::{PageBounds, Role};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State as AxumState};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use crate::State;
use crate::auth::{Failure, Viewer, signed_in};
use crate::pages::{Result, check_signed_out_csrf, form, page_of, signed_in_page, signed_out_form, start_session};
use crate::views::badge;

/// The invite form and the pending invites, for the members page of an admin.
pub(crate) async fn section(state: &State, viewer: &Viewer) -> Result<Markup> {
    let Ok(ctx) = viewer.principal.authorize::<Admin>() else { return Ok(html! {}) };
    let invites = state.control.invites_list(&ctx, &page_of(None, PageBounds::RESOURCES)?).await?;
    Ok(html! {
        section {
            h2 { "Invite a member" }
            form.card method="post" action="/invites" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                label for="invite_email" { "Email" }
                input #invite_email type="email" name="email" required;
                label for="invite_role" { "Role" }
                select #invite_role name="role" {
                    @for role in ["viewer", "developer", "admin"] { option value=(role) { (role) } }
                }
                button type="submit" { "Invite" }
            }
            @if !invites.data.is_empty() {
                h2 { "Invites" }
                div.scroll { table {
                    thead { tr { th { "Email" } th { "Role" } th { "Status" } th { "Expires" } } }
                    tbody { @for i in &invites.data {
                        tr {
                            td { (i.email) }
                            td { (i.role.as_str()) }
                            td { (badge(&serde_json::to_value(i.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())) }
                            td { (i.expires_at) }
                        }
                    } }
                } }
            }
        }
    })
}

#[derive(Deserialize)]
pub(crate) struct InviteForm {
    csrf: Option<String>,
    email: String,
    role: String,
}

pub(crate) async fn create(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    parsed: std::result::Result<Form<InviteForm>, FormRejection>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let f = form(parsed)?;
    viewer.check_csrf(f.csrf.as_deref())?;
    let ctx = viewer.principal.authorize::<Admin>()?;
    let role = Role::parse(&f.role).map_err(|e| Failure::bad_request(format!("role: {e}")))?;
    let spec = InviteSpec { email: input::Email::parse(&f.email)?, role };
    let created = state.control.invite_create(&ctx, spec).await?;
    let link = format!("/join/{}", created.token.expose());
    let body = html! {
        p { "Send " strong { (created.invite.email) } " this link to join as " (created.invite.role.as_str())
            ". It is shown only now." }
        p { code #invite-link { (link) } " " button type="button" data-copy="invite-link" { "Copy" } }
        p.muted { "The link is a path on this server: put the dashboard's address in front of it." }
        p { a href="/members" { "Back to the members" } }
    };
    signed_in_page(&state, &viewer, "Invite created", body).await
}

pub(crate) async fn join_form(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    signed_out_form(&state, &headers, "Join a workspace", |csrf| {
        html! {
            form.card method="post" action={ "/join/" (token) } {
                input type="hidden" name="csrf" value=(csrf);
                p { "New here: choose a password for the invited email. Already have an account: give its email and password." }
                label for="email" { "Email (only if you already have an account)" }
                input #email type="email" name="email" autocomplete="email";
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Join" }
            }
        }
    })
}

#[derive(Deserialize)]
pub(crate) struct JoinForm {
    csrf: Option<String>,
    email: Option<String>,
    password: String,
}

pub(crate) async fn join(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    Path(token): Path<String>,
    parsed: std::result::Result<Form<JoinForm>, FormRejection>,
) -> Result<Response> {
    let f = form(parsed)?;
    check_signed_out_csrf(&headers, f.csrf.as_deref())?;
    let who = match f.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(email) => AcceptInvite::Credentials { email: email.to_owned(), password: f.password },
        None => AcceptInvite::NewUser { password: input::Password::parse(f.password)? },
    };
    let joined = state.control.invite_accept(&token, who, agentd_api::request_origin()).await?;
    Ok(start_session(&state, joined.session.token.expose(), "/agents"))
}
