//! Artifacts: files an invocation left in `/outputs`. The worker stores the bytes in the
//! blob store first, then records them here, fenced by its lease like every other write.

use agentd_core::{
    Artifact, ArtifactName, InvocationId, NameCursor, Page, PageRequest, ResourceKind, Tenant, TenantScope, Timestamp,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::queue::RunLease;
use crate::{Result, Store, StoreError, rows};

/// An artifact whose bytes are already in the blob store.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    pub name: ArtifactName,
    pub size: u64,
    pub digest: String,
}

impl Store {
    /// Records an artifact of a run while `run`'s lease is current; false if it is not.
    /// A name written again (a later attempt) replaces the earlier row.
    pub async fn artifact_record(&self, run: &RunLease, artifact: &NewArtifact) -> Result<bool> {
        let recorded = sqlx::query(
            "INSERT INTO invocation_artifacts (invocation_id, name, tenant_id, size, digest, attempt, created_at)
             SELECT id, $4, tenant_id, $5, $6, attempt, $7 FROM invocations
             WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'running'
             ON CONFLICT (invocation_id, name) DO UPDATE
                SET size = excluded.size, digest = excluded.digest, attempt = excluded.attempt,
                    created_at = excluded.created_at",
        )
        .bind(run.invocation_id.as_str())
        .bind(&run.lease_owner)
        .bind(i64::from(run.attempt))
        .bind(artifact.name.as_str())
        .bind(i64::try_from(artifact.size).unwrap_or(i64::MAX))
        .bind(&artifact.digest)
        .bind(Timestamp::now().unix_ms())
        .execute(&self.writer)
        .await?;
        Ok(recorded.rows_affected() == 1)
    }

    /// The tenant of the run `run` leases, with its effective limits, while the lease is
    /// current (`None` when it is not: nothing the worker writes would land either).
    pub async fn run_tenant_unscoped(&self, run: &RunLease) -> Result<Option<Tenant>> {
        let found = sqlx::query(
            "SELECT t.* FROM invocations i JOIN tenants t ON t.id = i.tenant_id
             WHERE i.id = $1 AND i.lease_owner = $2 AND i.attempt = $3 AND i.status = 'running'",
        )
        .bind(run.invocation_id.as_str())
        .bind(&run.lease_owner)
        .bind(i64::from(run.attempt))
        .fetch_optional(&self.reader)
        .await?;
        found.map(|row| rows::tenant(&row, &self.default_limits)).transpose()
    }

    /// The artifacts of one of the caller's invocations, by name.
    pub async fn artifacts_list(
        &self,
        ctx: &TenantScope,
        id: &InvocationId,
        page: &PageRequest<NameCursor>,
    ) -> Result<Page<Artifact>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        rows::require_invocation(&mut tx, ctx, id).await?;
        let limit = i64::from(page.limit());
        let found = sqlx::query(
            "SELECT * FROM invocation_artifacts WHERE tenant_id = $1 AND invocation_id = $2 AND name > $3
             ORDER BY name LIMIT $4",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(page.after().map_or("", NameCursor::as_str))
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let artifacts = found.iter().map(artifact).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(artifacts, limit, |a| a.name.clone()))
    }

    /// One artifact of one of the caller's invocations.
    pub async fn artifact_get(&self, ctx: &TenantScope, id: &InvocationId, name: &ArtifactName) -> Result<Artifact> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found =
            sqlx::query("SELECT * FROM invocation_artifacts WHERE tenant_id = $1 AND invocation_id = $2 AND name = $3")
                .bind(ctx.tenant_id().as_str())
                .bind(id.as_str())
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        found.as_ref().map(artifact).transpose()?.ok_or(StoreError::NotFound(ResourceKind::Artifact))
    }
}

fn artifact(row: &AnyRow) -> Result<Artifact> {
    Ok(Artifact {
        invocation_id: InvocationId::from_trusted(row.try_get("invocation_id")?),
        name: row.try_get("name")?,
        size: rows::u64_col(row, "size")?,
        digest: row.try_get("digest")?,
        attempt: rows::u32_col(row, "attempt")?,
        created_at: rows::ts(row, "created_at")?,
    })
}
