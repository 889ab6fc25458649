//! Blob garbage collection: deleting the blobs no row refers to any more, across every
//! tenant (blobs are content-addressed, so two tenants' identical bundles are one blob).
//!
//! What refers to a blob: a version's bundle (`agent_versions.digest`) and installed
//! dependencies (`dependencies_archive`), an artifact (`invocation_artifacts.digest`), a
//! dependency build's archive and, while the build is pending or running, its bundle.
//! What stops referring to one: a deleted agent's versions, once purged (below); an
//! artifact replaced by a later attempt's file of the same name; and writes whose row
//! never came (a deploy refused after its bundle was stored, a worker that lost its lease
//! between the bytes and the row, a build that failed to record its archive).
//!
//! **The race.** A writer stores the bytes first and commits the row that refers to them
//! afterwards. A sweep that looked in between would find the blob unreferenced and delete
//! it, leaving the row pointing at nothing; and since a `put` of bytes already there is a
//! no-op, a writer reusing an old unreferenced blob is just as exposed. So a writer first
//! marks the digest in `blob_writes` ([`Store::blob_write_mark_unscoped`]), in a
//! transaction of its own, and only then puts the bytes. The sweep deletes a blob only
//! inside a transaction that holds a lock the marking also takes (an advisory lock on
//! PostgreSQL, SQLite's single write lock), re-checks there that no row refers to the
//! blob and no mark younger than the grace period names it, and deletes the bytes before
//! it commits. Either the mark commits first, and the sweep sees it and keeps the blob;
//! or the sweep commits first, with the bytes gone, and the writer's `put` then writes
//! them afresh. What remains assumed is that a writer commits its row within the grace
//! period of marking (default an hour; uploads are stored after their body is read, so
//! it takes seconds). A blob the backend says was written within the grace period is
//! kept too, which covers a writer of an older release that does not mark.

use std::collections::HashSet;

use agentd_core::Timestamp;
use sqlx::Row;

use crate::{Backend, Blobs, Result, Store};

/// The advisory lock class of blob digests on PostgreSQL (`blob` in ASCII): the two-key
/// lock space, apart from the one-key space the migrations lock in.
const BLOB_LOCK_CLASS: i32 = 0x626c_6f62;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobsCollected {
    pub deleted: u64,
    pub bytes: u64,
    /// Blobs whose deletion failed; the next sweep tries again.
    pub failed: u64,
}

/// Statuses of runs that may still need their version's bundle.
const UNFINISHED: &str = "i.status NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')";

