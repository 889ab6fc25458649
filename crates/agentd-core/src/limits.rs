//! Per-tenant limits (DESIGN §8). Defaults come from the operator's settings; a tenant
//! may carry overrides in the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantLimits {
    pub max_agents: u32,
    pub max_concurrent_invocations: u32,
    pub max_queued_invocations: u32,
    pub invocation_timeout_s: u32,
    pub max_request_body_bytes: u64,
    pub max_bundle_bytes: u64,
    pub max_storage_bytes: u64,
    pub max_api_keys: u32,
    pub requests_per_second: u32,
    pub invocations_per_minute: u32,
    pub memory_mb: u32,
    pub log_bytes_per_invocation: u64,
    /// Longest `input_timeout_s` an invoke may ask for: how long a question may wait.
    pub max_input_timeout_s: u32,
    /// Wall time of one dependency install.
    pub build_timeout_s: u32,
    /// Memory cap of one dependency install (the files it writes count too).
    pub build_memory_mb: u32,
    /// Largest installed dependency tree of one version (never more than `max_storage_bytes`).
    pub max_dependency_bytes: u64,
    /// Largest value of one memory store item, as JSON text.
    pub max_store_item_bytes: u64,
    /// All of the tenant's memory store items together: values, namespaces and keys.
    pub max_store_bytes: u64,
    /// How deep sub-agents may nest: an invocation made with a run's token is one deeper
    /// than the run (top-level invocations are 0), and one deeper than this is refused.
    pub max_invocation_depth: u32,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            max_agents: 100,
            max_concurrent_invocations: 10,
            max_queued_invocations: 10_000,
            invocation_timeout_s: 900,
            max_request_body_bytes: 1024 * 1024,
            max_bundle_bytes: 50 * 1024 * 1024,
            max_storage_bytes: 5 * 1024 * 1024 * 1024,
            max_api_keys: 50,
            requests_per_second: 50,
            invocations_per_minute: 600,
            memory_mb: 512,
            log_bytes_per_invocation: 10 * 1024 * 1024,
            max_input_timeout_s: 30 * 24 * 3600,
            build_timeout_s: 600,
            build_memory_mb: 2048,
            max_dependency_bytes: 512 * 1024 * 1024,
            max_store_item_bytes: 1024 * 1024,
            max_store_bytes: 64 * 1024 * 1024,
            max_invocation_depth: 5,
        }
    }
}

/// A tenant's own values for some limits, by name; every other limit is the platform's
/// default. Kept apart from the defaults so that a change of `AGENTD_LIMITS_*` reaches
/// every tenant that has no value of its own.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LimitOverrides(BTreeMap<String, u64>);

/// Why a limit's name or value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("`{name}` is not a limit; the limits are: {}", TenantLimits::names().join(", "))]
    UnknownName { name: String },
    #[error("{name} must be a whole number from {min} to {max}, not `{value}`")]
    BadValue { name: String, value: String, min: u64, max: u64 },
}

impl LimitOverrides {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.0.get(name).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `name` to `value` (text, as an operator typed it), checked against the limit's range.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), LimitError> {
        let (min, max) = TenantLimits::range(name)?;
        let bad = || LimitError::BadValue { name: name.to_owned(), value: value.chars().take(40).collect(), min, max };
        let number: u64 = value.trim().parse().map_err(|_| bad())?;
        if !(min..=max).contains(&number) {
            return Err(bad());
        }
        self.0.insert(name.to_owned(), number);
        Ok(())
    }

    /// Takes every value of `other`, replacing this one's for the same names.
    pub fn merge(&mut self, other: &LimitOverrides) {
        self.0.extend(other.0.iter().map(|(k, v)| (k.clone(), *v)));
    }

    /// Drops `name`'s value, if it has one.
    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// Removes `name`'s value, so the platform's default applies again.
    pub fn unset(&mut self, name: &str) -> Result<(), LimitError> {
        TenantLimits::range(name)?;
        self.0.remove(name);
        Ok(())
    }
}

