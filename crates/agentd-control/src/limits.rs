//! A tenant's limits: the platform's defaults (the operator's `AGENTD_LIMITS_*`) overlaid
//! by the tenant's own values (overrides, which operators set). The tenant sees them with
//! their source and, where there is one, the current use; operators change the overrides
//! on the database (`agentd admin limits`), through functions that take the store.

use agentd_core::{LimitError, LimitOverrides, TenantLimits};
use agentd_store::{Store, TenantLimitsRecord};

use crate::auth::{Ctx, Read};
use crate::error::Result;
use crate::{Control, ControlError};

/// Where a limit's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    Default,
    Override,
}

impl LimitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::Default => "default",
            LimitSource::Override => "override",
        }
    }
}

/// One limit as the tenant lives under it.
#[derive(Debug, Clone)]
pub struct LimitView {
    pub name: &'static str,
    pub value: u64,
    pub source: LimitSource,
    /// How much of it is in use, for the limits that count something held.
    pub used: Option<u64>,
}

/// Every limit of a tenant, in a fixed order.
#[derive(Debug, Clone)]
pub struct LimitsView {
    pub limits: Vec<LimitView>,
}

impl LimitsView {
    fn of(effective: &TenantLimits, overrides: &LimitOverrides, used: impl Fn(&str) -> Option<u64>) -> LimitsView {
        let limits = TenantLimits::names()
            .into_iter()
            .map(|name| LimitView {
                name,
                value: effective.get(name).unwrap_or_default(),
                source: match overrides.get(name) {
                    Some(_) => LimitSource::Override,
                    None => LimitSource::Default,
                },
                used: used(name),
            })
            .collect();
        LimitsView { limits }
    }
}

/// An operator's change of one tenant's overrides: values to set, names to unset.
#[derive(Debug, Clone, Default)]
pub struct LimitChange {
    pub(crate) set: LimitOverrides,
    pub(crate) unset: Vec<String>,
}

impl LimitChange {
    /// `name=value` pairs to set; unknown names and values out of range are refused.
    pub fn set<'a>(pairs: impl IntoIterator<Item = &'a str>) -> std::result::Result<LimitChange, LimitError> {
        let mut set = LimitOverrides::default();
        for pair in pairs {
            let (name, value) = pair.split_once('=').ok_or_else(|| LimitError::BadValue {
                name: pair.chars().take(60).collect(),
                value: String::new(),
                min: 0,
                max: u64::MAX,
            })?;
            set.set(name.trim(), value)?;
        }
        Ok(LimitChange { set, unset: Vec::new() })
    }

    /// Names whose override goes, so the default applies again; unknown names are refused.
    pub fn unset<'a>(names: impl IntoIterator<Item = &'a str>) -> std::result::Result<LimitChange, LimitError> {
        let mut probe = LimitOverrides::default();
        let mut unset = Vec::new();
        for name in names {
            probe.unset(name)?;
            unset.push(name.to_owned());
        }
        Ok(LimitChange { set: LimitOverrides::default(), unset })
    }
}

impl LimitChange {
    /// Values to set by name and names to unset (applied after), as the operator API
    /// takes them; unknown names and values out of range are refused.
    pub fn of<'a>(
        set: impl IntoIterator<Item = (&'a str, u64)>,
        unset: impl IntoIterator<Item = &'a str>,
    ) -> std::result::Result<LimitChange, LimitError> {
        let mut change = LimitChange::unset(unset)?;
        for (name, value) in set {
            change.set.set(name, &value.to_string())?;
        }
        Ok(change)
    }
}

pub(crate) fn view_of(record: &TenantLimitsRecord) -> LimitsView {
    LimitsView::of(&record.tenant.limits, &record.overrides, |_| None)
}

/// A tenant's limits (by id or slug), for an operator. Takes the store itself, which only
/// someone holding the database credentials (or the operator API) has.
pub async fn tenant_limits_show(store: &Store, tenant: &str) -> Result<(TenantLimitsRecord, LimitsView)> {
    let record = store.tenant_limits_unscoped(tenant).await?;
    let view = view_of(&record);
    Ok((record, view))
}

/// Changes a tenant's overrides (by id or slug) and returns its limits as they are now. An
/// operator's act on the database, like [`crate::worker_token_create`]; the operator API
/// calls [`crate::Operators::tenant_limits_change`], which logs the operator's token.
pub async fn tenant_limits_change(
    store: &Store,
    tenant: &str,
    change: &LimitChange,
) -> Result<(TenantLimitsRecord, LimitsView)> {
    let (operators, op) = crate::operators_on_store(store.clone());
    operators.tenant_limits_change(&op, tenant, change).await
}

impl Control {
    /// The caller's tenant's limits, each with its source and current use.
    pub async fn limits(&self, ctx: &Ctx<Read>) -> Result<LimitsView> {
        let scope = ctx.store_scope();
        let overrides = self.store.tenant_limit_overrides(scope).await?;
        let usage = self.store.tenant_usage_counts(scope).await.map_err(ControlError::from)?;
        let (storage, _) = self.store.storage_used(scope, "").await?;
        Ok(LimitsView::of(ctx.limits(), &overrides, |name| match name {
            "max_agents" => Some(usage.agents),
            "max_api_keys" => Some(usage.api_keys),
            "max_queued_invocations" => Some(usage.queued_invocations),
            "max_concurrent_invocations" => Some(usage.running_invocations),
            "max_store_bytes" => Some(usage.store_bytes),
            "max_storage_bytes" => Some(storage),
            _ => None,
        }))
    }
}
