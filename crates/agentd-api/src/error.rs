//! The one place errors become HTTP responses: RFC 9457 problem documents with a stable
//! machine `code` and the request id. A 500 body says nothing about the cause; the cause
//! is logged once, here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::request_id;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    Problem { status: StatusCode, code: &'static str, detail: String },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::Problem { status, code, detail: detail.into() }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn invalid(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Internal(Box::new(err))
    }

    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Problem { code, .. } => code,
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<agentd_store::StoreError> for ApiError {
    fn from(err: agentd_store::StoreError) -> ApiError {
        use agentd_store::StoreError as E;
        match err {
            E::NotFound { what } => ApiError::not_found(what),
            E::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            E::LimitExceeded { code, message } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message),
            other => ApiError::internal(other),
        }
    }
}

impl From<agentd_bundle::BundleError> for ApiError {
    fn from(err: agentd_bundle::BundleError) -> ApiError {
        let status = if err.is_too_large() { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::UNPROCESSABLE_ENTITY };
        ApiError::new(status, err.code(), err.to_string())
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    request_id: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = request_id::current().map(|r| r.to_string()).unwrap_or_default();
        let (status, code, detail) = match &self {
            ApiError::Problem { status, code, detail } => (*status, *code, detail.as_str()),
            ApiError::Internal(source) => {
                tracing::error!(error = ?source, request_id, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; quote the request id when reporting it",
                )
            }
        };
        let problem = Problem {
            kind: format!("urn:agentd:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            code,
            request_id,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
