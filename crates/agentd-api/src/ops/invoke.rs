//! Accepting an invocation (validated against the tenant's limits and the agent's
//! manifest) and waiting for one to finish.

use std::time::Duration;

use agentd_core::{AgentStatus, Invocation, InvocationId, InvokeRequest, Slug, Tenant, TenantCtx};
use agentd_store::{NewInvocation, Signal};
use axum::http::StatusCode;

use crate::{ApiError, AppState};

/// The most a request may ask to wait for an invocation to finish.
pub const MAX_WAIT_S: u64 = 60;
const MAX_ATTEMPTS: u32 = 10;
const MAX_METADATA_BYTES: usize = 16 * 1024;

pub async fn invoke(
    state: &AppState,
    ctx: &TenantCtx,
    tenant: &Tenant,
    slug: &Slug,
    req: InvokeRequest,
    idempotency_key: Option<String>,
) -> Result<(Invocation, bool), ApiError> {
    let priority = req.priority.unwrap_or(0);
    if priority > 9 {
        return Err(ApiError::invalid("invalid_priority", "priority must be between 0 and 9 (higher runs first)"));
    }
    let max_attempts = req.max_attempts.unwrap_or(1);
    if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
        return Err(ApiError::invalid(
            "invalid_max_attempts",
            format!("max_attempts must be between 1 and {MAX_ATTEMPTS}"),
        ));
    }
    let metadata = req.metadata.unwrap_or_else(|| serde_json::json!({}));
    if !metadata.is_object() || metadata.to_string().len() > MAX_METADATA_BYTES {
        return Err(ApiError::invalid(
            "invalid_metadata",
            format!("metadata must be a JSON object of at most {MAX_METADATA_BYTES} bytes"),
        ));
    }
    if req.thread_id.is_some() {
        return Err(ApiError::invalid(
            "threads_unavailable",
            "threads are not available on this server yet; omit thread_id",
        ));
    }
    if req.webhook_url.is_some() {
        return Err(ApiError::invalid(
            "webhooks_unavailable",
            "completion webhooks are not available on this server yet; omit webhook_url",
        ));
    }
    let agent = state.store.agent_get(ctx, slug).await?;
    if agent.status == AgentStatus::Disabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "agent_disabled",
            format!("agent `{slug}` is disabled; enable it with PATCH status=active"),
        ));
    }
    let n = agent.active_version.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "agent_has_no_version",
            format!("agent `{slug}` has no deployed version; upload a bundle first"),
        )
    })?;
    let version = state.store.version_get(ctx, &agent, n).await?;
    let cap = tenant.limits.invocation_timeout_s;
    let manifest_timeout = version.manifest.pointer("/limits/timeout_s").and_then(serde_json::Value::as_u64);
    let timeout_s = match req.timeout_s {
        Some(t) if t == 0 || t > cap => {
            return Err(ApiError::invalid("invalid_timeout", format!("timeout_s must be between 1 and {cap}")));
        }
        Some(t) => t,
        None => manifest_timeout.map_or(cap, |t| (t.min(u64::from(cap)) as u32).max(1)),
    };
    let new = NewInvocation {
        input: req.input,
        thread_id: None,
        priority,
        max_attempts,
        timeout_s,
        idempotency_key,
        metadata,
    };
    Ok(state.store.invocation_enqueue(ctx, &agent, &version, new, tenant.limits.max_queued_invocations).await?)
}

/// Re-reads the invocation until `done` holds for it or `wait` has passed; returns the
/// latest state either way. Woken by store signals, with a bounded re-read as backstop.
pub async fn wait_for(
    state: &AppState,
    ctx: &TenantCtx,
    id: &InvocationId,
    wait: Duration,
    done: impl Fn(&Invocation) -> bool,
) -> Result<Invocation, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribe before reading so no change can slip between the read and the wait.
    let mut signals = state.store.subscribe();
    loop {
        let invocation = state.store.invocation_get(ctx, id).await?;
        if done(&invocation) || tokio::time::Instant::now() >= deadline {
            return Ok(invocation);
        }
        let changed = async {
            loop {
                match signals.recv().await {
                    Ok(Signal::InvocationChanged(changed)) if &changed == id => return,
                    Ok(_) => continue,
                    Err(_) => return,
                }
            }
        };
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Terminal, or paused for a human: either way the caller has something to act on.
pub fn settled(invocation: &Invocation) -> bool {
    invocation.status.is_terminal() || invocation.status == agentd_core::InvocationStatus::WaitingForInput
}
