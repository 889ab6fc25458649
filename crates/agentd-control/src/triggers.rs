//! Inbound triggers: URLs of an agent's that another system POSTs signed requests to,
//! each request starting one invocation with no API key.
//!
//! A trigger is created with a signing secret, sealed under the master key as agents'
//! secrets are and shown once. A request to its URL goes in two steps, so the front end
//! can bound the body by the tenant's `max_request_body_bytes` before it reads it:
//! [`Control::trigger_open`] finds the trigger by id (the only thing the request names;
//! the id is 128 random bits) and builds the tenant's automation context, refused for a
//! suspended tenant; [`Control::trigger_fire`] then checks the signature (constant-time,
//! [`crate::signatures`]), counts the request against the trigger's
//! `requests_per_second`, and invokes through [`Control::invoke`], so the agent's input
//! schema, `invocations_per_minute` and the queue quota hold as for any invoke. A
//! delivery id (`webhook-id`, `X-GitHub-Delivery`) becomes the invocation's idempotency
//! key, `trigger:<id>:<delivery id>`: a repeated delivery returns the invocation the
//! first one started and starts nothing, for the 24 h idempotency keys last.

use agentd_core::{
    Actor, Invocation, RateLimitKind, RequestOrigin, Secret, Slug, Timestamp, Trigger, TriggerId, TriggerMode,
};
use agentd_store::{NewTrigger, StoreError};
use serde_json::{Map, Value, json};

use crate::Control;
use crate::auth::{Ctx, Deploy, Invoke, Read};
use crate::error::{ControlError, Invalid, QuotaExceeded, Result, Unauthenticated};
use crate::input::{Description, IdempotencyKey, Metadata};
use crate::invocations::InvokeSpec;
use crate::master_key::SecretOwner;
use crate::signatures::{self, StandardHeaders};

/// Most triggers one agent may have.
pub const MAX_TRIGGERS_PER_AGENT: u32 = 20;

/// Longest delivery id accepted (GitHub's are UUIDs, Standard Webhooks' short ids).
const MAX_DELIVERY_ID: usize = 200;

/// Bytes of a GitHub-mode secret (shown as hex).
const GITHUB_SECRET_BYTES: usize = 32;

/// The request headers an envelope shows, when the request has them: what says what
/// the payload is and which delivery it is. Signatures are not among them.
pub const ENVELOPE_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "x-github-delivery",
    "x-github-event",
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-github-hook-installation-target-type",
];

/// A trigger as asked for, checked.
#[derive(Debug, Clone)]
pub struct TriggerSpec {
    pub mode: TriggerMode,
    pub envelope: bool,
    pub description: Option<Description>,
}

/// A new trigger and its signing secret, which nothing shows again.
#[derive(Debug, Clone)]
pub struct CreatedTrigger {
    pub trigger: Trigger,
    pub secret: Secret,
}

/// A trigger a request named, found, with its tenant's context and its secret opened:
/// what [`Control::trigger_fire`] needs to check and start the request.
#[derive(Debug)]
pub struct OpenTrigger {
    ctx: Ctx<Invoke>,
    trigger: Trigger,
    secret: Secret,
}

impl OpenTrigger {
    /// The largest body the tenant accepts (`max_request_body_bytes`).
    pub fn body_limit(&self) -> u64 {
        self.ctx.limits().max_request_body_bytes
    }

    pub fn tenant_id(&self) -> &agentd_core::TenantId {
        self.ctx.tenant_id()
    }
}

/// A signed request as it arrived: its headers (names lowercase; values that are not
/// text left out) and its body.
#[derive(Debug, Clone, Copy)]
pub struct TriggerRequest<'a> {
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl TriggerRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The headers an envelope shows.
    fn selected_headers(&self) -> Value {
        let selected: Map<String, Value> = ENVELOPE_HEADERS
            .iter()
            .filter_map(|name| self.header(name).map(|v| ((*name).to_owned(), Value::String(v.to_owned()))))
            .collect();
        Value::Object(selected)
    }
}

/// What a signed request started: the invocation, and whether this request created it
/// (false: its delivery id was seen, and this is the invocation the first one started).
#[derive(Debug, Clone)]
pub struct TriggerFired {
    pub invocation: Invocation,
    pub created: bool,
}

