//! `/v1/api-keys`: list (prefixes only), create (secret shown once), revoke.

use agentd_core::{ApiKey, ApiKeyId, CreateApiKeyRequest, CreatedApiKey, Page, Scope, Scopes, Timestamp};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::PageQuery;
use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery};
use crate::ops::accounts::mint_api_key;
use crate::{ApiError, AppState};

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    let ctx = caller.authorize(Scope::Admin)?;
    Ok(Json(state.store.api_keys_list(&ctx, q.limit, q.cursor.as_deref()).await?))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let ctx = caller.authorize(Scope::Admin)?;
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("invalid_name", "name must be 1 to 100 characters"));
    }
    let scopes = match req.scopes {
        Some(list) if list.is_empty() => {
            return Err(ApiError::invalid("invalid_scopes", "give at least one scope: read, invoke, deploy, admin"));
        }
        Some(list) => Scopes::new(list),
        None => Scopes::all(),
    };
    // A key can never hold more than the credential that created it.
    if let Some(extra) = scopes.iter().find(|s| !ctx.scopes().allows(*s)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("you cannot grant `{}`, which you do not hold", extra.as_str()),
        ));
    }
    let expires_at = match req.expires_in_days {
        Some(0) | Some(3651..) => {
            return Err(ApiError::invalid("invalid_expiry", "expires_in_days must be between 1 and 3650"));
        }
        Some(days) => Some(Timestamp::now().plus_ms(i64::from(days) * 86_400_000)),
        None => None,
    };
    let minted = mint_api_key(name, scopes, expires_at);
    let key = state.store.api_key_create(&ctx, minted.new, caller.tenant().limits.max_api_keys).await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { key, secret: minted.secret })))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    let ctx = caller.authorize(Scope::Admin)?;
    let id = ApiKeyId::parse(&id).map_err(|_| ApiError::not_found("API key"))?;
    Ok(Json(state.store.api_key_revoke(&ctx, &id).await?))
}
