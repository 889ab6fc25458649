//! A workspace's members: listing them, changing a role, removing one. Every workspace
//! keeps at least one owner: a change that would leave none is refused in the same
//! transaction that would make it, with the owners' rows locked on PostgreSQL so that two
//! owners demoting each other at once cannot both pass.

use agentd_core::{AuditAction, Member, Page, PageRequest, ResourceKind, Role, TenantScope, Timestamp, UserId};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::{Audit, resource};
use crate::error::Conflict;
use crate::{Backend, Result, Store, StoreError, rows};

/// What removing a member took away with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRemoved {
    /// Their sessions in the workspace, ended.
    pub sessions_ended: u64,
    /// The workspace's live API keys they created (or that were made with those), revoked.
    pub keys_revoked: u64,
}

const MEMBER_COLUMNS: &str = "user_id, email, role, created_at";

fn member(row: &AnyRow) -> Result<Member> {
    Ok(Member {
        id: UserId::from_trusted(row.try_get("user_id")?),
        email: row.try_get("email")?,
        role: Role::parse(row.try_get("role")?).map_err(|e| StoreError::corrupt("role", e))?,
        created_at: rows::ts(row, "created_at")?,
    })
}

impl Store {
    /// The workspace's members, newest first.
    pub async fn members_list(&self, ctx: &TenantScope, page: &PageRequest<UserId>) -> Result<Page<Member>> {
        let limit = i64::from(page.limit());
        let mut tx = self.begin_scoped_read(ctx).await?;
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM workspace_members
             WHERE tenant_id = $1 AND ($2 IS NULL OR user_id < $2) ORDER BY user_id DESC LIMIT $3"
        );
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ctx.tenant_id().as_str())
            .bind(page.after().map(UserId::as_str))
            .bind(limit + 1)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let members = found.iter().map(member).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(members, limit, |m| m.id.to_string()))
    }

    pub async fn member_get(&self, ctx: &TenantScope, user_id: &UserId) -> Result<Member> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = member_row(&mut tx, ctx, user_id).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// Gives a member `role`, if their role is still `expected` (what the caller's rules
    /// were checked against). Demoting the last owner is `Conflict::LastOwner`.
    pub async fn member_set_role(
        &self,
        ctx: &TenantScope,
        user_id: &UserId,
        expected: Role,
        role: Role,
    ) -> Result<Member> {
        let mut tx = self.begin_scoped(ctx).await?;
        if expected == Role::Owner && role != Role::Owner {
            self.keep_an_owner(&mut tx, ctx).await?;
        }
        let changed =
            sqlx::query("UPDATE memberships SET role = $1 WHERE tenant_id = $2 AND user_id = $3 AND role = $4")
                .bind(role.as_str())
                .bind(ctx.tenant_id().as_str())
                .bind(user_id.as_str())
                .bind(expected.as_str())
                .execute(&mut *tx)
                .await?;
        if changed.rows_affected() == 0 {
            return Err(StoreError::NotFound(ResourceKind::Member));
        }
        let updated = member_row(&mut tx, ctx, user_id).await?;
        Audit::new(AuditAction::MemberRoleChange, resource::MEMBER, user_id.as_str())
            .details(serde_json::json!({"email": updated.email, "from": expected, "to": role}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Removes a member whose role is still `expected`, ends their sessions in the
    /// workspace and revokes the live keys they created there, in one transaction.
    /// Removing the last owner is `Conflict::LastOwner`.
    pub async fn member_remove(&self, ctx: &TenantScope, user_id: &UserId, expected: Role) -> Result<MemberRemoved> {
        let mut tx = self.begin_scoped(ctx).await?;
        if expected == Role::Owner {
            self.keep_an_owner(&mut tx, ctx).await?;
        }
        let tenant = ctx.tenant_id().as_str();
        let removed = sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2 AND role = $3")
            .bind(tenant)
            .bind(user_id.as_str())
            .bind(expected.as_str())
            .execute(&mut *tx)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(StoreError::NotFound(ResourceKind::Member));
        }
        let sessions = sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await?;
        let keys_revoked = revoke_keys_made_by(&mut tx, ctx, user_id.as_str()).await?;
        Audit::new(AuditAction::MemberRemove, resource::MEMBER, user_id.as_str())
            .details(serde_json::json!({
                "role": expected,
                "sessions_ended": sessions.rows_affected(),
                "keys_revoked": keys_revoked,
            }))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(MemberRemoved { sessions_ended: sessions.rows_affected(), keys_revoked })
    }

    /// Refuses, inside `tx`, a change that takes one owner away when there is only one.
    /// On PostgreSQL the owners' rows stay locked until `tx` ends, so a concurrent change
    /// waits and then counts what this one left.
    async fn keep_an_owner(&self, tx: &mut Transaction<'static, Any>, ctx: &TenantScope) -> Result<()> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            // One writer: transactions on it never interleave.
            Backend::Sqlite => "",
        };
        let sql = format!("SELECT user_id FROM memberships WHERE tenant_id = $1 AND role = 'owner'{lock}");
        let owners = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ctx.tenant_id().as_str()).fetch_all(&mut **tx).await?;
        if owners.len() <= 1 {
            return Err(Conflict::LastOwner.into());
        }
        Ok(())
    }
}

/// Revokes the live keys `creator` made, and those made with them, and so on: a key made
/// with a key names that key as its creator, and carries the same authority.
async fn revoke_keys_made_by(tx: &mut Transaction<'static, Any>, ctx: &TenantScope, creator: &str) -> Result<u64> {
    let now = Timestamp::now().unix_ms();
    let tenant = ctx.tenant_id().as_str();
    let mut creators = vec![creator.to_owned()];
    let mut revoked = 0;
    while let Some(creator) = creators.pop() {
        let made: Vec<String> = sqlx::query_scalar("SELECT id FROM api_keys WHERE tenant_id = $1 AND created_by = $2")
            .bind(tenant)
            .bind(&creator)
            .fetch_all(&mut **tx)
            .await?;
        let ended = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND created_by = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(tenant)
        .bind(&creator)
        .execute(&mut **tx)
        .await?;
        revoked += ended.rows_affected();
        creators.extend(made);
    }
    Ok(revoked)
}

async fn member_row(tx: &mut Transaction<'static, Any>, ctx: &TenantScope, user_id: &UserId) -> Result<Member> {
    let sql = format!("SELECT {MEMBER_COLUMNS} FROM workspace_members WHERE tenant_id = $1 AND user_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ctx.tenant_id().as_str())
        .bind(user_id.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound(ResourceKind::Member))?;
    member(&row)
}
