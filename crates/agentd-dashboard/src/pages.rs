//! The pages: each parses its input, authorizes through the domain, calls it and renders.

use agentd_control::{ControlError, Invalid, Login, Read, Signup, input};
use agentd_core::{Cursor, InvocationId, PageBounds, PageRequest, ResourceKind, Slug};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State as AxumState};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::State;
use crate::auth::{CSRF_COOKIE, Failure, SESSION_COOKIE, Viewer, cookie, random_token, same, set_cookie, signed_in};
use crate::views::{Nav, page, render};

pub(crate) type Result<T> = std::result::Result<T, Failure>;
pub(crate) type St = AxumState<State>;

pub(crate) fn form<T>(parsed: std::result::Result<Form<T>, FormRejection>) -> Result<T> {
    parsed.map(|Form(f)| f).map_err(|e| Failure::bad_request(e.body_text()))
}

pub(crate) fn page_of<C: Cursor>(cursor: Option<&str>, bounds: PageBounds) -> Result<PageRequest<C>> {
    let cursor = cursor.filter(|c| !c.is_empty());
    PageRequest::parse(None, cursor, bounds).map_err(|e| ControlError::from(Invalid::from(e)).into())
}

pub(crate) fn slug_of(raw: &str, kind: ResourceKind) -> Result<Slug> {
    Slug::parse(raw).map_err(|_| ControlError::NotFound(kind).into())
}

pub(crate) fn invocation_id(raw: &str) -> Result<InvocationId> {
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

#[derive(Deserialize)]
pub(crate) struct CursorQuery {
    pub(crate) cursor: Option<String>,
}
