//! Worker tokens: the credentials remote workers present. Created by the operator with
//! direct database access (`agentd admin workers create-token`); only the SHA-256 of the
//! token is stored. And what operators see of the workers: each process as it was last
//! seen, and the queue they serve.

use std::collections::BTreeMap;

use agentd_core::operators::{QueueStats, TenantQueue, WORKER_LIVE_S, WorkerProcess};
use agentd_core::{TenantId, Timestamp, WorkerTokenId};
use sqlx::Row;

use crate::{Result, Store, rows};

impl Store {
    /// Records a new worker token whose SHA-256 is `token_hash`.
    pub async fn worker_token_create_unscoped(&self, name: &str, token_hash: &str) -> Result<WorkerTokenId> {
        let id = WorkerTokenId::generate();
        sqlx::query("INSERT INTO worker_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id.as_str())
            .bind(name)
            .bind(token_hash)
            .bind(Timestamp::now().unix_ms())
            .execute(&self.writer)
            .await?;
        Ok(id)
    }

    /// Revokes a worker token: a worker using it is refused from its next request on.
    /// Returns whether there was such a token, not yet revoked.
    pub async fn worker_token_revoke_unscoped(&self, id: &WorkerTokenId) -> Result<bool> {
        let done = sqlx::query("UPDATE worker_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(Timestamp::now().unix_ms())
            .bind(id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The live worker token with this hash, if any.
    pub async fn worker_token_authenticate_unscoped(&self, token_hash: &str) -> Result<Option<WorkerTokenId>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM worker_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await?;
        Ok(id.map(WorkerTokenId::from_trusted))
    }
}

/// A worker process reporting in: its lease owner, the worker token it holds (none for a
/// server's in-process worker), its own name and its run slots.
#[derive(Debug, Clone)]
pub struct WorkerSighting<'a> {
    pub lease_owner: &'a str,
    pub worker_token_id: Option<&'a WorkerTokenId>,
    pub name: &'a str,
    pub slots: Option<u32>,
}

/// Workers not seen for this long are forgotten.
const WORKER_FORGOTTEN_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

impl Store {
    /// Records that a worker process was seen now (its heartbeat), creating its row the
    /// first time; slots it did not state are kept as they were.
    pub async fn worker_seen_unscoped(&self, seen: &WorkerSighting<'_>) -> Result<()> {
        let now = Timestamp::now().unix_ms();
        sqlx::query(
            "INSERT INTO workers (lease_owner, worker_token_id, name, slots, first_seen_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (lease_owner) DO UPDATE SET last_seen_at = $5, slots = COALESCE($4, workers.slots)",
        )
        .bind(seen.lease_owner)
        .bind(seen.worker_token_id.map(WorkerTokenId::as_str))
        .bind(seen.name)
        .bind(seen.slots.map(i64::from))
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The worker processes seen in the last day, most recently seen first, with the
    /// runs each holds a lease on now.
    pub async fn workers_list_unscoped(&self) -> Result<Vec<WorkerProcess>> {
        let now = Timestamp::now().unix_ms();
        let found = sqlx::query(
            "SELECT w.*, (SELECT COUNT(*) FROM invocations i WHERE i.status = 'running' AND i.lease_owner = w.lease_owner)
                AS in_flight
             FROM workers w WHERE w.last_seen_at >= $1 ORDER BY w.last_seen_at DESC, w.lease_owner",
        )
        .bind(now - WORKER_FORGOTTEN_AFTER_MS)
        .fetch_all(&self.reader)
        .await?;
        found
            .iter()
            .map(|row| {
                let last_seen_at = rows::ts(row, "last_seen_at")?;
                let slots: Option<i64> = row.try_get("slots")?;
                let token: Option<String> = row.try_get("worker_token_id")?;
                Ok(WorkerProcess {
                    lease_owner: row.try_get("lease_owner")?,
                    name: row.try_get("name")?,
                    worker_token_id: token.map(WorkerTokenId::from_trusted),
                    slots: slots.and_then(|s| u32::try_from(s).ok()),
                    runs_in_flight: rows::u64_col(row, "in_flight")?,
                    first_seen_at: rows::ts(row, "first_seen_at")?,
                    live: now - last_seen_at.unix_ms() <= WORKER_LIVE_S as i64 * 1000,
                    last_seen_at,
                })
            })
            .collect()
    }

    /// The queue across tenants: unfinished invocations by tenant and status, the oldest
    /// ready run, and the claims of the last minute.
    pub async fn queue_stats_unscoped(&self) -> Result<QueueStats> {
        let now = Timestamp::now().unix_ms();
        let found = sqlx::query(
            "SELECT i.tenant_id, t.slug, i.status, COUNT(*) AS n,
                MIN(CASE WHEN i.status IN ('queued', 'retrying') AND i.run_after <= $1 THEN i.created_at END) AS oldest
             FROM invocations i JOIN tenants t ON t.id = i.tenant_id
             WHERE i.status IN ('queued', 'retrying', 'running', 'waiting_for_input')
             GROUP BY i.tenant_id, t.slug, i.status ORDER BY i.tenant_id",
        )
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        let mut depth = BTreeMap::new();
        let mut tenants: Vec<TenantQueue> = Vec::new();
        for row in &found {
            let tenant_id: String = row.try_get("tenant_id")?;
            let status: String = row.try_get("status")?;
            let n = rows::u64_col(row, "n")?;
            let oldest: Option<i64> = row.try_get("oldest")?;
            *depth.entry(status.clone()).or_insert(0) += n;
            if tenants.last().is_none_or(|t| t.tenant_id.as_str() != tenant_id) {
                tenants.push(TenantQueue {
                    tenant_id: TenantId::from_trusted(tenant_id),
                    slug: row.try_get("slug")?,
                    depth: BTreeMap::new(),
                    oldest_queued_at: None,
                });
            }
            if let Some(tenant) = tenants.last_mut() {
                tenant.depth.insert(status, n);
                if let Some(oldest) = oldest {
                    let earlier = tenant.oldest_queued_at.is_none_or(|at| oldest < at.unix_ms());
                    if earlier {
                        tenant.oldest_queued_at = Some(Timestamp::from_unix_ms(oldest));
                    }
                }
            }
        }
        let oldest = tenants.iter().filter_map(|t| t.oldest_queued_at).min();
        let claims: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invocations WHERE claimed_at >= $1")
            .bind(now - 60_000)
            .fetch_one(&self.reader)
            .await?;
        let claims = claims.max(0) as u64;
        Ok(QueueStats {
            depth,
            oldest_queued_age_s: oldest.map(|at| (now - at.unix_ms()).max(0) as f64 / 1000.0),
            claims_last_minute: claims,
            claim_rate_per_s: claims as f64 / 60.0,
            tenants,
        })
    }
}
