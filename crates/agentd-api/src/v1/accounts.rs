//! `POST /v1/signup`, `POST /v1/auth/login`, `GET /v1/me`.

use agentd_api_types::{LoginRequest, LoginResponse, Me, MeRun, SignupRequest, SignupResponse};
use agentd_control::{Login, Read, Signup, input};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::keys::created_key;
use crate::extract::{ApiJson, Caller};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/signup", post(signup)).route("/auth/login", post(login)).route("/me", get(me))
}

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
    let created = state.control.signup(signup).await?;
    let response = SignupResponse { tenant: created.tenant, user: created.user, api_key: created_key(created.api_key) };
    Ok((StatusCode::CREATED, Json(response)))
}

async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let login = Login { email: req.email, password: req.password, workspace_slug: req.workspace_slug };
    let session = state.control.login(login).await?;
    Ok(Json(LoginResponse {
        token: session.token.into_exposed(),
        expires_at: session.expires_at,
        tenant: session.tenant,
        user: session.user,
    }))
}

/// Any caller may ask who it is, a run with its own token too.
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
