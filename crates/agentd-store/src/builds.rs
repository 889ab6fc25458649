//! Dependency builds: created with the version that needs one (or found, when the tenant
//! already built the same digest), claimed by a worker under a lease like a run, logged
//! to and finished with fencing on `(id, lease_owner, attempt)`, and copied onto every
//! version that waits for them. Finishing ready activates the versions deployed to be
//! active, unless a newer version was activated meanwhile.

use std::time::Duration;

use agentd_core::queue::{BuildLease, BuildOutcome};
use agentd_core::{
    BuildId, BuildLogLine, BuildStatus, DependencyBuild, ResourceKind, TenantId, TenantLimits, TenantScope, Timestamp,
};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Backend, Result, Signal, Store, StoreError, rows};

/// The build a new version needs: what [`Store::version_create`] finds or creates.
#[derive(Debug, Clone)]
pub struct NewBuild {
    /// The dependency digest: the cache key within the tenant.
    pub digest: String,
    pub bundle_digest: String,
    pub runtime: String,
    /// The bundle crate's plan, as JSON.
    pub plan: Value,
    pub installer: String,
    pub warnings: Vec<String>,
}

/// A claimed build as the store knows it; the domain adds the index settings.
#[derive(Debug, Clone)]
pub struct BuildClaim {
    pub build_id: BuildId,
    pub tenant_id: TenantId,
    pub attempt: u32,
    pub bundle_digest: String,
    pub runtime: String,
    pub plan: Value,
    pub limits: TenantLimits,
    pub next_seq: u64,
}

/// A build found or created for a version, inside its transaction.
pub(crate) struct BuildRef {
    pub(crate) id: String,
    pub(crate) status: BuildStatus,
    pub(crate) archive_digest: Option<String>,
    pub(crate) created: bool,
}

/// Starts after which a build whose workers keep vanishing fails instead of starting again.
const MAX_BUILD_STARTS: u32 = 3;

pub(crate) fn build_status(row: &AnyRow, col: &'static str) -> Result<BuildStatus> {
    let raw: String = row.try_get(col)?;
    BuildStatus::parse(&raw).ok_or_else(|| StoreError::corrupt(col, raw))
}

fn warnings(row: &AnyRow, col: &'static str) -> Result<Vec<String>> {
    serde_json::from_value(rows::json(row, col)?).map_err(|e| StoreError::corrupt(col, e))
}

pub(crate) fn version_build(row: &AnyRow) -> Result<agentd_core::VersionBuild> {
    let id: Option<String> = row.try_get("build_id")?;
    Ok(agentd_core::VersionBuild {
        status: build_status(row, "build_status")?,
        id: id.map(BuildId::from_trusted),
        dependencies_digest: row.try_get("dependencies_digest")?,
        installer: row.try_get("installer")?,
        error: row.try_get("build_error")?,
        warnings: warnings(row, "build_warnings")?,
    })
}

fn dependency_build(row: &AnyRow) -> Result<DependencyBuild> {
    let installed: Option<i64> = row.try_get("installed_bytes")?;
    Ok(DependencyBuild {
        id: BuildId::from_trusted(row.try_get("id")?),
        status: build_status(row, "status")?,
        runtime: row.try_get("runtime")?,
        installer: row.try_get("installer")?,
        dependencies_digest: row.try_get("digest")?,
        error: row.try_get("error")?,
        warnings: warnings(row, "warnings")?,
        attempt: rows::u32_col(row, "attempt")?,
        installed_bytes: installed.map(i64::unsigned_abs),
        created_at: rows::ts(row, "created_at")?,
        started_at: rows::opt_ts(row, "started_at")?,
        finished_at: rows::opt_ts(row, "finished_at")?,
    })
}

/// The tenant's current build of `new.digest`, created pending when there is none (or
/// only failed ones). Concurrent deploys of one digest end up with the same build: the
/// partial unique index turns the second insert into a no-op.
pub(crate) async fn find_or_create(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    new: &NewBuild,
) -> Result<BuildRef> {
    let find = || {
        sqlx::query(
            "SELECT id, status, archive_digest FROM dependency_builds
             WHERE tenant_id = $1 AND digest = $2 AND status <> 'failed'",
        )
        .bind(tenant_id.as_str())
        .bind(&new.digest)
    };
    if let Some(row) = find().fetch_optional(&mut **tx).await? {
        return Ok(BuildRef {
            id: row.try_get("id")?,
            status: build_status(&row, "status")?,
            archive_digest: row.try_get("archive_digest")?,
            created: false,
        });
    }
    let plan = serde_json::to_string(&new.plan).map_err(|e| StoreError::corrupt("plan", e))?;
    let warnings = serde_json::to_string(&new.warnings).map_err(|e| StoreError::corrupt("warnings", e))?;
    let id = BuildId::generate();
    let inserted = sqlx::query(
        "INSERT INTO dependency_builds
             (id, tenant_id, digest, bundle_digest, runtime, plan, installer, warnings, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9) ON CONFLICT DO NOTHING",
    )
    .bind(id.as_str())
    .bind(tenant_id.as_str())
    .bind(&new.digest)
    .bind(&new.bundle_digest)
    .bind(&new.runtime)
    .bind(&plan)
    .bind(&new.installer)
    .bind(&warnings)
    .bind(Timestamp::now().unix_ms())
    .execute(&mut **tx)
    .await?;
    let row = find().fetch_one(&mut **tx).await?;
    Ok(BuildRef {
        id: row.try_get("id")?,
        status: build_status(&row, "status")?,
        archive_digest: row.try_get("archive_digest")?,
        created: inserted.rows_affected() == 1,
    })
}

