//! Deploying a bundle: check it, store it content-addressed, record the next version.
//! Validation happens before anything is written, so a rejected bundle leaves nothing.

use agentd_bundle::BundleLimits;
use agentd_core::{AgentVersion, Slug, Tenant, TenantCtx};
use agentd_store::NewVersion;
use axum::http::StatusCode;
use bytes::Bytes;

use crate::{ApiError, AppState};

pub async fn deploy(
    state: &AppState,
    ctx: &TenantCtx,
    tenant: &Tenant,
    slug: &Slug,
    body: Bytes,
    activate: bool,
) -> Result<AgentVersion, ApiError> {
    // Fail on a missing agent before spending CPU on the archive.
    state.store.agent_get(ctx, slug).await?;
    let limit = tenant.limits.max_bundle_bytes.min(state.settings.max_upload_bytes);
    if body.len() as u64 > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bundle_too_large",
            format!("the bundle is {} bytes; this workspace accepts at most {limit}", body.len()),
        ));
    }
    if body.is_empty() {
        return Err(ApiError::invalid(
            "bundle_unreadable",
            "the request body is empty; send the .tar.gz or .zip bundle as the body",
        ));
    }
    let size_bytes = body.len() as u64;
    let limits = BundleLimits { max_bundle_bytes: limit, ..BundleLimits::default() };
    let checked = body.clone();
    let inspected = tokio::task::spawn_blocking(move || agentd_bundle::inspect(&checked, &limits))
        .await
        .map_err(ApiError::internal)??;
    let digest = state.blobs.put(body).await?;
    let manifest = serde_json::to_value(&inspected.manifest).map_err(ApiError::internal)?;
    let new = NewVersion { digest, manifest, size_bytes, activate };
    Ok(state.store.version_create(ctx, slug, new).await?)
}
