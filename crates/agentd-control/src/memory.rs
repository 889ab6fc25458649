//! The tenant's long-term memory store (`/v1/store`, after LangGraph's store): JSON
//! items under namespaces, written with `Invoke` (there is no narrower scope) and read
//! with `Read`. Here the tenant's limits are applied: one value's size
//! (`max_store_item_bytes`, checked before the store is touched) and all items together
//! (`max_store_bytes`, checked by the store in the write's own transaction against an
//! exact running count). Items with a TTL vanish from reads when it passes; the expiry
//! reconciler deletes them and gives their bytes back.

use agentd_core::{MemoryItem, MemoryKey, Namespace, OffsetPage, Timestamp};
pub use agentd_store::MemoryPut;
use agentd_store::{MemorySearch, MemoryWrite, NamespaceListing, StoreError};

use crate::Control;
use crate::auth::{Ctx, Invoke, Read};
use crate::error::{ControlError, Result};
use crate::input::{MaxDepth, MemoryFilter, MemoryTtl, MemoryValue};

/// An item to write.
#[derive(Debug, Clone)]
pub struct MemoryPutSpec {
    pub namespace: Namespace,
    pub key: MemoryKey,
    pub value: MemoryValue,
    /// Absent: the item lives until it is deleted (a write without one clears an earlier TTL).
    pub ttl: Option<MemoryTtl>,
}

/// Which items a search returns: under `prefix` (absent: all), matching `filter`.
#[derive(Debug, Clone)]
pub struct MemorySearchSpec {
    pub prefix: Option<Namespace>,
    pub filter: MemoryFilter,
    pub page: OffsetPage,
}

/// Which namespaces a listing returns: under `prefix`, ending in `suffix`, cut to
/// `max_depth` labels.
#[derive(Debug, Clone)]
pub struct NamespaceSpec {
    pub prefix: Option<Namespace>,
    pub suffix: Option<Namespace>,
    pub max_depth: MaxDepth,
    pub page: OffsetPage,
}

impl Control {
    /// Creates or replaces an item; `created` says which.
    pub async fn memory_put(&self, ctx: &Ctx<Invoke>, spec: MemoryPutSpec) -> Result<MemoryPut> {
        let value_json = serde_json::to_string(&spec.value.into_inner()).map_err(ControlError::internal)?;
        let limits = ctx.limits();
        let size = value_json.len() as u64;
        if size > limits.max_store_item_bytes {
            return Err(ControlError::MemoryItemTooLarge { size, limit: limits.max_store_item_bytes });
        }
        let write = MemoryWrite {
            namespace: spec.namespace,
            key: spec.key,
            value_json,
            expires_at: spec.ttl.map(|ttl| Timestamp::now().plus_ms(ttl.millis())),
        };
        let limit = limits.max_store_bytes;
        self.store.memory_put(ctx.store_scope(), &write, limit).await.map_err(|err| match err {
            StoreError::BytesQuotaReached { used, adding } => ControlError::MemoryFull { used, adding, limit },
            other => other.into(),
        })
    }

    /// A live item; `NotFound` when it is missing, expired or another tenant's.
    pub async fn memory_get(&self, ctx: &Ctx<Read>, namespace: &Namespace, key: &MemoryKey) -> Result<MemoryItem> {
        Ok(self.store.memory_get(ctx.store_scope(), namespace, key).await?)
    }

    pub async fn memory_delete(&self, ctx: &Ctx<Invoke>, namespace: &Namespace, key: &MemoryKey) -> Result<()> {
        Ok(self.store.memory_delete(ctx.store_scope(), namespace, key).await?)
    }

    /// Live items, newest-updated first.
    pub async fn memory_search(&self, ctx: &Ctx<Read>, spec: MemorySearchSpec) -> Result<Vec<MemoryItem>> {
        let search = MemorySearch { prefix: spec.prefix, filter: spec.filter.into_inner(), page: spec.page };
        Ok(self.store.memory_search(ctx.store_scope(), &search).await?)
    }

    /// Distinct namespaces of live items, sorted.
    pub async fn memory_namespaces(&self, ctx: &Ctx<Read>, spec: NamespaceSpec) -> Result<Vec<Namespace>> {
        let listing = NamespaceListing {
            prefix: spec.prefix,
            suffix: spec.suffix,
            max_depth: spec.max_depth.get(),
            page: spec.page,
        };
        Ok(self.store.memory_namespaces(ctx.store_scope(), &listing).await?)
    }

    /// Deletes every tenant's expired items and gives their bytes back (a reconciler's
    /// pass). Returns how many it deleted.
    pub async fn expire_memory(&self) -> Result<u64> {
        Ok(self.store.memory_expire_unscoped().await?)
    }
}
