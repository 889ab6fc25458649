//! Authentication: `Authorization: Bearer <token>` resolved to a [`Caller`]. A handler
//! turns a caller into a [`TenantCtx`] only through [`Caller::authorize`], which checks
//! the scope the route needs; without that call no tenant-scoped store method is
//! reachable.

use agentd_core::{Scope, Tenant, TenantCtx, TenantStatus};
use agentd_store::{Credential, hash_secret};
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::{ApiError, AppState, request_id};

pub const API_KEY_PREFIX: &str = "agd_";
pub const SESSION_PREFIX: &str = "ags_";

/// An authenticated principal whose scopes have not been checked yet.
pub struct Caller {
    pub credential: Credential,
}

impl Caller {
    /// The tenant context for an operation that needs `scope`; `403` without it.
    pub fn authorize(&self, scope: Scope) -> Result<TenantCtx, ApiError> {
        let c = &self.credential;
        let request_id = request_id::current().unwrap_or_else(agentd_core::RequestId::generate);
        TenantCtx::authorized(c.tenant.id.clone(), c.actor.clone(), c.scopes.clone(), request_id, scope).ok_or_else(
            || {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    format!("this credential lacks the `{}` scope", scope.as_str()),
                )
            },
        )
    }

    /// The caller's tenant as it was when the request was authenticated (for limits).
    pub fn tenant(&self) -> &Tenant {
        &self.credential.tenant
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <API key or session token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
        let credential = authenticate(state, token)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the token is unknown, revoked or expired"))?;
        if credential.tenant.status == TenantStatus::Suspended {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "tenant_suspended",
                "this workspace is suspended; contact the operator",
            ));
        }
        Ok(Caller { credential })
    }
}

async fn authenticate(state: &AppState, token: &str) -> Result<Option<Credential>, ApiError> {
    if let Some(rest) = token.strip_prefix(API_KEY_PREFIX) {
        let Some((prefix, _secret)) = rest.split_once('_') else { return Ok(None) };
        return Ok(state.store.api_key_authenticate_unscoped(prefix, &hash_secret(token)).await?);
    }
    if token.starts_with(SESSION_PREFIX) {
        return Ok(state.store.session_authenticate_unscoped(&hash_secret(token)).await?);
    }
    Ok(None)
}