/// Which secret of the agent's a trigger's is, in the associated data it is sealed with.
/// No environment variable name holds `:`, so it cannot be an agent secret's.
pub(crate) fn sealed_name(id: &TriggerId) -> String {
    format!("trigger:{id}")
}

fn new_secret(mode: TriggerMode) -> Secret {
    match mode {
        TriggerMode::StandardWebhooks => Secret::new(signatures::new_standard_secret()),
        TriggerMode::Github => {
            let bytes: [u8; GITHUB_SECRET_BYTES] = rand::random();
            Secret::new(hex::encode(bytes))
        }
    }
}

/// The delivery id of a request, checked: it becomes part of an idempotency key.
fn delivery_id(raw: Option<&str>, header: &'static str) -> Result<Option<String>> {
    let Some(raw) = raw.map(str::trim) else { return Ok(None) };
    let valid = !raw.is_empty() && raw.len() <= MAX_DELIVERY_ID && raw.bytes().all(|b| b.is_ascii_graphic());
    if valid { Ok(Some(raw.to_owned())) } else { Err(Invalid::DeliveryId { header, max: MAX_DELIVERY_ID }.into()) }
}

impl Control {
    /// Creates a trigger of agent `slug` with a new signing secret.
    pub async fn trigger_create(&self, ctx: &Ctx<Deploy>, slug: &Slug, spec: TriggerSpec) -> Result<CreatedTrigger> {
        let agent = self.store.agent_get(ctx.store_scope(), slug).await?;
        let id = TriggerId::from_random(rand::random());
        let secret = new_secret(spec.mode);
        let name = sealed_name(&id);
        let owner = SecretOwner { tenant: ctx.tenant_id(), agent: &agent.id, name: &name };
        let sealed = self.settings.master_keys.seal(owner, secret.expose()).map_err(ControlError::internal)?;
        let new = NewTrigger {
            id,
            mode: spec.mode,
            envelope: spec.envelope,
            description: spec.description.map(Description::into_inner),
            sealed,
        };
        let limit = MAX_TRIGGERS_PER_AGENT;
        let trigger =
            self.store.trigger_create(ctx.store_scope(), &agent.id, new, limit).await.map_err(|e| match e {
                StoreError::QuotaReached { count } => QuotaExceeded::Triggers { count, limit }.into(),
                other => ControlError::from(other),
            })?;
        ctx.span().in_scope(|| tracing::info!(agent = %slug, trigger_id = %trigger.id, "trigger created"));
        Ok(CreatedTrigger { trigger, secret })
    }

    /// Agent `slug`'s triggers, oldest first (never their secrets).
    pub async fn triggers_list(&self, ctx: &Ctx<Read>, slug: &Slug) -> Result<Vec<Trigger>> {
        Ok(self.store.triggers_list(ctx.store_scope(), slug).await?)
    }

    pub async fn trigger_get(&self, ctx: &Ctx<Read>, slug: &Slug, id: &TriggerId) -> Result<Trigger> {
        Ok(self.store.trigger_get(ctx.store_scope(), slug, id).await?)
    }

    /// Deletes a trigger: its URL answers not found from now on.
    pub async fn trigger_delete(&self, ctx: &Ctx<Deploy>, slug: &Slug, id: &TriggerId) -> Result<()> {
        self.store.trigger_delete(ctx.store_scope(), slug, id).await?;
        ctx.span().in_scope(|| tracing::info!(agent = %slug, trigger_id = %id, "trigger deleted"));
        Ok(())
    }

