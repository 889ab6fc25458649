//! `POST /v1/signup`, `POST /v1/auth/login`, `GET /v1/me`.

use agentd_core::{LoginRequest, LoginResponse, Me, Scope, SignupRequest, SignupResponse};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::ops::accounts;
use crate::{ApiError, AppState};

pub async fn signup(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<SignupResponse>), ApiError> {
    let created = accounts::signup(&state, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    Ok(Json(accounts::login(&state, req).await?))
}

pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let ctx = caller.authorize(Scope::Read)?;
    let tenant = state.store.tenant_get(&ctx).await?;
    let credential = caller.credential;
    Ok(Json(Me {
        tenant,
        actor: credential.actor,
        user: credential.user,
        role: credential.role,
        scopes: credential.scopes,
    }))
}