impl TenantLimits {
    /// Every limit's name, in declaration order.
    pub fn names() -> Vec<&'static str> {
        LIMIT_NAMES.to_vec()
    }

    /// The value of limit `name`, if there is such a limit.
    pub fn get(&self, name: &str) -> Option<u64> {
        let value = serde_json::to_value(self).ok()?;
        value.get(name)?.as_u64()
    }

    /// The smallest and largest value limit `name` may take. Timeouts and memory must be
    /// at least 1 (0 would make every run fail); counts and sizes may be 0 (none).
    fn range(name: &str) -> Result<(u64, u64), LimitError> {
        if !LIMIT_NAMES.contains(&name) {
            return Err(LimitError::UnknownName { name: name.chars().take(60).collect() });
        }
        let min = u64::from(name.ends_with("_s") || name.ends_with("_mb"));
        // Bytes are stored as BIGINT, signed on both engines.
        let max = if is_u32(name) { u64::from(u32::MAX) } else { i64::MAX as u64 };
        Ok((min, max))
    }

    /// These limits overlaid by a tenant's overrides: the tenant's effective limits.
    pub fn with_overrides(&self, overrides: &LimitOverrides) -> TenantLimits {
        let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(self) else { return self.clone() };
        for (name, value) in overrides.iter() {
            if let Some(slot) = fields.get_mut(name) {
                *slot = value.into();
            }
        }
        // A stored override outside its range (never written by `set`) falls back to the default.
        serde_json::from_value(serde_json::Value::Object(fields)).unwrap_or_else(|_| self.clone())
    }

    /// The overrides that make `defaults` into these limits: the fields that differ.
    pub fn overrides_from(&self, defaults: &TenantLimits) -> LimitOverrides {
        let differing = LIMIT_NAMES.iter().filter_map(|name| {
            let value = self.get(name)?;
            (defaults.get(name) != Some(value)).then(|| ((*name).to_owned(), value))
        });
        LimitOverrides(differing.collect())
    }
}

const LIMIT_NAMES: &[&str] = &[
    "max_agents",
    "max_concurrent_invocations",
    "max_queued_invocations",
    "invocation_timeout_s",
    "max_request_body_bytes",
    "max_bundle_bytes",
    "max_storage_bytes",
    "max_api_keys",
    "requests_per_second",
    "invocations_per_minute",
    "memory_mb",
    "log_bytes_per_invocation",
    "max_input_timeout_s",
    "build_timeout_s",
    "build_memory_mb",
    "max_dependency_bytes",
    "max_store_item_bytes",
    "max_store_bytes",
    "max_invocation_depth",
];

/// Whether limit `name` is held in 32 bits (counts, seconds, megabytes) rather than 64 (bytes).
fn is_u32(name: &str) -> bool {
    !name.ends_with("_bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_stored_before_a_limit_existed_load_with_its_default() {
        let stored: TenantLimits = serde_json::from_str(r#"{"max_agents": 3}"#).unwrap_or_default();
        assert_eq!(stored.max_agents, 3);
        assert_eq!(stored.max_store_item_bytes, 1024 * 1024);
        assert_eq!(stored.max_store_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn every_limit_has_a_name_and_overrides_overlay_the_defaults() {
        let defaults = TenantLimits::default();
        assert!(TenantLimits::names().iter().all(|name| defaults.get(name).is_some()));
        let fields = serde_json::to_value(&defaults).ok().and_then(|v| v.as_object().map(|o| o.len()));
        assert_eq!(fields, Some(TenantLimits::names().len()));
        let mut overrides = LimitOverrides::default();
        assert_eq!(overrides.set("max_agents", "3"), Ok(()));
        let effective = defaults.with_overrides(&overrides);
        assert_eq!(effective.max_agents, 3);
        assert_eq!(effective.max_api_keys, defaults.max_api_keys);
        assert_eq!(effective.overrides_from(&defaults), overrides);
    }

    #[test]
    fn unknown_names_and_bad_values_are_refused() {
        let mut overrides = LimitOverrides::default();
        assert!(matches!(overrides.set("max_agnts", "3"), Err(LimitError::UnknownName { .. })));
        assert!(matches!(overrides.set("max_agents", "lots"), Err(LimitError::BadValue { .. })));
        assert!(matches!(overrides.set("max_agents", "-1"), Err(LimitError::BadValue { .. })));
        assert!(matches!(overrides.set("max_agents", "4294967296"), Err(LimitError::BadValue { .. })));
        assert!(matches!(overrides.set("memory_mb", "0"), Err(LimitError::BadValue { .. })));
        assert_eq!(overrides.set("max_bundle_bytes", "4294967296"), Ok(()));
        assert_eq!(overrides.set("max_agents", "0"), Ok(()));
        assert!(overrides.unset("nope").is_err());
    }
}
