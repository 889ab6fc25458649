//! `GET /v1/invocations/{id}/artifacts[/{name}]`: the files an invocation left in
//! `/outputs`, listed by name and downloaded as bytes.

use agentd_core::{Artifact, Page, Scope};

use super::{PageQuery, path_invocation_id};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::auth::Caller;
use crate::extract::ApiQuery;
use crate::{ApiError, AppState};

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Artifact>>, ApiError> {
    let ctx = caller.authorize(Scope::Read)?;
    let id = path_invocation_id(&id)?;
    Ok(Json(state.store.artifacts_list(&ctx, &id, q.limit, q.cursor.as_deref()).await?))
}

/// The bytes, always as a download: an artifact is agent output, never rendered by us.
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ctx = caller.authorize(Scope::Read)?;
    let id = path_invocation_id(&id)?;
    if !Artifact::is_valid_name(&name) {
        return Err(ApiError::not_found("artifact"));
    }
    let artifact = state.store.artifact_get(&ctx, &id, &name).await?;
    let bytes = state.blobs.get(&artifact.digest).await?;
    let file_name = name.rsplit('/').next().unwrap_or(&name);
    let safe_name: String =
        file_name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{safe_name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let etag = HeaderValue::from_str(&format!("\"{}\"", artifact.digest)).ok();
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        Body::from(bytes),
    )
        .into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}
