//! `GET /v1/invocations/{id}/artifacts[/{name}]`: the files an invocation left in
//! `/outputs`, listed by name and downloaded as bytes.

use agentd_api_types::{Artifact, Page};
use agentd_control::Read;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::extract::{ApiQuery, Caller, PageQuery, path_invocation_id};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/invocations/{id}/artifacts", get(list))
        .route("/invocations/{id}/artifacts/{*name}", get(download))
}

#[utoipa::path(
    get,
    operation_id = "artifacts_list",
    path = "/v1/invocations/{id}/artifacts",
    tag = "invocations",
    summary = "An invocation's artifacts",
    params(("id" = String, Path, description = "Invocation id"), crate::extract::PageQuery),
    responses((status = 200, description = "Artifacts", body = agentd_api_types::Page<agentd_api_types::Artifact>))
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Artifact>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let id = path_invocation_id(&id)?;
    Ok(Json(state.control.artifacts_list(&ctx, &id, &q.parse()?).await?))
}

/// The bytes, always as a download: an artifact is agent output, never rendered by us.
#[utoipa::path(
    get,
    operation_id = "artifacts_download",
    path = "/v1/invocations/{id}/artifacts/{name}",
    tag = "invocations",
    summary = "Downloads an artifact",
    params(("id" = String, Path, description = "Invocation id"), ("name" = String, Path, description = "Artifact path below /outputs")),
    responses((status = 200, description = "The bytes", body = Vec<u8>, content_type = "application/octet-stream"))
)]
async fn download(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let id = path_invocation_id(&id)?;
    let content = state.control.artifact_read(&ctx, &id, &name).await?;
    let file_name = name.rsplit('/').next().unwrap_or(&name);
    let safe_name: String =
        file_name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{safe_name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let etag = HeaderValue::from_str(&format!("\"{}\"", content.artifact.digest)).ok();
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        Body::from(content.bytes),
    )
        .into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, download))]
pub(super) struct Doc;
