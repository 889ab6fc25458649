//! Who belongs to a workspace and with which role: invites (a single-use token with an
//! expiry, only its SHA-256 stored), accepting one (a new user, or an existing one), the
//! members list, role changes and removals, and switching a session to another of the
//! user's workspaces.
//!
//! Rules kept here: only an owner grants, changes or removes the `owner` role (an API
//! key is nobody's role, so it never may); the last owner can neither leave nor be
//! demoted (the store refuses that in the same transaction); removing a member ends their
//! sessions in the workspace and revokes the keys they created there, since those act
//! with the authority the member no longer has.

use agentd_core::{
    AuditAction, Invite, InviteId, InviteStatus, Member, Page, PageRequest, RequestOrigin, ResourceKind, Role, Secret,
    Slug, Tenant, TenantLimits, TenantStatus, Timestamp, UserId,
};
use agentd_store::{FoundInvite, Invitee, MemberRemoved, NewInvite, NewTenant, OPERATOR, Store, hash_secret};

use crate::Control;
use crate::accounts::{Session, hash_password, mint_session, random_text};
use crate::auth::{Admin, Ctx, Read};
use crate::error::{Conflict, ControlError, Forbidden, Result};
use crate::input::{Email, Password, WorkspaceName};
use crate::operators::NewWorkspace;

