//! `/v1/members`, `/v1/invites` (create, list, revoke, accept) and `POST /v1/auth/switch`.

use agentd_api_types::{
    AcceptInviteRequest, AcceptInviteResponse, CreateInviteRequest, CreatedInvite, Invite, LoginResponse, Member, Page,
    PatchMemberRequest, SwitchWorkspaceRequest,
};
use agentd_control::{AcceptInvite, Admin, ControlError, InviteSpec, Principal, Read, input};
use agentd_core::{InviteId, ResourceKind, UserId};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use crate::extract::{ApiJson, ApiQuery, Caller, PageQuery, bearer_token, request_origin};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/members", get(list))
        .route("/members/{id}", get(show).patch(patch).delete(remove))
        .route("/invites", get(invites).post(invite))
        .route("/invites/{id}", delete(revoke))
        .route("/invites/{token}/accept", post(accept))
        .route("/auth/switch", post(switch))
}

fn path_user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(|_| ControlError::NotFound(ResourceKind::Member).into())
}

#[utoipa::path(
    get,
    operation_id = "members_list",
    path = "/v1/members",
    tag = "members",
    summary = "Lists members",
    params(crate::extract::PageQuery),
    responses((status = 200, description = "Members", body = agentd_api_types::Page<agentd_api_types::Member>))
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Member>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    Ok(Json(state.control.members_list(&ctx, &q.parse()?).await?))
}

#[utoipa::path(
    get,
    operation_id = "members_show",
    path = "/v1/members/{id}",
    tag = "members",
    summary = "One member",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The member", body = agentd_api_types::Member))
)]
async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Member>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    Ok(Json(state.control.member_get(&ctx, &path_user_id(&id)?).await?))
}

#[utoipa::path(
    patch,
    operation_id = "members_patch",
    path = "/v1/members/{id}",
    tag = "members",
    summary = "Changes a member's role",
    params(("id" = String, Path, description = "User id")),
    request_body = agentd_api_types::PatchMemberRequest,
    responses((status = 200, description = "The member", body = agentd_api_types::Member))
)]
async fn patch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PatchMemberRequest>,
) -> Result<Json<Member>, ApiError> {
    let ctx = caller.authorize::<Admin>()?;
    Ok(Json(state.control.member_set_role(&ctx, &path_user_id(&id)?, req.role).await?))
}

/// An admin removes a member; any member may remove themselves (leave).
#[utoipa::path(
    delete,
    operation_id = "members_remove",
    path = "/v1/members/{id}",
    tag = "members",
    summary = "Removes a member",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Removed"))
)]
async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_user_id(&id)?;
    match caller.authorize::<Admin>() {
        Ok(ctx) => state.control.member_remove(&ctx, &id).await?,
        Err(refused) => {
            let ctx = caller.authorize::<Read>()?;
            if ctx.user().map(|u| &u.id) != Some(&id) {
                return Err(refused.into());
            }
            state.control.member_leave(&ctx).await?
        }
    };
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    operation_id = "members_invites",
    path = "/v1/invites",
    tag = "members",
    summary = "Lists invites",
    params(crate::extract::PageQuery),
    responses((status = 200, description = "Invites", body = agentd_api_types::Page<agentd_api_types::Invite>))
)]
async fn invites(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Invite>>, ApiError> {
    let ctx = caller.authorize::<Admin>()?;
    Ok(Json(state.control.invites_list(&ctx, &q.parse()?).await?))
}

#[utoipa::path(
    post,
    operation_id = "members_invite",
    path = "/v1/invites",
    tag = "members",
    summary = "Invites someone (token shown once)",
    request_body = agentd_api_types::CreateInviteRequest,
    responses((status = 201, description = "The invite with its token", body = agentd_api_types::CreatedInvite))
)]
async fn invite(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<CreateInviteRequest>,
) -> Result<(StatusCode, Json<CreatedInvite>), ApiError> {
    let ctx = caller.authorize::<Admin>()?;
    let spec = InviteSpec { email: input::Email::parse(&req.email)?, role: req.role };
    let created = state.control.invite_create(&ctx, spec).await?;
    let body =
        CreatedInvite { invite: created.invite, token: created.token.into_exposed(), accept_url: created.accept_url };
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    delete,
    operation_id = "members_revoke",
    path = "/v1/invites/{id}",
    tag = "members",
    summary = "Revokes an invite",
    params(("id" = String, Path, description = "Invite id")),
    responses((status = 200, description = "The invite, revoked", body = agentd_api_types::Invite))
)]
async fn revoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Invite>, ApiError> {
    let ctx = caller.authorize::<Admin>()?;
    let id = InviteId::parse(&id).map_err(|_| ControlError::NotFound(ResourceKind::Invite))?;
    Ok(Json(state.control.invite_revoke(&ctx, &id).await?))
}

/// The caller when a bearer token is sent; none otherwise (accepting as a new user).
struct MaybeCaller(Option<Principal>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer_token(parts)? else { return Ok(MaybeCaller(None)) };
        Ok(MaybeCaller(Some(state.control.authenticate(token, request_origin()).await?)))
    }
}

#[utoipa::path(
    post,
    operation_id = "members_accept",
    path = "/v1/invites/{token}/accept",
    tag = "members",
    summary = "Accepts an invite",
    params(("token" = String, Path, description = "The invite token")),
    request_body = agentd_api_types::AcceptInviteRequest,
    responses((status = 200, description = "A session in the workspace joined", body = agentd_api_types::AcceptInviteResponse)),
    security((), ("bearer" = []))
)]
async fn accept(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Path(token): Path<String>,
    ApiJson(req): ApiJson<AcceptInviteRequest>,
) -> Result<Json<AcceptInviteResponse>, ApiError> {
    let who = match (caller, req.email, req.password) {
        (Some(caller), None, None) => AcceptInvite::SignedIn(caller.authorize::<Read>()?),
        (None, None, Some(password)) => AcceptInvite::NewUser { password: input::Password::parse(password)? },
        (None, Some(email), Some(password)) => AcceptInvite::Credentials { email, password },
        _ => {
            return Err(ApiError::request(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "send {\"password\"} to make an account, {\"email\", \"password\"} of an existing account, \
                 or {} with that account's session as the bearer",
            ));
        }
    };
    let joined = state.control.invite_accept(&token, who, request_origin()).await?;
    let session = joined.session;
    Ok(Json(AcceptInviteResponse {
        token: session.token.into_exposed(),
        expires_at: session.expires_at,
        tenant: session.tenant,
        user: session.user,
        role: joined.role,
    }))
}

/// A new session in another of the signed-in user's workspaces.
#[utoipa::path(
    post,
    operation_id = "members_switch",
    path = "/v1/auth/switch",
    tag = "accounts",
    summary = "Switches the session to another workspace",
    request_body = agentd_api_types::SwitchWorkspaceRequest,
    responses((status = 200, description = "A session in that workspace", body = agentd_api_types::LoginResponse))
)]
async fn switch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<SwitchWorkspaceRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let session = state.control.workspace_switch(&ctx, &req.workspace_slug).await?;
    Ok(Json(LoginResponse {
        token: session.token.into_exposed(),
        expires_at: session.expires_at,
        tenant: session.tenant,
        user: session.user,
    }))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, patch, remove, invites, invite, revoke, accept, switch))]
pub(super) struct Doc;
