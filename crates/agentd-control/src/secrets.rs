//! An agent's secrets: set (sealed here, under the master key, before the store sees
//! them), listed by name, deleted, opened for each run a worker claims, and re-sealed
//! under a new master key by the operator's rotation.
//!
//! A value leaves this module in one direction only: into a claimed run's
//! [`RunSecrets`](agentd_core::RunSecrets), which the worker sets as environment
//! variables. No operation returns it and nothing here logs it.

use agentd_core::queue::{ClaimedRun, Completion};
use agentd_core::{AgentSecret, Fault, InvocationError, InvocationStatus, RunSecrets, Slug, Usage};
use agentd_store::{SecretCursor, SecretWritten, Store, StoreError};

use crate::Control;
use crate::auth::{Ctx, Deploy, Read};
use crate::error::{ControlError, QuotaExceeded, Result};
use crate::input::{SecretName, SecretValue};
use crate::master_key::{MasterKeys, SecretOwner, Unopenable};

/// Most secrets one agent may have.
pub const MAX_SECRETS_PER_AGENT: u32 = 100;

/// A secret of a claimed run that did not open.
#[derive(Debug)]
pub(crate) struct RunSecretUnopenable {
    name: String,
    why: Unopenable,
}

impl Control {
    /// Sets secret `name` of agent `slug`: created, or its value replaced.
    pub async fn secret_put(
        &self,
        ctx: &Ctx<Deploy>,
        slug: &Slug,
        name: &SecretName,
        value: SecretValue,
    ) -> Result<SecretWritten> {
        let agent = self.store.agent_get(ctx.store_scope(), slug).await?;
        let owner = SecretOwner { tenant: ctx.tenant_id(), agent: &agent.id, name: name.as_str() };
        let sealed = self.settings.master_keys.seal(owner, value.expose()).map_err(ControlError::internal)?;
        let limit = MAX_SECRETS_PER_AGENT;
        let written =
            self.store.secret_put(ctx.store_scope(), &agent.id, name.as_str(), &sealed, limit).await.map_err(|e| {
                match e {
                    StoreError::QuotaReached { count } => QuotaExceeded::Secrets { count, limit }.into(),
                    other => ControlError::from(other),
                }
            })?;
        ctx.span().in_scope(|| {
            tracing::info!(agent = %slug, secret = name.as_str(), created = written.created, "secret set");
        });
        Ok(written)
    }

    /// The names of agent `slug`'s secrets and when they were set, by name.
    pub async fn secrets_list(&self, ctx: &Ctx<Read>, slug: &Slug) -> Result<Vec<AgentSecret>> {
        Ok(self.store.secrets_list(ctx.store_scope(), slug).await?)
    }

    pub async fn secret_delete(&self, ctx: &Ctx<Deploy>, slug: &Slug, name: &SecretName) -> Result<()> {
        self.store.secret_delete(ctx.store_scope(), slug, name.as_str()).await?;
        ctx.span().in_scope(|| tracing::info!(agent = %slug, secret = name.as_str(), "secret deleted"));
        Ok(())
    }

    /// The secrets of a claimed run's agent, opened; the first that does not open is
    /// the error (the run cannot start without it).
    pub(crate) async fn run_secrets(
        &self,
        run: &ClaimedRun,
    ) -> Result<std::result::Result<RunSecrets, RunSecretUnopenable>> {
        let stored = self.store.secrets_for_run_unscoped(&run.invocation_id).await?;
        let mut secrets = RunSecrets::default();
        for secret in &stored {
            let owner = SecretOwner { tenant: &secret.tenant_id, agent: &secret.agent_id, name: &secret.name };
            match self.settings.master_keys.open(owner, &secret.sealed) {
                Ok(value) => secrets.insert(secret.name.clone(), value),
                Err(why) => return Ok(Err(RunSecretUnopenable { name: secret.name.clone(), why })),
            }
        }
        Ok(Ok(secrets))
    }

