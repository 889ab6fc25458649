//! `POST /v1/signup`, `POST /v1/auth/login`, `POST /v1/auth/logout`, `GET /v1/me`,
//! `GET /v1/sessions`, `DELETE /v1/sessions/{id}`.

use agentd_api_types::{LoginRequest, LoginResponse, Me, MeRun, Page, SessionInfo, SignupRequest, SignupResponse};
use agentd_control::{ControlError, Login, Read, Signup, input};
use agentd_core::{ResourceKind, SessionId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::keys::created_key;
use crate::extract::{ApiJson, Caller, request_origin};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signup", post(signup))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
        .route("/sessions", get(sessions))
        .route("/sessions/{id}", delete(revoke_session))
}

/// Ends the session the request was made with (`204`); its token is refused from now on.
#[utoipa::path(
    post,
    operation_id = "accounts_logout",
    path = "/v1/auth/logout",
    tag = "accounts",
    summary = "Ends the calling session",
    responses((status = 204, description = "The session is revoked"))
)]
async fn logout(State(state): State<AppState>, Caller(caller): Caller) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    state.control.logout(&ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    operation_id = "accounts_sessions",
    path = "/v1/sessions",
    tag = "accounts",
    summary = "The calling user's sessions",
    responses((status = 200, description = "Sessions", body = agentd_api_types::Page<agentd_api_types::SessionInfo>))
)]
async fn sessions(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<Page<SessionInfo>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let data = state.control.sessions_list(&ctx).await?;
    Ok(Json(Page { data, next_cursor: None }))
}

#[utoipa::path(
    delete,
    operation_id = "accounts_revoke_session",
    path = "/v1/sessions/{id}",
    tag = "accounts",
    summary = "Revokes a session",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"))
)]
async fn revoke_session(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let id = SessionId::parse(&id).map_err(|_| ControlError::NotFound(ResourceKind::Session))?;
    state.control.session_revoke(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    operation_id = "accounts_signup",
    path = "/v1/signup",
    tag = "accounts",
    summary = "Sign up: a workspace, its owner and a first API key",
    request_body = agentd_api_types::SignupRequest,
    responses((status = 201, description = "The workspace, its owner and the API key (secret shown once)", body = agentd_api_types::SignupResponse)),
    security(())
)]
async fn signup(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<SignupResponse>), ApiError> {
    let signup = Signup {
        email: input::Email::parse(&req.email)?,
        password: input::Password::parse(req.password)?,
        workspace_name: input::WorkspaceName::parse(&req.workspace_name)?,
        workspace_slug: input::workspace_slug(&req.workspace_slug)?,
    };
    let created = state.control.signup(signup, request_origin()).await?;
    let response = SignupResponse { tenant: created.tenant, user: created.user, api_key: created_key(created.api_key) };
    Ok((StatusCode::CREATED, Json(response)))
}

#[utoipa::path(
    post,
    operation_id = "accounts_login",
    path = "/v1/auth/login",
    tag = "accounts",
    summary = "Sign in: a session token",
    request_body = agentd_api_types::LoginRequest,
    responses((status = 200, description = "A session", body = agentd_api_types::LoginResponse)),
    security(())
)]
async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let login = Login { email: req.email, password: req.password, workspace_slug: req.workspace_slug };
    let session = state.control.login(login, request_origin()).await?;
    Ok(Json(LoginResponse {
        token: session.token.into_exposed(),
        expires_at: session.expires_at,
        tenant: session.tenant,
        user: session.user,
    }))
}

/// Any caller may ask who it is, a run with its own token too.
#[utoipa::path(
    get,
    operation_id = "accounts_me",
    path = "/v1/me",
    tag = "accounts",
    summary = "The caller: workspace, user or key, scopes",
    responses((status = 200, description = "The caller", body = agentd_api_types::Me))
)]
async fn me(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<Me>, ApiError> {
    let ctx = caller.authorize_run::<Read>()?;
    let me = state.control.me(&ctx).await?;
    let run = me.run.map(|run| MeRun {
        invocation_id: run.invocation_id,
        agent: run.agent,
        agent_id: run.agent_id,
        thread_id: run.thread_id.as_ref().map(ToString::to_string),
        depth: run.depth,
        attempt: run.attempt,
    });
    Ok(Json(Me { tenant: me.tenant, actor: me.actor, user: me.user, role: me.role, scopes: me.scopes, run }))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(signup, login, logout, me, sessions, revoke_session))]
pub(super) struct Doc;
