//! The tenant's long-term memory store: JSON items by namespace and key, the byte count
//! that the tenant's `max_store_bytes` bounds, and the expiry of items with a TTL.
//!
//! Every write (put, delete, expiry) changes the tenant's count in its own transaction,
//! by what it adds and what it takes away, after locking the count's row: the count is
//! exact without ever summing the table, and a tenant's writes serialize on that row
//! (on SQLite the single writer serializes them anyway). An item past its `expires_at`
//! is invisible to every read at once; its bytes stay counted until the expiry
//! reconciler deletes it.

mod sql;

use agentd_core::{MemoryItem, MemoryKey, Namespace, OffsetPage, ResourceKind, TenantScope, Timestamp};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::{Audit, resource};
use crate::{Backend, Result, Store, StoreError, rows};

/// An item to write, its value already serialized: that text is what is stored and counted.
#[derive(Debug, Clone)]
pub struct MemoryWrite {
    pub namespace: Namespace,
    pub key: MemoryKey,
    pub value_json: String,
    pub expires_at: Option<Timestamp>,
}

/// A written item, and whether the write created it (no live item had its key).
#[derive(Debug, Clone)]
pub struct MemoryPut {
    pub item: MemoryItem,
    pub created: bool,
}

/// Which items a search returns: those under `prefix` whose value matches `filter`
/// field by field, newest-updated first.
#[derive(Debug, Clone)]
pub struct MemorySearch {
    pub prefix: Option<Namespace>,
    pub filter: Map<String, Value>,
    pub page: OffsetPage,
}

/// Which namespaces a listing returns: those under `prefix` and ending in `suffix`, cut
/// to `max_depth` labels, without repeats, sorted.
#[derive(Debug, Clone)]
pub struct NamespaceListing {
    pub prefix: Option<Namespace>,
    pub suffix: Option<Namespace>,
    pub max_depth: usize,
    pub page: OffsetPage,
}

/// What an item counts against `max_store_bytes`: its value's JSON text, its namespace
/// and its key, so that many small items cost as much as their keys take.
pub fn memory_item_size(namespace: &Namespace, key: &MemoryKey, value_json: &str) -> u64 {
    (value_json.len() + namespace.dotted().len() + key.as_str().len()) as u64
}

/// How many expired items one transaction deletes, and tenants one pass visits.
const EXPIRY_BATCH: i64 = 1000;
const EXPIRY_TENANTS: i64 = 100;