impl Store {
    /// Wakes build waiters after a version created a build.
    pub(crate) async fn builds_changed(&self) {
        self.emit(Signal::BuildsChanged).await;
    }

    /// Claims the oldest pending build for `worker` until `lease` passes.
    pub async fn build_claim_unscoped(&self, worker: &str, lease: Duration) -> Result<Option<BuildClaim>> {
        let now = Timestamp::now();
        let expires = now.plus_ms(lease.as_millis() as i64);
        let pick = match self.backend {
            Backend::Postgres => {
                "SELECT id FROM dependency_builds WHERE status = 'pending' ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
            }
            Backend::Sqlite => "SELECT id FROM dependency_builds WHERE status = 'pending' ORDER BY created_at LIMIT 1",
        };
        let mut tx = self.writer.begin().await?;
        let Some(id) = sqlx::query_scalar::<_, String>(pick).fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        let row = sqlx::query(
            "UPDATE dependency_builds SET status = 'building', attempt = attempt + 1, lease_owner = $2,
                 lease_expires_at = $3, started_at = COALESCE(started_at, $4)
             WHERE id = $1 AND status = 'pending'
             RETURNING id, tenant_id, attempt, bundle_digest, runtime, plan, next_seq,
                 (SELECT t.limit_overrides FROM tenants t WHERE t.id = tenant_id) AS limit_overrides",
        )
        .bind(&id)
        .bind(worker)
        .bind(expires.unix_ms())
        .bind(now.unix_ms())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE agent_versions SET build_status = 'building' WHERE build_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let limits = rows::limits(&row, &self.default_limits)?;
        self.emit(Signal::BuildsChanged).await;
        Ok(Some(BuildClaim {
            build_id: BuildId::from_trusted(row.try_get("id")?),
            tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
            attempt: rows::u32_col(&row, "attempt")?,
            bundle_digest: row.try_get("bundle_digest")?,
            runtime: row.try_get("runtime")?,
            plan: rows::json(&row, "plan")?,
            limits,
            next_seq: rows::u64_col(&row, "next_seq")?,
        }))
    }

    /// Appends log lines `(stream, message)` to a build this lease holds and extends the
    /// lease by `extend`; `false` when the lease is no longer current (nothing is written).
    pub async fn build_log_append(
        &self,
        lease: &BuildLease,
        lines: &[(String, String)],
        extend: Duration,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let held = sqlx::query(
            "SELECT tenant_id, next_seq FROM dependency_builds
             WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'building'",
        )
        .bind(lease.build_id.as_str())
        .bind(&lease.lease_owner)
        .bind(i64::from(lease.attempt))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(held) = held else { return Ok(false) };
        let tenant_id: String = held.try_get("tenant_id")?;
        let mut seq: i64 = held.try_get("next_seq")?;
        let now = Timestamp::now().unix_ms();
        for (stream, message) in lines {
            sqlx::query(
                "INSERT INTO dependency_build_logs (build_id, tenant_id, seq, ts, stream, message)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(lease.build_id.as_str())
            .bind(&tenant_id)
            .bind(seq)
            .bind(now)
            .bind(stream)
            .bind(message)
            .execute(&mut *tx)
            .await?;
            seq += 1;
        }
        let expires = Timestamp::now().plus_ms(extend.as_millis() as i64);
        sqlx::query("UPDATE dependency_builds SET next_seq = $2, lease_expires_at = $3 WHERE id = $1")
            .bind(lease.build_id.as_str())
            .bind(seq)
            .bind(expires.unix_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if !lines.is_empty() {
            self.emit(Signal::BuildsChanged).await;
        }
        Ok(true)
    }

    /// Records how a build this lease holds ended, copies it onto its versions and, when
    /// ready, activates those deployed to be active. `false` when the lease is not current.
    pub async fn build_finish(&self, lease: &BuildLease, outcome: &BuildOutcome) -> Result<bool> {
        let (status, error, archive, installed) = match outcome {
            BuildOutcome::Ready { archive_digest, installed_bytes } => {
                (BuildStatus::Ready, None, Some(archive_digest.as_str()), Some(*installed_bytes))
            }
            BuildOutcome::Failed { error } => (BuildStatus::Failed, Some(error.as_str()), None, None),
        };
        let now = Timestamp::now().unix_ms();
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE dependency_builds SET status = $4, error = $5, archive_digest = $6, installed_bytes = $7,
                 finished_at = $8, lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'building'",
        )
        .bind(lease.build_id.as_str())
        .bind(&lease.lease_owner)
        .bind(i64::from(lease.attempt))
        .bind(status.as_str())
        .bind(error)
        .bind(archive)
        .bind(installed.map(|b| i64::try_from(b).unwrap_or(i64::MAX)))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        settle_versions(&mut tx, lease.build_id.as_str(), status, error, archive).await?;
        tx.commit().await?;
        self.emit(Signal::BuildsChanged).await;
        Ok(true)
    }

    /// Hands a build this lease holds back untouched (its worker is shutting down): it is
    /// pending again and its start is not counted. `false` when the lease is not current.
    pub async fn build_release(&self, lease: &BuildLease) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let released = sqlx::query(
            "UPDATE dependency_builds SET status = 'pending', attempt = attempt - 1, lease_owner = NULL,
                 lease_expires_at = NULL
             WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'building'",
        )
        .bind(lease.build_id.as_str())
        .bind(&lease.lease_owner)
        .bind(i64::from(lease.attempt))
        .execute(&mut *tx)
        .await?;
        if released.rows_affected() == 0 {
            return Ok(false);
        }
        settle_versions(&mut tx, lease.build_id.as_str(), BuildStatus::Pending, None, None).await?;
        tx.commit().await?;
        self.emit(Signal::BuildsChanged).await;
        Ok(true)
    }

