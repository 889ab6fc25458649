//! The session cookie, CSRF tokens, and how a failure becomes a page.

use agentd_api::ApiError;
use agentd_control::{ControlError, Principal};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use crate::State;

/// The cookie holding the session token.
pub(crate) const SESSION_COOKIE: &str = "agentd_session";
/// The cookie a signed-out form's CSRF token is checked against (double submit).
pub(crate) const CSRF_COOKIE: &str = "agentd_csrf";

/// The value of cookie `name` in the request, if sent.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for `name`; an empty value with `Max-Age=0` removes it.
pub(crate) fn set_cookie(state: &State, name: &str, value: &str) -> HeaderValue {
    let secure = if state.options.secure_cookies { "; Secure" } else { "" };
    let expire = if value.is_empty() { "; Max-Age=0" } else { "" };
    let text = format!("{name}={value}; HttpOnly; SameSite=Lax; Path=/{secure}{expire}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("agentd_invalid=; Max-Age=0"))
}

/// The CSRF token of a session: derived from its token, so it needs no storage and is
/// unknown to anyone who cannot read the (HttpOnly) cookie.
pub(crate) fn session_csrf(session_token: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"agentd-dashboard-csrf\0");
    hash.update(session_token.as_bytes());
    hex::encode(&hash.finalize()[..16])
}

/// A fresh random token for the double-submit cookie of signed-out forms.
pub(crate) fn random_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Compares without stopping at the first difference.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A signed-in visitor: who they are and the CSRF token their forms carry.
pub(crate) struct Viewer {
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
}

impl Viewer {
    /// Refuses a form whose CSRF token is not this session's.
    pub(crate) fn check_csrf(&self, sent: Option<&str>) -> Result<(), Failure> {
        match sent {
            Some(sent) if same(sent, &self.csrf) => Ok(()),
            _ => Err(Failure::Csrf),
        }
    }
}

/// The visitor of this request if their cookie holds a live session; `None` if there is
/// no cookie or the session is over.
pub(crate) async fn viewer(state: &State, headers: &HeaderMap) -> Result<Option<Viewer>, Failure> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    match state.control.authenticate(token, agentd_api::request_origin()).await {
        Ok(principal) => Ok(Some(Viewer { principal, csrf: session_csrf(token) })),
        Err(ControlError::Unauthenticated(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The visitor, or [`Failure::SignIn`].
pub(crate) async fn signed_in(state: &State, headers: &HeaderMap) -> Result<Viewer, Failure> {
    viewer(state, headers).await?.ok_or(Failure::SignIn)
}

/// Why a page was not shown.
pub(crate) enum Failure {
    /// No live session: go to the login page.
    SignIn,
    /// A POST without this session's (or this form's) CSRF token: `403`.
    Csrf,
    /// What the domain or the input said, as an error page with the API's status.
    Api(ApiError),
}

impl From<ControlError> for Failure {
    fn from(err: ControlError) -> Failure {
        match err {
            ControlError::Unauthenticated(_) => Failure::SignIn,
            other => Failure::Api(other.into()),
        }
    }
}

impl From<agentd_control::Invalid> for Failure {
    fn from(err: agentd_control::Invalid) -> Failure {
        ControlError::from(err).into()
    }
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Failure {
        Failure::Api(err)
    }
}

impl Failure {
    pub(crate) fn bad_request(detail: impl Into<String>) -> Failure {
        Failure::Api(ApiError::bad_request("invalid_form", detail))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::SignIn => Redirect::to("/login").into_response(),
            Failure::Csrf => crate::views::error_page(
                StatusCode::FORBIDDEN,
                "csrf_token_invalid",
                "This form was not sent from this session's page (its CSRF token is missing or wrong). Reload the page and try again.",
            ),
            Failure::Api(err) => {
                let (status, code) = err.status_and_code();
                if let ApiError::Control(ControlError::Internal(source)) = &err {
                    // The page says only "internal error"; the operator's log has the cause.
                    let request_id = agentd_api::request_origin().request_id.to_string();
                    tracing::error!(error = ?source, request_id, "internal error on a dashboard page");
                }
                crate::views::error_page(status, code, &err.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_found_by_its_exact_name_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x_agentd_session=no; agentd_session=ags_1; agentd_csrf="),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("ags_1"));
        assert_eq!(cookie(&headers, CSRF_COOKIE), None, "an empty value is no cookie");
        assert_eq!(cookie(&HeaderMap::new(), SESSION_COOKIE), None);
    }

    #[test]
    fn a_session_csrf_token_is_stable_per_session_and_differs_between_sessions() {
        assert_eq!(session_csrf("ags_a"), session_csrf("ags_a"));
        assert_ne!(session_csrf("ags_a"), session_csrf("ags_b"));
        assert_eq!(session_csrf("ags_a").len(), 32);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        assert_ne!(random_token(), random_token());
    }
}
