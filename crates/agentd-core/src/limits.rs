//! Per-tenant limits (DESIGN §8). Defaults come from the operator's settings; a tenant
//! may carry overrides in the store.

use serde::{Deserialize, Serialize};

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
}