    /// Puts back builds whose worker vanished (their lease passed): pending again, or
    /// failed after [`MAX_BUILD_STARTS`] starts. Returns how many were put back or failed.
    pub async fn builds_recover_expired_unscoped(&self) -> Result<u64> {
        let now = Timestamp::now().unix_ms();
        let mut tx = self.writer.begin().await?;
        let expired = sqlx::query(
            "SELECT id, attempt FROM dependency_builds WHERE status = 'building' AND lease_expires_at < $1",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for row in &expired {
            let id: String = row.try_get("id")?;
            let given_up = rows::u32_col(row, "attempt")? >= MAX_BUILD_STARTS;
            let (status, error) = match given_up {
                true => (
                    BuildStatus::Failed,
                    Some(format!("the build's worker was lost {MAX_BUILD_STARTS} times; deploy again to retry")),
                ),
                false => (BuildStatus::Pending, None),
            };
            sqlx::query(
                "UPDATE dependency_builds SET status = $2, error = $3, lease_owner = NULL, lease_expires_at = NULL,
                     finished_at = $4
                 WHERE id = $1 AND status = 'building'",
            )
            .bind(&id)
            .bind(status.as_str())
            .bind(&error)
            .bind(given_up.then_some(now))
            .execute(&mut *tx)
            .await?;
            settle_versions(&mut tx, &id, status, error.as_deref(), None).await?;
        }
        tx.commit().await?;
        if !expired.is_empty() {
            self.emit(Signal::BuildsChanged).await;
        }
        Ok(expired.len() as u64)
    }

    /// A build of the caller's tenant.
    pub async fn build_get(&self, ctx: &TenantScope, id: &BuildId) -> Result<DependencyBuild> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query("SELECT * FROM dependency_builds WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::Build))?;
        tx.commit().await?;
        dependency_build(&row)
    }

    /// Log lines of a build of the caller's tenant after `after`, oldest first.
    pub async fn build_log(
        &self,
        ctx: &TenantScope,
        id: &BuildId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<BuildLogLine>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(
            "SELECT seq, ts, stream, message FROM dependency_build_logs
             WHERE tenant_id = $1 AND build_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        found
            .iter()
            .map(|row| {
                Ok(BuildLogLine {
                    seq: rows::u64_col(row, "seq")?,
                    ts: rows::ts(row, "ts")?,
                    stream: row.try_get("stream")?,
                    message: row.try_get("message")?,
                })
            })
            .collect()
    }
}

/// Copies a build's new status onto its versions; a ready build activates those deployed
/// to be active, unless the agent already runs a newer version.
async fn settle_versions(
    tx: &mut Transaction<'_, Any>,
    build_id: &str,
    status: BuildStatus,
    error: Option<&str>,
    archive: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE agent_versions SET build_status = $2, build_error = $3, dependencies_archive = $4 WHERE build_id = $1",
    )
    .bind(build_id)
    .bind(status.as_str())
    .bind(error)
    .bind(archive)
    .execute(&mut **tx)
    .await?;
    if !status.is_settled() {
        return Ok(());
    }
    if status == BuildStatus::Ready {
        let waiting =
            sqlx::query("SELECT agent_id, version FROM agent_versions WHERE build_id = $1 AND activate_when_ready = 1")
                .bind(build_id)
                .fetch_all(&mut **tx)
                .await?;
        let now = Timestamp::now().unix_ms();
        for row in &waiting {
            let agent_id: String = row.try_get("agent_id")?;
            let version: i64 = row.try_get("version")?;
            sqlx::query(
                "UPDATE agents SET active_version = $2, updated_at = $3
                 WHERE id = $1 AND (active_version IS NULL OR active_version < $2)",
            )
            .bind(&agent_id)
            .bind(version)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    sqlx::query("UPDATE agent_versions SET activate_when_ready = 0 WHERE build_id = $1")
        .bind(build_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