    /// Ends a claimed run whose secrets did not open as the platform's failure: another
    /// replica (one holding the key) may run it as a new attempt, within the recoveries.
    pub(crate) async fn fail_unopenable_secrets(
        &self,
        run: &ClaimedRun,
        unopenable: RunSecretUnopenable,
    ) -> Result<()> {
        tracing::error!(
            tenant_id = %run.tenant_id,
            invocation_id = %run.invocation_id,
            secret = %unopenable.name,
            cause = %unopenable.why,
            "a claimed run's secret does not open; check AGENTD_MASTER_KEY (and AGENTD_PREVIOUS_MASTER_KEY during a rotation)"
        );
        let message = format!(
            "the platform could not decrypt the agent's secret `{}`; the operator's log says why",
            unopenable.name
        );
        let completion = Completion {
            status: InvocationStatus::Failed,
            output: None,
            error: Some(InvocationError { code: "secrets_unavailable".into(), message }),
            usage: Usage::default(),
            fault: Fault::Platform,
            interrupt: None,
            state: None,
        };
        let plan = self.settings.retry.plan(run.attempt);
        self.store.queue_complete(&run.lease(), completion, &plan).await?;
        Ok(())
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Secrets moved from the previous key to the current one.
    pub resealed: u64,
    /// Secrets written anew while the rotation ran (under the current key already).
    pub changed_meanwhile: u64,
    /// Secrets sealed under the previous key that did not open with it.
    pub unopenable: Vec<String>,
    /// Every key id with its number of secrets, once the rotation is done.
    pub by_key: Vec<(String, u64)>,
}

/// How many secrets one page of a rotation reads.
const ROTATION_PAGE: u32 = 200;

/// Re-seals every secret sealed under `keys`' previous key with its current key (agents'
/// secrets, triggers' and webhooks' signing secrets): the
/// operator's `agentd admin secrets rotate`. Idempotent: a second run finds nothing to
/// do, and an interrupted one is finished by running it again. Replicas may serve
/// meanwhile if they hold both keys (the current one, and the previous to open with).
pub async fn secrets_rotate(store: &Store, keys: &MasterKeys) -> Result<Rotation> {
    let mut rotation = Rotation::default();
    if let Some(previous) = keys.previous() {
        let mut after: Option<SecretCursor> = None;
        loop {
            let page = store.secrets_sealed_with_unscoped(previous.id(), after.as_ref(), ROTATION_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.agent_id.clone(), last.name.clone()));
            for secret in &page {
                let owner = SecretOwner { tenant: &secret.tenant_id, agent: &secret.agent_id, name: &secret.name };
                let value = match keys.open(owner, &secret.sealed) {
                    Ok(value) => value,
                    Err(why) => {
                        tracing::error!(agent_id = %secret.agent_id, secret = %secret.name, cause = %why, "not rotated");
                        rotation.unopenable.push(format!("{}/{}", secret.agent_id, secret.name));
                        continue;
                    }
                };
                let resealed = keys.seal(owner, value.expose()).map_err(ControlError::internal)?;
                match store.secret_reseal_unscoped(secret, &resealed).await? {
                    true => rotation.resealed += 1,
                    false => rotation.changed_meanwhile += 1,
                }
            }
        }
    }
    if let Some(previous) = keys.previous() {
        rotate_trigger_secrets(store, keys, previous.id(), &mut rotation).await?;
        rotate_webhook_secrets(store, keys, previous.id(), &mut rotation).await?;
    }
    rotation.by_key = store.secret_key_ids_unscoped().await?;
    Ok(rotation)
}

/// The webhooks' part of a rotation: the endpoints' signing secrets, then the tenants'
/// invocation webhook secrets.
async fn rotate_webhook_secrets(
    store: &Store,
    keys: &MasterKeys,
    previous: &str,
    rotation: &mut Rotation,
) -> Result<()> {
    let mut after: Option<agentd_core::WebhookId> = None;
    loop {
        let page = store.webhook_endpoint_secrets_sealed_with_unscoped(previous, after.as_ref(), ROTATION_PAGE).await?;
        let Some(last) = page.last() else { break };
        if let agentd_store::WebhookSecretRow::Endpoint(id) = &last.row {
            after = Some(id.clone());
        }
        reseal_webhook_secrets(store, keys, &page, rotation).await?;
    }
    let mut after: Option<agentd_core::TenantId> = None;
    loop {
        let page =
            store.webhook_invocation_secrets_sealed_with_unscoped(previous, after.as_ref(), ROTATION_PAGE).await?;
        let Some(last) = page.last() else { return Ok(()) };
        after = Some(last.tenant_id.clone());
        reseal_webhook_secrets(store, keys, &page, rotation).await?;
    }
}

async fn reseal_webhook_secrets(
    store: &Store,
    keys: &MasterKeys,
    page: &[agentd_store::StoredWebhookSecret],
    rotation: &mut Rotation,
) -> Result<()> {
    for secret in page {
        let owner_name = match &secret.row {
            agentd_store::WebhookSecretRow::Endpoint(id) => id.as_str(),
            agentd_store::WebhookSecretRow::Invocation => crate::webhooks::INVOCATION_SECRET_OWNER,
        };
        let owner = crate::master_key::WebhookSecretOwner { tenant: &secret.tenant_id, owner: owner_name };
        let value = match keys.open(owner, &secret.sealed) {
            Ok(value) => value,
            Err(why) => {
                tracing::error!(tenant_id = %secret.tenant_id, webhook = owner_name, cause = %why, "not rotated");
                rotation.unopenable.push(format!("webhook secret {owner_name} of {}", secret.tenant_id));
                continue;
            }
        };
        let resealed = keys.seal(owner, value.expose()).map_err(ControlError::internal)?;
        match store.webhook_secret_reseal_unscoped(secret, &resealed).await? {
            true => rotation.resealed += 1,
            false => rotation.changed_meanwhile += 1,
        }
    }
    Ok(())
}

/// The triggers' part of a rotation: their signing secrets, sealed as agents' are.
async fn rotate_trigger_secrets(
    store: &Store,
    keys: &MasterKeys,
    previous: &str,
    rotation: &mut Rotation,
) -> Result<()> {
    let mut after: Option<agentd_core::TriggerId> = None;
    loop {
        let page = store.trigger_secrets_sealed_with_unscoped(previous, after.as_ref(), ROTATION_PAGE).await?;
        let Some(last) = page.last() else { return Ok(()) };
        after = Some(last.id.clone());
        for secret in &page {
            let name = crate::triggers::sealed_name(&secret.id);
            let owner = SecretOwner { tenant: &secret.tenant_id, agent: &secret.agent_id, name: &name };
            let value = match keys.open(owner, &secret.sealed) {
                Ok(value) => value,
                Err(why) => {
                    tracing::error!(trigger_id = %secret.id, cause = %why, "not rotated");
                    rotation.unopenable.push(format!("trigger {}", secret.id));
                    continue;
                }
            };
            let resealed = keys.seal(owner, value.expose()).map_err(ControlError::internal)?;
            match store.trigger_secret_reseal_unscoped(secret, &resealed).await? {
                true => rotation.resealed += 1,
                false => rotation.changed_meanwhile += 1,
            }
        }
    }
}
