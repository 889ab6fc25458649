//! The delivery reconciler: claims due deliveries from the outbox under a lease, signs
//! each (Standard Webhooks), POSTs it to the address it checked, and records the
//! attempt: success, a retry after an exponential backoff while the retry window lasts,
//! or failure (which counts against the endpoint, disabling it after
//! `disable_after` failed deliveries in a row).
//!
//! At least once: a process that dies after sending and before recording leaves the
//! lease to run out, and the delivery is sent again with the same `webhook-id`, which
//! receivers dedupe on. Redirects are not followed (one could point inward).

use std::time::{Duration, Instant};

use agentd_core::{Timestamp, WebhookId};
use agentd_store::{AttemptNext, AttemptRecord, AttemptRecorded, ClaimedDelivery};
use tokio::task::JoinSet;

use super::{INVOCATION_SECRET_OWNER, WebhookSettings};
use crate::Control;
use crate::error::{ControlError, Result};
use crate::master_key::WebhookSecretOwner;
use crate::signatures::standard_sign;

/// Deliveries one pass claims at most; they are sent concurrently.
const CLAIM_BATCH: u32 = 32;

/// What one POST gave.
struct Sent {
    status_code: Option<u16>,
    error: Option<String>,
    latency_ms: u64,
}

impl Control {
    /// One pass of the delivery reconciler. Returns how many attempts it recorded.
    pub async fn deliver_webhooks(&self) -> Result<u64> {
        let settings = &self.settings.webhooks;
        // A lease per pass: long enough for an attempt, so no other replica sends the
        // same delivery meanwhile; a process that dies leaves it to run out.
        let owner = format!("deliverer-{:016x}", rand::random::<u64>());
        let lease = settings.timeout + Duration::from_secs(30);
        let until = Timestamp::now().plus_ms(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let claimed = self.store.webhook_deliveries_claim_unscoped(&owner, until, CLAIM_BATCH).await?;
        let mut sends = JoinSet::new();
        for delivery in claimed {
            let control = self.clone();
            let owner = owner.clone();
            sends.spawn(async move { control.attempt(delivery, &owner).await });
        }
        let mut recorded = 0;
        while let Some(done) = sends.join_next().await {
            match done {
                Ok(Ok(())) => recorded += 1,
                Ok(Err(err)) => tracing::error!(error = ?err, "recording a webhook attempt failed; it is retried"),
                Err(err) => tracing::error!(error = ?err, "a webhook attempt panicked"),
            }
        }
        Ok(recorded)
    }

    async fn attempt(&self, delivery: ClaimedDelivery, owner: &str) -> Result<()> {
        let settings = &self.settings.webhooks;
        let payload = match &delivery.payload {
            Some(payload) => payload.clone(),
            None => self.payload(&delivery).await?,
        };
        let sent = match self.signing_secret(&delivery) {
            Ok(secret) => send(settings, &delivery, &secret, &payload).await,
            Err(why) => Sent { status_code: None, error: Some(why), latency_ms: 0 },
        };
        let at = Timestamp::now();
        let next = match sent.error {
            None => AttemptNext::Succeeded,
            Some(_) => next_after_failure(settings, &delivery, at),
        };
        let record = AttemptRecord {
            payload,
            at,
            status_code: sent.status_code,
            latency_ms: sent.latency_ms,
            error: sent.error.clone(),
            next,
        };
        let outcome = self.store.webhook_delivery_record_unscoped(&delivery, owner, &record).await?;
        let span = tracing::info_span!("webhook", tenant_id = %delivery.tenant_id, delivery_id = %delivery.id);
        span.in_scope(|| match (outcome, &sent.error) {
            (AttemptRecorded::LeaseLost, _) => tracing::warn!("webhook attempt made after its lease ran out"),
            (AttemptRecorded::EndpointDisabled, _) => {
                let endpoint = delivery.endpoint_id.as_ref().map(WebhookId::as_str);
                tracing::warn!(webhook_id = endpoint, "webhook endpoint disabled after repeated failures");
            }
            (_, Some(error)) => tracing::info!(%error, attempt = delivery.attempts + 1, "webhook attempt failed"),
            (_, None) => tracing::debug!(attempt = delivery.attempts + 1, "webhook delivered"),
        });
        crate::metrics::webhook_attempt(sent.error.is_none());
        Ok(())
    }

    /// `{type, timestamp, data: {invocation}}`: the invocation as it is at the first
    /// attempt (which follows its change at once, unless the platform was down).
    async fn payload(&self, delivery: &ClaimedDelivery) -> Result<String> {
        let invocation = self.store.webhook_invocation_unscoped(&delivery.tenant_id, &delivery.invocation_id).await?;
        let invocation = match invocation {
            Some(invocation) => serde_json::to_value(invocation).map_err(ControlError::internal)?,
            None => serde_json::json!({"id": delivery.invocation_id}),
        };
        let body = serde_json::json!({
            "type": delivery.event_type,
            "timestamp": delivery.occurred_at,
            "data": {"invocation": invocation},
        });
        serde_json::to_string(&body).map_err(ControlError::internal)
    }

    fn signing_secret(&self, delivery: &ClaimedDelivery) -> std::result::Result<String, String> {
        let Some(sealed) = &delivery.sealed else {
            return Err("the workspace has no invocation webhook secret".into());
        };
        let owner_name = delivery.endpoint_id.as_ref().map_or(INVOCATION_SECRET_OWNER, WebhookId::as_str);
        let owner = WebhookSecretOwner { tenant: &delivery.tenant_id, owner: owner_name };
        match self.settings.master_keys.open(owner, sealed) {
            Ok(secret) => Ok(secret.expose().to_owned()),
            Err(why) => {
                tracing::error!(delivery_id = %delivery.id, cause = %why, "a webhook signing secret does not open");
                Err("the platform could not decrypt the signing secret; the operator's log says why".into())
            }
        }
    }
}

/// Retry after `base * 2^(attempts made - 1)` (at most `backoff_max`), unless that is
/// past the retry window: then the delivery has failed.
fn next_after_failure(settings: &WebhookSettings, delivery: &ClaimedDelivery, at: Timestamp) -> AttemptNext {
    let made = delivery.attempts + 1;
    let factor = 2u32.saturating_pow(made.saturating_sub(1).min(30));
    let wait = settings.backoff_base.saturating_mul(factor).min(settings.backoff_max);
    let retry_at = at.plus_ms(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    let window_ms = i64::try_from(settings.retry_window.as_millis()).unwrap_or(i64::MAX);
    let window_ends = delivery.window_started_at.plus_ms(window_ms);
    if retry_at.unix_ms() > window_ends.unix_ms() {
        AttemptNext::Failed { disable_after: settings.disable_after }
    } else {
        AttemptNext::RetryAt(retry_at)
    }
}

/// Checks the URL again (DNS may have changed since it was accepted), then POSTs the
/// signed payload to the checked address only.
async fn send(settings: &WebhookSettings, delivery: &ClaimedDelivery, secret: &str, payload: &str) -> Sent {
    let started = Instant::now();
    let failed = |error: String, started: Instant| Sent {
        status_code: None,
        error: Some(error),
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let checked = match settings.check_url(&delivery.url).await {
        Ok(checked) => checked,
        Err(refused) => return failed(refused.to_string(), started),
    };
    let timestamp = Timestamp::now().unix_ms() / 1000;
    let signature = match standard_sign(secret, delivery.id.as_str(), timestamp, payload.as_bytes()) {
        Ok(signature) => signature,
        Err(why) => return failed(format!("signing failed: {why}"), started),
    };
    let _ = rustls::crypto::ring::default_provider().install_default(); // Err: already installed, fine.
    let mut client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("agentd-webhooks/", env!("CARGO_PKG_VERSION")));
    if let Some((host, addr)) = &checked.pinned {
        client = client.resolve(host, *addr);
    }
    let client = match client.build() {
        Ok(client) => client,
        Err(why) => return failed(format!("no HTTP client: {why}"), started),
    };
    let response = client
        .post(checked.url)
        .header("content-type", "application/json")
        .header("webhook-id", delivery.id.as_str())
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(payload.to_owned())
        .send()
        .await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match response {
        Ok(response) if response.status().is_success() => {
            Sent { status_code: Some(response.status().as_u16()), error: None, latency_ms }
        }
        Ok(response) => {
            let code = response.status().as_u16();
            Sent { status_code: Some(code), error: Some(format!("the receiver answered HTTP {code}")), latency_ms }
        }
        Err(err) if err.is_timeout() => {
            let error = format!("no answer within {} s", settings.timeout.as_secs_f64());
            Sent { status_code: None, error: Some(error), latency_ms }
        }
        Err(err) => Sent { status_code: None, error: Some(format!("the request failed: {err}")), latency_ms },
    }
}

#[cfg(test)]
mod tests {
    use agentd_core::{InvocationId, TenantId, WebhookDeliveryId};

    use super::*;

    fn claimed(attempts: u32, window_started_at: Timestamp) -> ClaimedDelivery {
        ClaimedDelivery {
            id: WebhookDeliveryId::generate(),
            tenant_id: TenantId::generate(),
            endpoint_id: None,
            url: "https://93.184.216.34/".into(),
            invocation_id: InvocationId::generate(),
            event_type: "invocation.succeeded".into(),
            occurred_at: window_started_at,
            payload: None,
            attempts,
            window_started_at,
            sealed: None,
        }
    }

    #[test]
    fn waits_double_up_to_the_cap_and_the_window_ends_the_retries() {
        let settings = WebhookSettings {
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(60),
            retry_window: Duration::from_secs(3600),
            ..WebhookSettings::default()
        };
        let start = Timestamp::from_unix_ms(1_000_000);
        let wait_after = |attempts: u32| match next_after_failure(&settings, &claimed(attempts, start), start) {
            AttemptNext::RetryAt(at) => at.unix_ms() - start.unix_ms(),
            other => panic!("{other:?}"),
        };
        assert_eq!([wait_after(0), wait_after(1), wait_after(2), wait_after(3)], [5_000, 10_000, 20_000, 40_000]);
        assert_eq!(wait_after(4), 60_000);
        assert_eq!(wait_after(40), 60_000);
        let late = start.plus_ms(3_600_000 - 1_000);
        let failed = next_after_failure(&settings, &claimed(3, start), late);
        assert!(matches!(failed, AttemptNext::Failed { disable_after: 10 }), "{failed:?}");
    }
}
