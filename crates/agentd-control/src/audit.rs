//! Reading the tenant's audit log. Events are written by the store, inside the
//! transaction of each change (see `agentd-store/src/audit.rs`); this layer only reads
//! them, and only for those who manage the workspace: owners and admins (a session of
//! either holds the `admin` scope), or a key with `admin`.

use agentd_core::{AuditAction, AuditEvent, AuditEventId, Page, PageRequest, Timestamp};

use crate::Control;
use crate::auth::{Admin, Ctx};
use crate::error::Result;

/// Which events a page shows: every field that is set must match exactly; `from` and
/// `to` bound the instant of the event, both inclusive.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<AuditAction>,
    /// The id of who acted (`usr_…`, `key_…`, `inv_…`, `opt_…` or `database`).
    pub actor: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl Control {
    /// A page of the tenant's audit log, newest first.
    pub async fn audit_list(
        &self,
        ctx: &Ctx<Admin>,
        filter: &AuditFilter,
        page: &PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEvent>> {
        let filter = agentd_store::AuditFilter {
            action: filter.action,
            actor: filter.actor.clone(),
            resource_type: filter.resource_type.clone(),
            resource_id: filter.resource_id.clone(),
            from: filter.from,
            to: filter.to,
        };
        Ok(self.store.audit_list(ctx.store_scope(), &filter, page).await?)
    }
}