impl Store {
    /// Marks `digest` as being written, before its bytes go to the blob store, so no sweep
    /// deletes it before the row that refers to it commits (see the module docs).
    pub async fn blob_write_mark_unscoped(&self, digest: &str) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        self.lock_blob(&mut tx, digest).await?;
        sqlx::query(
            "INSERT INTO blob_writes (digest, written_at) VALUES ($1, $2)
             ON CONFLICT (digest) DO UPDATE SET written_at = excluded.written_at",
        )
        .bind(digest)
        .bind(Timestamp::now().unix_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the versions of agents deleted before `deleted_before` that no unfinished
    /// run needs any more; their bundles may then be collected. Returns how many went.
    pub async fn versions_of_deleted_agents_purge_unscoped(&self, deleted_before: Timestamp) -> Result<u64> {
        let sql = format!(
            "DELETE FROM agent_versions WHERE agent_deleted_at IS NOT NULL AND agent_deleted_at < $1
               AND NOT EXISTS (SELECT 1 FROM invocations i WHERE i.version_id = agent_versions.id AND {UNFINISHED})"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(deleted_before.unix_ms()).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }

    /// Deletes every blob written before `written_before` that no row refers to and no
    /// writer marked since then, and forgets marks older than that.
    pub async fn blobs_collect_unscoped(&self, blobs: &Blobs, written_before: Timestamp) -> Result<BlobsCollected> {
        let cutoff = written_before.unix_ms();
        let listed = blobs.list(written_before).await?;
        let mut collected = BlobsCollected::default();
        let old: Vec<_> = listed.into_iter().filter(|blob| blob.modified_ms < cutoff).collect();
        if !old.is_empty() {
            let held = self.blob_digests_held(cutoff).await?;
            for blob in old.iter().filter(|blob| !held.contains(&blob.digest)) {
                match self.blob_delete_unless_held(blobs, &blob.digest, cutoff).await {
                    Ok(true) => {
                        collected.deleted += 1;
                        collected.bytes += blob.size;
                    }
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(digest = %blob.digest, error = %err, "deleting an unreferenced blob failed");
                        collected.failed += 1;
                    }
                }
            }
        }
        sqlx::query("DELETE FROM blob_writes WHERE written_at < $1").bind(cutoff).execute(&self.writer).await?;
        Ok(collected)
    }

    /// Every digest a row refers to, or a writer marked at or after `cutoff`: the sweep's
    /// first, lock-free pass, which the locked check confirms blob by blob.
    async fn blob_digests_held(&self, cutoff: i64) -> Result<HashSet<String>> {
        let rows = sqlx::query(
            "SELECT digest FROM agent_versions
             UNION SELECT dependencies_archive FROM agent_versions WHERE dependencies_archive IS NOT NULL
             UNION SELECT digest FROM invocation_artifacts
             UNION SELECT archive_digest FROM dependency_builds WHERE archive_digest IS NOT NULL
             UNION SELECT bundle_digest FROM dependency_builds WHERE status IN ('pending', 'running')
             UNION SELECT digest FROM blob_writes WHERE written_at >= $1",
        )
        .bind(cutoff)
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(|row| Ok(row.try_get::<String, _>(0)?)).collect()
    }

    /// Deletes the blob `digest` unless, under the blob lock, a row refers to it or a mark
    /// at or after `cutoff` names it. The bytes go before the transaction commits, so a
    /// writer waiting on the lock marks and writes after them (see the module docs).
    async fn blob_delete_unless_held(&self, blobs: &Blobs, digest: &str, cutoff: i64) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        // The lock first: a writer holding it may be about to upsert this digest's mark.
        self.lock_blob(&mut tx, digest).await?;
        // On SQLite this first write takes the database's write lock.
        sqlx::query("DELETE FROM blob_writes WHERE digest = $1 AND written_at < $2")
            .bind(digest)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        let held = sqlx::query(
            "SELECT CASE WHEN
                    EXISTS (SELECT 1 FROM agent_versions WHERE digest = $1)
                 OR EXISTS (SELECT 1 FROM agent_versions WHERE dependencies_archive = $1)
                 OR EXISTS (SELECT 1 FROM invocation_artifacts WHERE digest = $1)
                 OR EXISTS (SELECT 1 FROM dependency_builds WHERE archive_digest = $1)
                 OR EXISTS (SELECT 1 FROM dependency_builds
                            WHERE bundle_digest = $1 AND status IN ('pending', 'running'))
                 OR EXISTS (SELECT 1 FROM blob_writes WHERE digest = $1 AND written_at >= $2)
             THEN 1 ELSE 0 END AS held",
        )
        .bind(digest)
        .bind(cutoff)
        .fetch_one(&mut *tx)
        .await?;
        if crate::rows::u64_col(&held, "held")? == 1 {
            tx.commit().await?;
            return Ok(false);
        }
        blobs.delete(digest).await?;
        tx.commit().await?;
        tracing::info!(digest, "deleted a blob no row refers to");
        Ok(true)
    }

    /// Takes the lock that orders a sweep's deletion of `digest` and a writer's mark of it,
    /// until `tx` ends. SQLite has one writer at a time: its write lock is that lock.
    async fn lock_blob(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, digest: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                .bind(BLOB_LOCK_CLASS)
                .bind(blob_lock_key(digest))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// The lock key of a digest: its first 32 bits. Two digests sharing them share a lock,
/// which only makes one wait for the other.
fn blob_lock_key(digest: &str) -> i32 {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let prefix = hex.get(..8).and_then(|p| u32::from_str_radix(p, 16).ok()).unwrap_or(0);
    i32::from_ne_bytes(prefix.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_locks_by_its_first_32_bits() {
        assert_eq!(blob_lock_key(&format!("sha256:0000000a{}", "f".repeat(56))), 10);
        assert_eq!(blob_lock_key(&format!("sha256:ffffffff{}", "0".repeat(56))), -1);
        assert_eq!(blob_lock_key("sha256:zz"), 0);
    }
}
