//! What a tenant stores (`max_storage_bytes`: bundles and artifacts, each digest once)
//! and the blobs behind it: every blob is written through [`Control::blob_put`], which
//! marks it first so the blob sweep (a reconciler) cannot delete it before the row that
//! refers to it commits, and the sweep deletes the blobs no row refers to any more (see
//! `agentd_store`'s `blob_collection` for the race and how it is closed).

use agentd_core::queue::RunLease;
use agentd_core::{Actor, RequestId, TenantScope, Timestamp};
use bytes::Bytes;

use crate::Control;
use crate::error::{ControlError, Result};

impl Control {
    /// Refuses `size` more bytes under `digest` when they would take the tenant of `scope`
    /// past `limit`; a digest it already holds adds nothing. Checked before the write, not
    /// in its transaction: two concurrent writes may together pass the limit by one blob.
    pub(crate) async fn check_storage(&self, scope: &TenantScope, limit: u64, digest: &str, size: u64) -> Result<()> {
        let (used, held) = self.store.storage_used(scope, digest).await?;
        if !held && used.saturating_add(size) > limit {
            return Err(ControlError::StorageFull { used, adding: size, limit });
        }
        Ok(())
    }

    /// Refuses an artifact of the run `run` leases that would take its tenant past
    /// `max_storage_bytes`. Nothing to check when the lease is gone: the record will not
    /// land either.
    pub(crate) async fn check_artifact_storage(&self, run: &RunLease, digest: &str, size: u64) -> Result<()> {
        let Some(tenant) = self.store.run_tenant_unscoped(run).await? else { return Ok(()) };
        let limit = tenant.limits.max_storage_bytes;
        let scope = TenantScope::new(tenant.id, Actor::Run { id: run.invocation_id.clone() }, RequestId::generate());
        self.check_storage(&scope, limit, digest, size).await
    }

    /// Stores `bytes` as a blob and returns its digest, marking the digest as being
    /// written first. The caller commits the row that refers to it within the grace period.
    pub(crate) async fn blob_put(&self, bytes: Bytes) -> Result<String> {
        let digest = agentd_store::digest_of(&bytes);
        self.store.blob_write_mark_unscoped(&digest).await?;
        let stored = self.blobs.put(bytes).await?;
        debug_assert_eq!(stored, digest);
        Ok(stored)
    }

    /// One pass of the blob sweep: purges the versions of agents deleted longer than the
    /// grace period ago that no unfinished run needs, then deletes every blob older than
    /// the grace period that no row refers to. Returns how many blobs went.
    pub async fn collect_unreferenced_blobs(&self) -> Result<u64> {
        let grace_ms = i64::try_from(self.settings.blob_grace.as_millis()).unwrap_or(i64::MAX);
        let cutoff = Timestamp::now().plus_ms(-grace_ms);
        let versions = self.store.versions_of_deleted_agents_purge_unscoped(cutoff).await?;
        let collected = self.store.blobs_collect_unscoped(&self.blobs, cutoff).await?;
        if versions > 0 || collected.deleted > 0 || collected.failed > 0 {
            tracing::info!(
                versions_purged = versions,
                blobs_deleted = collected.deleted,
                bytes_freed = collected.bytes,
                blobs_failed = collected.failed,
                "blob sweep"
            );
        }
        Ok(collected.deleted)
    }
}
