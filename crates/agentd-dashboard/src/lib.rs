//! The web dashboard of agentd, served by `agentd serve` beside `/v1`: server-rendered
//! HTML (maud, which escapes everything it writes) with a small script and style sheet
//! embedded in the binary. Like `agentd-api` it is a front end only: it parses a form,
//! authenticates the session cookie, authorizes through the domain's capabilities, calls
//! `agentd-control` and renders the result. No SQL, no store.
//!
//! Security decisions (docs/DASHBOARD.md): the session is the domain's own login session
//! (the ones `/v1/auth/login` makes), its token in the `agentd_session` cookie
//! (`HttpOnly; SameSite=Lax; Path=/`, `Secure` unless the server listens on loopback);
//! every POST carries a CSRF token in a hidden field; every answer carries a strict
//! Content-Security-Policy.

mod agents;
mod auth;
mod deploy;
mod invites;
mod invocations;
mod keys;
mod pages;
mod views;
mod workspace;

use agentd_control::Control;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

/// How the dashboard is deployed.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Marks the session cookie `Secure` (only sent over https).
    pub secure_cookies: bool,
}

#[derive(Clone)]
pub(crate) struct State {
    pub(crate) control: Control,
    pub(crate) options: Options,
}

/// The dashboard's routes (`/`, `/login`, `/agents`, …), to merge into the server's router.
pub fn router(control: Control, options: Options) -> Router {
    let upload = usize::try_from(control.settings().max_upload_bytes).unwrap_or(usize::MAX);
    let state = State { control, options };
    Router::new()
        .route("/deploy", get(deploy::form).post(deploy::upload).layer(DefaultBodyLimit::max(upload)))
        .route("/", get(pages::home))
        .route("/signup", get(pages::signup_form).post(pages::signup))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/agents", get(agents::agents))
        .route("/agents/{slug}", get(agents::agent))
        .route("/agents/{slug}/invoke", post(agents::invoke))
        .route("/invocations", get(invocations::invocations))
        .route("/invocations/{id}", get(invocations::invocation))
        .route("/invocations/{id}/events", get(invocations::events))
        .route("/invocations/{id}/respond", post(invocations::respond))
        .route("/invocations/{id}/artifacts/{*name}", get(invocations::artifact))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/members", get(workspace::members))
        .route("/invites", post(invites::create))
        .route("/join/{token}", get(invites::join_form).post(invites::join))
        .route("/limits", get(workspace::limits))
        .route("/audit", get(workspace::audit))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], CSS)
}

async fn js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], JS)
}

/// Only this origin's script, style and connections; no inline script, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
