//! Invites to a workspace and their acceptance. Only the SHA-256 of an invite's token is
//! kept. Accepting happens before any tenant is known (the token names it), so the
//! lookup and the acceptance are `unscoped`; the acceptance marks the invite used, makes
//! the user when they are new, adds the membership and opens a session in one
//! transaction, and passes only an invite that is still pending, so a token works once.

use agentd_core::{
    Actor, AuditAction, AuditActor, AuditOrigin, Invite, InviteId, InviteStatus, Page, PageRequest, RequestOrigin,
    ResourceKind, Role, Slug, Tenant, TenantId, TenantLimits, TenantScope, Timestamp, User, UserId,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::{Audit, resource};
use crate::credentials::NewSession;
use crate::error::{Conflict, is_unique_violation};
use crate::{Result, Store, StoreError, rows};

/// Who an operator's owner invite says made it.
pub const OPERATOR: &str = "operator";

pub struct NewInvite {
    pub email: String,
    pub role: Role,
    pub token_hash: String,
    pub expires_at: Timestamp,
}

/// A workspace an operator makes: no members yet, only an owner invite.
pub struct NewTenant {
    pub name: String,
    pub slug: Slug,
    pub limits: TenantLimits,
}

/// Who accepts an invite.
pub enum Invitee {
    /// Someone without an account: one is made with the invite's email.
    NewUser { password_hash: String },
    /// An existing user, already authenticated by the domain.
    Existing { user_id: UserId },
}

/// An invite as acceptance needs it: with its workspace.
pub struct FoundInvite {
    pub invite: Invite,
    pub tenant: Tenant,
}

/// What an accepted invite made.
pub struct Accepted {
    pub user: User,
    pub role: Role,
}

/// Pending until accepted, revoked or past its expiry; the first of those says which.
fn invite_status(
    accepted_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    expires_at: Timestamp,
    now: Timestamp,
) -> InviteStatus {
    match (accepted_at, revoked_at) {
        (Some(_), _) => InviteStatus::Accepted,
        (None, Some(_)) => InviteStatus::Revoked,
        (None, None) if expires_at <= now => InviteStatus::Expired,
        (None, None) => InviteStatus::Pending,
    }
}

fn invite(row: &AnyRow, now: Timestamp) -> Result<Invite> {
    let accepted_at = rows::opt_ts(row, "accepted_at")?;
    let revoked_at = rows::opt_ts(row, "revoked_at")?;
    let expires_at = rows::ts(row, "expires_at")?;
    Ok(Invite {
        id: InviteId::from_trusted(row.try_get("id")?),
        email: row.try_get("email")?,
        role: Role::parse(row.try_get("role")?).map_err(|e| StoreError::corrupt("role", e))?,
        status: invite_status(accepted_at, revoked_at, expires_at, now),
        created_by: row.try_get("created_by")?,
        created_at: rows::ts(row, "created_at")?,
        expires_at,
        accepted_at,
        revoked_at,
    })
}

async fn insert_invite(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    created_by: &str,
    new: &NewInvite,
    now: Timestamp,
) -> Result<Invite> {
    let id = InviteId::generate();
    sqlx::query(
        "INSERT INTO invites (id, tenant_id, email, role, token_hash, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id.as_str())
    .bind(tenant_id.as_str())
    .bind(&new.email)
    .bind(new.role.as_str())
    .bind(&new.token_hash)
    .bind(created_by)
    .bind(now.unix_ms())
    .bind(new.expires_at.unix_ms())
    .execute(&mut **tx)
    .await?;
    Ok(Invite {
        id,
        email: new.email.clone(),
        role: new.role,
        status: InviteStatus::Pending,
        created_by: created_by.to_owned(),
        created_at: now,
        expires_at: new.expires_at,
        accepted_at: None,
        revoked_at: None,
    })
}

impl Store {
    /// Invites `new.email`; someone who is a member already is `Conflict::AlreadyMember`.
    pub async fn invite_create(&self, ctx: &TenantScope, new: NewInvite) -> Result<Invite> {
        let mut tx = self.begin_scoped(ctx).await?;
        let member: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM workspace_members WHERE tenant_id = $1 AND email = $2")
                .bind(ctx.tenant_id().as_str())
                .bind(&new.email)
                .fetch_optional(&mut *tx)
                .await?;
        if member.is_some() {
            return Err(Conflict::AlreadyMember.into());
        }
        let created = insert_invite(&mut tx, ctx.tenant_id(), ctx.actor().id_str(), &new, Timestamp::now()).await?;
        Audit::new(AuditAction::InviteCreate, resource::INVITE, created.id.as_str())
            .details(serde_json::json!({"email": created.email, "role": created.role}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The workspace's pending invites, newest first.
    pub async fn invites_list(&self, ctx: &TenantScope, page: &PageRequest<InviteId>) -> Result<Page<Invite>> {
        let limit = i64::from(page.limit());
        let now = Timestamp::now();
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(
            "SELECT * FROM invites
             WHERE tenant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2
               AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(now.unix_ms())
        .bind(page.after().map(InviteId::as_str))
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let invites = found.iter().map(|row| invite(row, now)).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(invites, limit, |i| i.id.to_string()))
    }

    /// Revokes an invite that was not accepted; revoking twice keeps the first time. An
    /// accepted one is `Conflict::InviteUsed`.
    pub async fn invite_revoke(&self, ctx: &TenantScope, id: &InviteId) -> Result<Invite> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(ctx).await?;
        let row = sqlx::query(
            "UPDATE invites SET revoked_at = COALESCE(revoked_at, $1)
             WHERE id = $2 AND tenant_id = $3 AND accepted_at IS NULL RETURNING *",
        )
        .bind(now.unix_ms())
        .bind(id.as_str())
        .bind(ctx.tenant_id().as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM invites WHERE id = $1 AND tenant_id = $2")
                .bind(id.as_str())
                .bind(ctx.tenant_id().as_str())
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => Conflict::InviteUsed.into(),
                None => StoreError::NotFound(ResourceKind::Invite),
            });
        };
        let revoked = invite(&row, now)?;
        // Revoking again changes nothing, so only the first revocation is an event.
        if revoked.revoked_at == Some(now) {
            Audit::new(AuditAction::InviteRevoke, resource::INVITE, id.as_str())
                .details(serde_json::json!({"email": revoked.email, "role": revoked.role}))
                .record(&mut tx, ctx)
                .await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    /// The invite whose token has this hash, with its workspace, whatever its status.
    pub async fn invite_by_token_unscoped(&self, token_hash: &str) -> Result<Option<FoundInvite>> {
        let row = sqlx::query(
            "SELECT i.id AS invite_id, i.email, i.role, i.created_by, i.created_at AS invite_created_at,
                    i.expires_at, i.accepted_at, i.revoked_at, t.*
             FROM invites i JOIN tenants t ON t.id = i.tenant_id WHERE i.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let now = Timestamp::now();
        let accepted_at = rows::opt_ts(&row, "accepted_at")?;
        let revoked_at = rows::opt_ts(&row, "revoked_at")?;
        let expires_at = rows::ts(&row, "expires_at")?;
        let found = Invite {
            id: InviteId::from_trusted(row.try_get("invite_id")?),
            email: row.try_get("email")?,
            role: Role::parse(row.try_get("role")?).map_err(|e| StoreError::corrupt("role", e))?,
            status: invite_status(accepted_at, revoked_at, expires_at, now),
            created_by: row.try_get("created_by")?,
            created_at: rows::ts(&row, "invite_created_at")?,
            expires_at,
            accepted_at,
            revoked_at,
        };
        Ok(Some(FoundInvite { invite: found, tenant: rows::tenant(&row, &self.default_limits)? }))
    }

    /// Accepts a pending invite for `invitee` and opens `session` for them in its
    /// workspace, all in one transaction. An invite no longer pending (accepted, revoked
    /// or expired meanwhile) is `Conflict::InviteUsed`; a new user whose email has an
    /// account is `Conflict::EmailTaken`; a member already, `Conflict::AlreadyMember`.
    pub async fn invite_accept_unscoped(
        &self,
        found: &FoundInvite,
        invitee: Invitee,
        session: NewSession,
        origin: &RequestOrigin,
    ) -> Result<Accepted> {
        let now = Timestamp::now();
        let tenant_id = found.tenant.id.as_str();
        let mut tx = self.writer.begin().await?;
        let user = match invitee {
            Invitee::NewUser { password_hash } => {
                let user = User { id: UserId::generate(), email: found.invite.email.clone(), created_at: now };
                sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(user.id.as_str())
                    .bind(&user.email)
                    .bind(&password_hash)
                    .bind(now.unix_ms())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match is_unique_violation(&e) {
                        true => Conflict::EmailTaken.into(),
                        false => StoreError::from(e),
                    })?;
                user
            }
            Invitee::Existing { user_id } => {
                let row = sqlx::query("SELECT * FROM users WHERE id = $1")
                    .bind(user_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound(ResourceKind::Member))?;
                rows::user(&row)?
            }
        };
        let used = sqlx::query(
            "UPDATE invites SET accepted_at = $1, accepted_by = $2
             WHERE id = $3 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now.unix_ms())
        .bind(user.id.as_str())
        .bind(found.invite.id.as_str())
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() == 0 {
            return Err(Conflict::InviteUsed.into());
        }
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant_id)
            .bind(user.id.as_str())
            .bind(found.invite.role.as_str())
            .bind(now.unix_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| match is_unique_violation(&e) {
                true => Conflict::AlreadyMember.into(),
                false => StoreError::from(e),
            })?;
        let session_id = agentd_core::SessionId::generate();
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, tenant_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session_id.as_str())
        .bind(&session.token_hash)
        .bind(tenant_id)
        .bind(user.id.as_str())
        .bind(now.unix_ms())
        .bind(session.expires_at.unix_ms())
        .execute(&mut *tx)
        .await?;
        let by = AuditOrigin::new(AuditActor::from(&Actor::User { id: user.id.clone() }), origin.clone());
        Audit::new(AuditAction::InviteAccept, resource::INVITE, found.invite.id.as_str())
            .details(serde_json::json!({"role": found.invite.role, "user_id": user.id, "session_id": session_id}))
            .record_by(&mut tx, &found.tenant.id, &by)
            .await?;
        tx.commit().await?;
        Ok(Accepted { user, role: found.invite.role })
    }

    /// An operator's new workspace: the tenant, with no member, and an owner invite
    /// (made by [`OPERATOR`]) in one transaction. Until the invite is accepted nobody can
    /// sign in to it.
    pub async fn tenant_create_with_owner_invite_unscoped(
        &self,
        new: NewTenant,
        invite: NewInvite,
        by: &AuditOrigin,
    ) -> Result<(Tenant, Invite)> {
        let now = Timestamp::now();
        let mut tx = self.writer.begin().await?;
        let tenant = self.insert_tenant(&mut tx, new.slug, new.name, new.limits, now).await?;
        let created = insert_invite(&mut tx, &tenant.id, OPERATOR, &invite, now).await?;
        Audit::new(AuditAction::TenantCreate, resource::TENANT, tenant.id.as_str())
            .details(serde_json::json!({"slug": tenant.slug, "invite_id": created.id, "owner_email": created.email}))
            .record_by(&mut tx, &tenant.id, by)
            .await?;
        tx.commit().await?;
        Ok((tenant, created))
    }
}
