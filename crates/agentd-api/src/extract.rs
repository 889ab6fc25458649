//! Extractors whose rejections are problem documents, and the parsing every surface
//! shares: a JSON object body whose unknown fields are refused, query strings, raw
//! uploads, the bearer credential, path parameters and page requests.

use agentd_control::{ControlError, Invalid, Principal, Unauthenticated};
use agentd_core::{Cursor, InvocationId, PageBounds, PageRequest, RequestOrigin, ResourceKind, Slug, ThreadId};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::{ApiError, AppState, request_id};

/// A JSON object body. Anything else (an array, a number, text that is not JSON) is
/// refused, and so is a field the type does not know: request types say
/// `deny_unknown_fields`, and the error names the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::request(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `content-type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(bytes_rejection)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(invalid_body("the body must be a JSON object".to_owned()));
        }
        serde_path_to_error::deserialize(value).map(ApiJson).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            invalid_body(if path == "." { inner.to_string() } else { format!("{path}: {inner}") })
        })
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn invalid_body(detail: String) -> ApiError {
    ApiError::request(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", detail)
}

fn bytes_rejection(err: BytesRejection) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::request(
            StatusCode::PAYLOAD_TOO_LARGE,
            "max_request_body_bytes",
            "the request body is larger than this endpoint accepts (max_request_body_bytes)",
        )
    } else {
        ApiError::bad_request("malformed_request", err.body_text())
    }
}

/// Query-string parameters; query types say `deny_unknown_fields` too.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(err)) => {
                Err(ApiError::bad_request("invalid_query", err.body_text()))
            }
            Err(other) => Err(ApiError::bad_request("invalid_query", other.body_text())),
        }
    }
}

/// A raw body (bundle and artifact uploads), bounded by the route's body limit.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state).await.map(ApiBytes).map_err(|err| {
            if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::request(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "max_bundle_bytes",
                    "the bundle is larger than the upload limit (max_bundle_bytes)",
                )
            } else {
                bytes_rejection(err)
            }
        })
    }
}

/// The bearer token of `Authorization: Bearer <token>`, if the header is there.
pub fn bearer_token(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(header) = parts.headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let token = header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
    token.map(Some).ok_or_else(|| ControlError::from(Unauthenticated::Malformed).into())
}

/// An authenticated caller: its scopes are checked by the handler, through
/// [`Principal::authorize`], for the capability its operation takes.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?.ok_or(ControlError::from(Unauthenticated::Missing))?;
        let principal = state.control.authenticate(token, request_origin()).await?;
        if let Some(decision) = principal.rate_limit() {
            crate::rate_limit_headers::record(*decision);
        }
        // Every later line of this request's log carries the tenant.
        tracing::Span::current().record("tenant_id", principal.tenant_id().as_str());
        Ok(Caller(principal))
    }
}

/// The request being served, as the domain layer records it.
pub fn request_origin() -> RequestOrigin {
    let request_id = request_id::current().unwrap_or_else(agentd_core::RequestId::generate);
    RequestOrigin::new(request_id, crate::client_ip::current())
}

/// A slug from the path. One that cannot be valid names nothing, so it is `404`.
pub fn path_slug(raw: &str, kind: ResourceKind) -> Result<Slug, ApiError> {
    Slug::parse(raw).map_err(|_| ControlError::NotFound(kind).into())
}

/// An invocation id from the path; one that cannot be valid is `404`.
pub fn path_invocation_id(raw: &str) -> Result<InvocationId, ApiError> {
    let id = InvocationId::parse(raw).map_err(|_| ControlError::NotFound(ResourceKind::Invocation))?;
    crate::request_id::record_invocation(&id);
    Ok(id)
}

/// `?agent=SLUG` on a list: absent does not filter; one that is not a slug is `400`.
pub fn query_agent(raw: Option<&str>) -> Result<Option<Slug>, ApiError> {
    raw.map(|a| Slug::parse(a).map_err(|e| ApiError::bad_request("invalid_query", format!("agent: {e}")))).transpose()
}

/// A thread id from the path; one that cannot be valid is `404`.
pub fn path_thread_id(raw: &str) -> Result<ThreadId, ApiError> {
    ThreadId::parse(raw).map_err(|_| ControlError::NotFound(ResourceKind::Thread).into())
}

/// `?limit=&cursor=` on every list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// How many to return: 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl PageQuery {
    pub fn parse<C: Cursor>(&self) -> Result<PageRequest<C>, ApiError> {
        let page = PageRequest::parse(self.limit, self.cursor.as_deref(), PageBounds::RESOURCES);
        Ok(page.map_err(Invalid::from)?)
    }
}

/// The `Last-Event-ID` a reconnecting SSE client sends: the seq it saw last.
pub(crate) fn last_event_id(headers: &axum::http::HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get("last-event-id") {
        Some(value) => Ok(Some(value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::bad_request("invalid_last_event_id", "Last-Event-ID must be the seq of an event")
        })?)),
        None => Ok(None),
    }
}