fn bytes(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The prefix as `$3`, `$4`, `$5` of the reads: itself and the bounds of what is below it.
fn prefix_bounds(prefix: Option<&Namespace>) -> (String, String, String) {
    match prefix {
        Some(prefix) => {
            let dotted = prefix.dotted();
            (dotted.clone(), format!("{dotted}."), format!("{dotted}/"))
        }
        None => (String::new(), String::new(), String::new()),
    }
}

/// A memory item as the audit log names it: `namespace.dotted/key`, with both apart in
/// the details. The value is the caller's data and stays out.
fn audit_item(action: agentd_core::AuditAction, namespace: &Namespace, key: &MemoryKey) -> Audit {
    Audit::new(action, resource::MEMORY_ITEM, format!("{}/{}", namespace.dotted(), key.as_str()))
        .details(serde_json::json!({"namespace": namespace.labels(), "key": key.as_str()}))
}

impl Store {
    /// Writes an item, creating or replacing it, unless that would take the tenant's
    /// items past `max_bytes` in all ([`StoreError::BytesQuotaReached`]). A write that
    /// does not grow the count always passes, so shrinking is possible over the limit.
    pub async fn memory_put(&self, ctx: &TenantScope, write: &MemoryWrite, max_bytes: u64) -> Result<MemoryPut> {
        let now = Timestamp::now().unix_ms();
        let tenant = ctx.tenant_id().as_str();
        let namespace = write.namespace.dotted();
        let size = memory_item_size(&write.namespace, &write.key, &write.value_json);
        let mut tx = self.begin_scoped(ctx).await?;
        let used = lock_usage(&mut tx, tenant).await?;
        let previous = sqlx::query(sql::PREVIOUS)
            .bind(tenant)
            .bind(&namespace)
            .bind(write.key.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let (previous_size, live_since) = match &previous {
            Some(row) => {
                let expires_at: Option<i64> = row.try_get("expires_at")?;
                let live = expires_at.is_none_or(|at| at > now);
                (rows::u64_col(row, "size_bytes")?, live.then(|| row.try_get::<i64, _>("created_at")).transpose()?)
            }
            None => (0, None),
        };
        if size > previous_size && used.saturating_sub(previous_size).saturating_add(size) > max_bytes {
            return Err(StoreError::BytesQuotaReached { used, adding: size - previous_size });
        }
        let row = sqlx::query(sql::UPSERT)
            .bind(tenant)
            .bind(&namespace)
            .bind(write.key.as_str())
            .bind(&write.value_json)
            .bind(bytes(size))
            .bind(live_since.unwrap_or(now))
            .bind(now)
            .bind(write.expires_at.map(Timestamp::unix_ms))
            .fetch_one(&mut *tx)
            .await?;
        let total = used.saturating_sub(previous_size).saturating_add(size);
        sqlx::query(sql::SET_USAGE).bind(tenant).bind(bytes(total)).execute(&mut *tx).await?;
        audit_item(agentd_core::AuditAction::MemoryPut, &write.namespace, &write.key).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(MemoryPut { item: memory_item(&row)?, created: live_since.is_none() })
    }

    /// A live item of the caller's tenant.
    pub async fn memory_get(&self, ctx: &TenantScope, namespace: &Namespace, key: &MemoryKey) -> Result<MemoryItem> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(sql::GET)
            .bind(ctx.tenant_id().as_str())
            .bind(namespace.dotted())
            .bind(key.as_str())
            .bind(Timestamp::now().unix_ms())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        found.as_ref().map(memory_item).transpose()?.ok_or(StoreError::NotFound(ResourceKind::MemoryItem))
    }

    /// Deletes a live item and gives its bytes back; `NotFound` when there is none.
    pub async fn memory_delete(&self, ctx: &TenantScope, namespace: &Namespace, key: &MemoryKey) -> Result<()> {
        let tenant = ctx.tenant_id().as_str();
        let mut tx = self.begin_scoped(ctx).await?;
        lock_usage(&mut tx, tenant).await?;
        let deleted = sqlx::query(sql::DELETE)
            .bind(tenant)
            .bind(namespace.dotted())
            .bind(key.as_str())
            .bind(Timestamp::now().unix_ms())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(deleted) = deleted else { return Err(StoreError::NotFound(ResourceKind::MemoryItem)) };
        let size: i64 = deleted.try_get("size_bytes")?;
        sqlx::query(sql::RELEASE_USAGE).bind(tenant).bind(size).execute(&mut *tx).await?;
        audit_item(agentd_core::AuditAction::MemoryDelete, namespace, key).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Live items under a prefix whose values match a filter, newest-updated first
    /// (then by namespace and key).
    pub async fn memory_search(&self, ctx: &TenantScope, search: &MemorySearch) -> Result<Vec<MemoryItem>> {
        let (prefix, from, to) = prefix_bounds(search.prefix.as_ref());
        let filter = serde_json::to_string(&search.filter).map_err(|e| StoreError::corrupt("filter", e))?;
        let statement = match self.backend {
            Backend::Sqlite => sql::SQLITE_SEARCH,
            Backend::Postgres => sql::POSTGRES_SEARCH,
        };
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(statement)
            .bind(ctx.tenant_id().as_str())
            .bind(Timestamp::now().unix_ms())
            .bind(prefix)
            .bind(from)
            .bind(to)
            .bind(filter)
            .bind(i64::from(search.page.limit()))
            .bind(bytes(search.page.offset()))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        found.iter().map(memory_item).collect()
    }

    /// The distinct namespaces of live items, cut to a depth, sorted byte-wise.
    pub async fn memory_namespaces(&self, ctx: &TenantScope, listing: &NamespaceListing) -> Result<Vec<Namespace>> {
        let (prefix, from, to) = prefix_bounds(listing.prefix.as_ref());
        let statement = match self.backend {
            Backend::Sqlite => sql::SQLITE_NAMESPACES,
            Backend::Postgres => sql::POSTGRES_NAMESPACES,
        };
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found: Vec<String> = sqlx::query_scalar(statement)
            .bind(ctx.tenant_id().as_str())
            .bind(Timestamp::now().unix_ms())
            .bind(prefix)
            .bind(from)
            .bind(to)
            .bind(listing.suffix.as_ref().map(Namespace::dotted).unwrap_or_default())
            .bind(listing.max_depth as i64)
            .bind(i64::from(listing.page.limit()))
            .bind(bytes(listing.page.offset()))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(found.iter().map(|dotted| Namespace::from_dotted_trusted(dotted)).collect())
    }

    /// The bytes the tenant's items count against `max_store_bytes`, expired ones that
    /// are not deleted yet included.
    pub async fn memory_usage(&self, ctx: &TenantScope) -> Result<u64> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let used: Option<i64> = sqlx::query_scalar("SELECT bytes FROM memory_usage WHERE tenant_id = $1")
            .bind(ctx.tenant_id().as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        u64::try_from(used.unwrap_or(0)).map_err(|e| StoreError::corrupt("bytes", e))
    }

    /// Deletes expired items of every tenant and gives their bytes back, one tenant and
    /// batch per transaction. Returns how many it deleted; what it leaves (more tenants
    /// than a pass visits) the next pass takes.
    pub async fn memory_expire_unscoped(&self) -> Result<u64> {
        let now = Timestamp::now().unix_ms();
        let tenants: Vec<String> = sqlx::query_scalar(sql::TENANTS_WITH_EXPIRED)
            .bind(now)
            .bind(EXPIRY_TENANTS)
            .fetch_all(&self.writer)
            .await?;
        let mut deleted = 0;
        for tenant in &tenants {
            loop {
                let mut tx = self.writer.begin().await?;
                lock_usage(&mut tx, tenant).await?;
                let sizes: Vec<i64> = sqlx::query_scalar(sql::DELETE_EXPIRED)
                    .bind(tenant)
                    .bind(now)
                    .bind(EXPIRY_BATCH)
                    .fetch_all(&mut *tx)
                    .await?;
                let freed: i64 = sizes.iter().sum();
                sqlx::query(sql::RELEASE_USAGE).bind(tenant).bind(freed).execute(&mut *tx).await?;
                tx.commit().await?;
                deleted += sizes.len() as u64;
                if (sizes.len() as i64) < EXPIRY_BATCH {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}

/// Locks the tenant's count (see [`sql::LOCK_USAGE`]) and returns it.
async fn lock_usage(tx: &mut Transaction<'static, Any>, tenant: &str) -> Result<u64> {
    let used: i64 = sqlx::query_scalar(sql::LOCK_USAGE).bind(tenant).fetch_one(&mut **tx).await?;
    u64::try_from(used).map_err(|e| StoreError::corrupt("bytes", e))
}

fn memory_item(row: &AnyRow) -> Result<MemoryItem> {
    let namespace: String = row.try_get("namespace")?;
    Ok(MemoryItem {
        namespace: Namespace::from_dotted_trusted(&namespace).into_labels(),
        key: row.try_get("key")?,
        value: rows::json(row, "value")?,
        created_at: rows::ts(row, "created_at")?,
        updated_at: rows::ts(row, "updated_at")?,
        expires_at: rows::opt_ts(row, "expires_at")?,
    })
}