/// Invite tokens start with this; 40 random letters and digits follow.
pub const INVITE_TOKEN_PREFIX: &str = "agi_";
/// How long an invite may be accepted.
const INVITE_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Who may make an account (`--signup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupPolicy {
    /// Anyone may sign up, and invites may be accepted by new users.
    Open,
    /// No signup; an invite may be accepted by a new user.
    Invite,
    /// No signup; invites are accepted by existing users only, except an operator's
    /// owner invite for a new workspace.
    Closed,
}

/// Whom to invite, with which role.
#[derive(Debug, Clone)]
pub struct InviteSpec {
    pub email: Email,
    pub role: Role,
}

/// A new invite, its token shown this once, and the link to accept it when the server
/// knows its public URL.
#[derive(Debug, Clone)]
pub struct CreatedInvite {
    pub invite: Invite,
    pub token: Secret,
    pub accept_url: Option<String>,
}

/// Who accepts an invite.
pub enum AcceptInvite {
    /// Someone without an account: one is made for the invited email with this password.
    NewUser { password: Password },
    /// An existing user, by their email and password.
    Credentials { email: String, password: String },
    /// An existing user, signed in (their session in any workspace).
    SignedIn(Ctx<Read>),
}

/// An accepted invite: a session in the workspace joined, and the role it gave.
#[derive(Debug, Clone)]
pub struct Joined {
    pub session: Session,
    pub role: Role,
}

/// An operator's new workspace and the owner invite that opens it.
#[derive(Debug, Clone)]
pub struct OwnerInvite {
    pub tenant: Tenant,
    pub invite: CreatedInvite,
}

fn mint_invite(email: &Email, role: Role) -> (NewInvite, Secret) {
    let token = format!("{INVITE_TOKEN_PREFIX}{}", random_text(40));
    let expires_at = Timestamp::now().plus_ms(INVITE_TTL_MS);
    let new = NewInvite { email: email.as_str().to_owned(), role, token_hash: hash_secret(&token), expires_at };
    (new, Secret::new(token))
}

/// `{public_url}/v1/invites/{token}/accept`, the route that accepts it.
fn accept_url(public_url: Option<&str>, token: &Secret) -> Option<String> {
    public_url.map(|base| format!("{}/v1/invites/{}/accept", base.trim_end_matches('/'), token.expose()))
}

/// Makes a workspace with no members and an owner invite for `email`: how an operator
/// onboards a customer when signup is closed. An operator's act: it takes the store
/// itself. The workspace shows up nowhere until the invite is accepted.
pub async fn tenant_create_with_owner_invite(
    store: &Store,
    name: WorkspaceName,
    slug: Slug,
    email: Email,
    limits: TenantLimits,
    public_url: Option<&str>,
) -> Result<OwnerInvite> {
    let by = crate::operators::database_operator();
    workspace_create_with_owner_invite(store, NewWorkspace { name, slug, owner_email: email }, limits, public_url, &by)
        .await
}

/// The workspace and its owner's invite, logged in its audit log as made `by` an operator.
pub(crate) async fn workspace_create_with_owner_invite(
    store: &Store,
    workspace: NewWorkspace,
    limits: TenantLimits,
    public_url: Option<&str>,
    by: &agentd_core::AuditOrigin,
) -> Result<OwnerInvite> {
    let NewWorkspace { name, slug, owner_email: email } = workspace;
    let (new, token) = mint_invite(&email, Role::Owner);
    let tenant = NewTenant { name: name.into_inner(), slug, limits };
    let (tenant, invite) = store.tenant_create_with_owner_invite_unscoped(tenant, new, by).await?;
    tracing::info!(tenant_id = %tenant.id, invite_id = %invite.id, "workspace made by an operator");
    let accept_url = accept_url(public_url, &token);
    Ok(OwnerInvite { tenant, invite: CreatedInvite { invite, token, accept_url } })
}

/// Only an owner touches the owner role.
fn require_owner<C>(ctx: &Ctx<C>) -> Result<()> {
    if ctx.role() == Some(Role::Owner) { Ok(()) } else { Err(Forbidden::OwnerOnly.into()) }
}

impl Control {
    pub async fn invite_create(&self, ctx: &Ctx<Admin>, spec: InviteSpec) -> Result<CreatedInvite> {
        if spec.role == Role::Owner {
            require_owner(ctx)?;
        }
        let (new, token) = mint_invite(&spec.email, spec.role);
        let invite = self.store.invite_create(ctx.store_scope(), new).await?;
        ctx.span().in_scope(|| tracing::info!(invite_id = %invite.id, role = invite.role.as_str(), "invite made"));
        let accept_url = accept_url(self.settings.public_url.as_deref(), &token);
        Ok(CreatedInvite { invite, token, accept_url })
    }

    /// The workspace's pending invites, newest first.
    pub async fn invites_list(&self, ctx: &Ctx<Admin>, page: &PageRequest<InviteId>) -> Result<Page<Invite>> {
        Ok(self.store.invites_list(ctx.store_scope(), page).await?)
    }

    pub async fn invite_revoke(&self, ctx: &Ctx<Admin>, id: &InviteId) -> Result<Invite> {
        Ok(self.store.invite_revoke(ctx.store_scope(), id).await?)
    }

    /// Accepts the invite whose token this is and signs the invitee in to its workspace.
    /// The request from `origin` is logged in the workspace as `invite.accept`.
    pub async fn invite_accept(&self, token: &str, who: AcceptInvite, origin: RequestOrigin) -> Result<Joined> {
        let not_found = || ControlError::NotFound(ResourceKind::Invite);
        if !token.starts_with(INVITE_TOKEN_PREFIX) {
            return Err(not_found());
        }
        let found = self.store.invite_by_token_unscoped(&hash_secret(token)).await?.ok_or_else(not_found)?;
        match found.invite.status {
            InviteStatus::Pending => {}
            InviteStatus::Accepted => return Err(Conflict::InviteUsed.into()),
            InviteStatus::Revoked => return Err(Conflict::InviteRevoked.into()),
            InviteStatus::Expired => return Err(Conflict::InviteExpired.into()),
        }
        if found.tenant.status == TenantStatus::Suspended {
            return Err(Forbidden::TenantSuspended.into());
        }
        let invitee = self.invitee(&found, who).await?;
        let (session, secret, expires_at) = mint_session();
        let accepted = self.store.invite_accept_unscoped(&found, invitee, session, &origin).await?;
        tracing::info!(tenant_id = %found.tenant.id, user_id = %accepted.user.id, "invite accepted");
        let session = Session { token: secret, expires_at, tenant: found.tenant, user: accepted.user };
        Ok(Joined { session, role: accepted.role })
    }

    /// Who accepts: a new user when the server's signup policy lets one in, or an
    /// existing one whose email is the invited one.
    async fn invitee(&self, found: &FoundInvite, who: AcceptInvite) -> Result<Invitee> {
        let user = match who {
            AcceptInvite::NewUser { password } => {
                let operator_owner_invite = found.invite.created_by == OPERATOR && found.invite.role == Role::Owner;
                if self.settings.signup == SignupPolicy::Closed && !operator_owner_invite {
                    return Err(Forbidden::SignupDisabled.into());
                }
                let password_hash = hash_password(password.into_inner()).await?;
                return Ok(Invitee::NewUser { password_hash });
            }
            AcceptInvite::Credentials { email, password } => self.verify_login(&email, password).await?,
            AcceptInvite::SignedIn(ctx) => match (ctx.user(), ctx.session_id()) {
                (Some(user), Some(_)) => user.clone(),
                _ => return Err(Forbidden::SessionRequired.into()),
            },
        };
        if user.email != found.invite.email {
            return Err(Forbidden::InviteEmailMismatch.into());
        }
        Ok(Invitee::Existing { user_id: user.id })
    }

    /// The workspace's members, newest first.
    pub async fn members_list(&self, ctx: &Ctx<Read>, page: &PageRequest<UserId>) -> Result<Page<Member>> {
        Ok(self.store.members_list(ctx.store_scope(), page).await?)
    }

    pub async fn member_get(&self, ctx: &Ctx<Read>, id: &UserId) -> Result<Member> {
        Ok(self.store.member_get(ctx.store_scope(), id).await?)
    }

    /// Gives a member another role. Granting or taking away `owner` takes an owner.
    pub async fn member_set_role(&self, ctx: &Ctx<Admin>, id: &UserId, role: Role) -> Result<Member> {
        let current = self.store.member_get(ctx.store_scope(), id).await?;
        if current.role == Role::Owner || role == Role::Owner {
            require_owner(ctx)?;
        }
        if current.role == role {
            return Ok(current);
        }
        let changed = self.store.member_set_role(ctx.store_scope(), id, current.role, role).await?;
        ctx.span().in_scope(|| tracing::info!(user_id = %id, role = role.as_str(), "member's role changed"));
        Ok(changed)
    }

    /// Removes a member (an owner only by an owner), with their sessions in the
    /// workspace and the keys they created.
    pub async fn member_remove(&self, ctx: &Ctx<Admin>, id: &UserId) -> Result<MemberRemoved> {
        let current = self.store.member_get(ctx.store_scope(), id).await?;
        if current.role == Role::Owner {
            require_owner(ctx)?;
        }
        self.remove(ctx, id, current.role).await
    }

    /// The signed-in caller leaves the workspace (any role may; the last owner may not).
    pub async fn member_leave(&self, ctx: &Ctx<Read>) -> Result<MemberRemoved> {
        let (Some(user), Some(role)) = (ctx.user(), ctx.role()) else {
            return Err(ControlError::NotFound(ResourceKind::Member));
        };
        self.remove(ctx, &user.id, role).await
    }

    async fn remove<C>(&self, ctx: &Ctx<C>, id: &UserId, role: Role) -> Result<MemberRemoved> {
        let removed = self.store.member_remove(ctx.store_scope(), id, role).await?;
        ctx.span().in_scope(|| {
            tracing::info!(user_id = %id, sessions = removed.sessions_ended, keys = removed.keys_revoked, "member removed")
        });
        Ok(removed)
    }

    /// A new session of the signed-in user in another of their workspaces; the session
    /// the request was made with stays as it is. Not a member there: `NotFound`.
    pub async fn workspace_switch(&self, ctx: &Ctx<Read>, slug: &str) -> Result<Session> {
        let user = match (ctx.user(), ctx.session_id()) {
            (Some(user), Some(_)) => user.clone(),
            _ => return Err(Forbidden::SessionRequired.into()),
        };
        let memberships = self.store.memberships_of_unscoped(&user.id).await?;
        let tenant = memberships
            .into_iter()
            .find(|m| m.tenant.slug.as_str() == slug)
            .ok_or(ControlError::NotFound(ResourceKind::Workspace))?
            .tenant;
        let scope = ctx.store_scope();
        let origin = RequestOrigin::new(scope.request_id().clone(), scope.client_ip());
        self.session_open(tenant, user, AuditAction::AuthSwitch, origin).await
    }
}
