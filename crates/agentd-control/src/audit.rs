//! Reading the tenant's audit log. Events are written by the store, inside the
//! transaction of each change (see `agentd-store/src/audit.rs`); this layer only reads
//! them, and only for those who manage the workspace: owners and admins (a session of
//! either holds the `admin` scope), or a key with `admin`.

use agentd_core::{AuditEvent, AuditEventId, Page, PageRequest};
pub use agentd_store::AuditFilter;

use crate::Control;
use crate::auth::{Admin, Ctx};
use crate::error::Result;

impl Control {
    /// A page of the tenant's audit log, newest first.
    pub async fn audit_list(
        &self,
        ctx: &Ctx<Admin>,
        filter: &AuditFilter,
        page: &PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEvent>> {
        Ok(self.store.audit_list(ctx.store_scope(), filter, page).await?)
    }
}
