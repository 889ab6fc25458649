//! What can go wrong talking to the server, and the RFC 9457 problem document it sends
//! when it refuses a request.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest piece of an unexpected body kept for error messages.
const BODY_SNIPPET_CHARS: usize = 500;

/// An RFC 9457 problem document (`application/problem+json`), as the server sends it.
///
/// Every field is lenient on input so that a proxy's or an older server's error body still
/// decodes; members the server adds beyond the standard ones land in `extensions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default = "about_blank")]
    pub type_: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub detail: Option<String>,
    /// Stable machine word (`not_found`, `unauthorized`, `bundle_too_large`, …).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

impl Problem {
    /// Decodes an error body, or synthesizes a problem from the status and body text
    /// when the body is not a problem document (a proxy's HTML page, an empty body).
    pub(crate) fn from_response(status: u16, request_id: Option<String>, body: &[u8]) -> Problem {
        let parsed = serde_json::from_slice::<Problem>(body).ok().filter(|p| p.code.is_some() || !p.title.is_empty());
        let mut problem = parsed.unwrap_or_else(|| {
            let text = snippet(body);
            Problem {
                type_: about_blank(),
                title: reason(status).to_owned(),
                status,
                detail: (!text.trim().is_empty()).then_some(text),
                code: None,
                request_id: None,
                extensions: Map::new(),
            }
        });
        if problem.status == 0 {
            problem.status = status;
        }
        if problem.request_id.is_none() {
            problem.request_id = request_id;
        }
        problem
    }

    /// The most specific human text the document has: `detail`, else `title`.
    pub fn message(&self) -> &str {
        match &self.detail {
            Some(detail) if !detail.is_empty() => detail,
            _ if !self.title.is_empty() => &self.title,
            _ => reason(self.status),
        }
    }
}

/// Why a client call did not return the expected resource.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-success status.
    #[error("{} (HTTP {status})", problem.message())]
    Api { status: u16, problem: Box<Problem> },
    /// The request did not complete: connection refused, DNS, TLS, timeout, reset.
    #[error("request to the server failed")]
    Transport(#[source] reqwest::Error),
    /// The server answered with a success status but a body of another shape. `body`
    /// (the start of it) is kept for debugging, not displayed: it may hold a secret.
    #[error("the server's response (HTTP {status}) is not the expected JSON")]
    Decode {
        status: u16,
        body: String,
        #[source]
        source: serde_json::Error,
    },
    /// An id or slug that no URL can carry (`.` and `..` resolve to a parent route).
    #[error("`{segment}` cannot be sent as an id or slug: URLs resolve it to another route")]
    UnsendableSegment { segment: String },
    /// The base URL given to [`crate::Client::new`] cannot be used.
    #[error("`{url}` is not a usable server URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// An event stream ended before the invocation did (the follower reconnects).
    #[error("the event stream closed before the invocation ended")]
    StreamClosed,
    /// The server reported a failure inside an event stream (`event: error`).
    #[error("the event stream failed: {detail}")]
    StreamFailed { detail: String },
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Decode { status, .. } => Some(*status),
            ClientError::Transport(_)
            | ClientError::InvalidUrl { .. }
            | ClientError::UnsendableSegment { .. }
            | ClientError::StreamClosed
            | ClientError::StreamFailed { .. } => None,
        }
    }

    /// The problem document's machine `code`, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { problem, .. } => problem.code.as_deref(),
            _ => None,
        }
    }

    /// The problem document, when the server refused the request.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ClientError::Api { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// True when no HTTP answer came back at all (refused, unresolvable, timed out).
    pub fn is_unreachable(&self) -> bool {
        match self {
            ClientError::Transport(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            _ => false,
        }
    }

    pub(crate) fn decode(status: u16, body: &[u8], source: serde_json::Error) -> ClientError {
        ClientError::Decode { status, body: snippet(body), source }
    }
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(BODY_SNIPPET_CHARS).collect()
}

/// The canonical reason phrase of a status, for synthesized problems.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "HTTP error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_document_is_decoded_with_its_code() {
        let body = br#"{"type":"https://agentd.dev/problems/not_found","title":"Not Found",
            "status":404,"detail":"no agent `x`","code":"not_found","request_id":"req_1"}"#;
        let p = Problem::from_response(404, Some("req_other".into()), body);
        assert_eq!(p.code.as_deref(), Some("not_found"));
        assert_eq!(p.message(), "no agent `x`");
        assert_eq!(p.request_id.as_deref(), Some("req_1"));
    }

    #[test]
    fn a_plain_text_body_becomes_a_synthesized_problem() {
        let p = Problem::from_response(502, Some("req_2".into()), b"upstream down");
        assert_eq!(p.status, 502);
        assert_eq!(p.title, "Bad Gateway");
        assert_eq!(p.message(), "upstream down");
        assert_eq!(p.code, None);
        assert_eq!(p.request_id.as_deref(), Some("req_2"));
    }

    #[test]
    fn an_empty_body_falls_back_to_the_reason_phrase() {
        let p = Problem::from_response(404, None, b"");
        assert_eq!(p.message(), "Not Found");
    }
}