    /// The trigger a request names, ready to check the request: not found when there is
    /// no such trigger (or it was deleted), refused when its tenant is suspended.
    pub async fn trigger_open(&self, id: &TriggerId, origin: RequestOrigin) -> Result<OpenTrigger> {
        let found = self
            .store
            .trigger_find_unscoped(id)
            .await?
            .ok_or(ControlError::NotFound(agentd_core::ResourceKind::Trigger))?;
        let ctx = self.automation_ctx::<Invoke>(&found.tenant_id, Actor::Trigger { id: id.clone() }, origin).await?;
        let name = sealed_name(id);
        let owner = SecretOwner { tenant: &found.tenant_id, agent: &found.trigger.agent_id, name: &name };
        let secret = self.settings.master_keys.open(owner, &found.sealed).map_err(|why| {
            tracing::error!(
                tenant_id = %found.tenant_id,
                trigger_id = %id,
                cause = %why,
                "a trigger's secret does not open; check AGENTD_MASTER_KEY (and AGENTD_PREVIOUS_MASTER_KEY during a rotation)"
            );
            ControlError::internal(std::io::Error::other("a trigger's secret does not open"))
        })?;
        Ok(OpenTrigger { ctx, trigger: found.trigger, secret })
    }

    /// Checks a request to an open trigger and starts its invocation (or finds the one
    /// its delivery id started).
    pub async fn trigger_fire(&self, open: OpenTrigger, request: TriggerRequest<'_>) -> Result<TriggerFired> {
        let OpenTrigger { ctx, trigger, secret } = open;
        let delivery = self.trigger_verify(&trigger, &secret, request)?;
        // Counted once the signature holds: requests without the secret cannot use up
        // the sender's rate.
        let subject = format!("trigger:{}", trigger.id);
        self.rate_take(RateLimitKind::RequestsPerSecond, ctx.limits().requests_per_second, &subject).await?;
        let body: Value = serde_json::from_slice(request.body).map_err(|_| Invalid::TriggerBody)?;
        let input = match trigger.envelope {
            true => json!({"body": body, "headers": request.selected_headers()}),
            false => body,
        };
        let idempotency_key =
            delivery.as_deref().map(|d| IdempotencyKey::parse(&format!("trigger:{}:{d}", trigger.id))).transpose()?;
        let metadata = Metadata::parse(Some(json!({"trigger_id": trigger.id, "delivery_id": delivery})))?;
        let spec = InvokeSpec { input, idempotency_key, metadata, ..InvokeSpec::default() };
        let accepted = self.invoke(&ctx, &trigger.agent, spec, None).await?;
        if accepted.created {
            ctx.span().in_scope(|| {
                tracing::info!(trigger_id = %trigger.id, invocation_id = %accepted.invocation.id, "trigger fired");
            });
        }
        Ok(TriggerFired { invocation: accepted.invocation, created: accepted.created })
    }

    /// The request's signature under the trigger's scheme; its delivery id when it has one.
    fn trigger_verify(
        &self,
        trigger: &Trigger,
        secret: &Secret,
        request: TriggerRequest<'_>,
    ) -> Result<Option<String>> {
        let refused = |why| ControlError::from(Unauthenticated::TriggerSignature { why });
        match trigger.mode {
            TriggerMode::StandardWebhooks => {
                let headers = StandardHeaders {
                    id: request.header("webhook-id"),
                    timestamp: request.header("webhook-timestamp"),
                    signature: request.header("webhook-signature"),
                };
                let now = Timestamp::now().unix_ms() / 1000;
                signatures::standard_verify(secret.expose(), headers, request.body, now).map_err(refused)?;
                delivery_id(headers.id, "webhook-id")
            }
            TriggerMode::Github => {
                let header = request.header("x-hub-signature-256");
                signatures::github_verify(secret.expose(), header, request.body).map_err(refused)?;
                delivery_id(request.header("x-github-delivery"), "X-GitHub-Delivery")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_id_is_visible_ascii_of_bounded_length() {
        assert_eq!(delivery_id(None, "webhook-id").unwrap(), None);
        assert_eq!(delivery_id(Some(" msg_1 "), "webhook-id").unwrap().as_deref(), Some("msg_1"));
        for bad in ["", "two words", "caf\u{e9}", &"x".repeat(MAX_DELIVERY_ID + 1)] {
            assert!(delivery_id(Some(bad), "webhook-id").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_of_their_modes_shape() {
        assert!(new_secret(TriggerMode::StandardWebhooks).expose().starts_with(signatures::SECRET_PREFIX));
        let github = new_secret(TriggerMode::Github);
        assert!(github.expose().len() == 2 * GITHUB_SECRET_BYTES && hex::decode(github.expose()).is_ok());
    }
}
