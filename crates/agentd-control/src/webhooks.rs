//! Outbound webhooks: a tenant's endpoints (created with a `whsec_` signing secret that
//! is shown once and sealed under the master key), the tenant's secret for
//! per-invocation `webhook_url`s, the delivery log and redelivery. The deliveries
//! themselves are sent by the reconciler in `webhooks/delivery.rs`.
//!
//! Where a webhook may point is checked twice: here, when a URL is given (scheme, and
//! every address its host resolves to outside the denied ranges unless the operator
//! allowed that network), and again at every delivery, which connects only to the
//! address it checked (so a DNS answer changed in between cannot steer it inward).

mod delivery;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use agentd_core::net::{IpNetwork, is_denied};
use agentd_core::{TenantId, WebhookDelivery, WebhookDeliveryId, WebhookEndpoint, WebhookEvent, WebhookId};
use agentd_store::{NewWebhook, SealedSecret, StoreError, WebhookPatch};

use crate::Control;
use crate::auth::{Ctx, Deploy, Read};
use crate::error::{ControlError, Invalid, QuotaExceeded, Result};
use crate::master_key::WebhookSecretOwner;
use crate::signatures::new_standard_secret;

/// Most endpoints one tenant may have.
pub const MAX_WEBHOOKS_PER_TENANT: u32 = 20;
/// Deliveries one page of the log shows (the newest).
pub const DELIVERY_LOG_LIMIT: u32 = 100;
/// Longest URL accepted.
const MAX_URL_LEN: usize = 2048;
/// Longest description accepted.
const MAX_DESCRIPTION_LEN: usize = 500;
/// The owner name the tenant's invocation webhook secret is sealed for.
pub(crate) const INVOCATION_SECRET_OWNER: &str = "invocation";

/// What the operator decided for outbound webhooks.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Networks deliveries may reach although they are private, loopback or link-local
    /// (`--webhook-allowed-networks`).
    pub allowed_networks: Vec<IpNetwork>,
    /// Whether `http://` URLs are accepted (always in development; in production only
    /// with `--webhook-allow-http`).
    pub allow_http: bool,
    /// How long one attempt may take, connection included.
    pub timeout: Duration,
    /// How long after its first attempt a delivery is retried before it fails.
    pub retry_window: Duration,
    /// The wait after the first failed attempt; it doubles with each one, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Failed deliveries in a row after which an endpoint is disabled.
    pub disable_after: u32,
    /// How often the reconciler looks for due deliveries.
    pub deliver_every: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allowed_networks: Vec::new(),
            allow_http: true,
            timeout: Duration::from_secs(10),
            retry_window: Duration::from_secs(24 * 3600),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
            disable_after: 10,
            deliver_every: Duration::from_secs(1),
        }
    }
}

/// An endpoint with its signing secret, as creating or rotating returns it (once).
#[derive(Debug, Clone)]
pub struct WebhookWithSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

/// A new endpoint as a caller asks for it, unchecked.
#[derive(Debug, Clone)]
pub struct WebhookSpec {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// Changes to an endpoint as a caller asks for them, unchecked.
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// A URL accepted for deliveries, with the address its host resolved to when checked.
#[derive(Debug, Clone)]
pub(crate) struct CheckedUrl {
    pub(crate) url: reqwest::Url,
    /// What to connect to; `None` when the host is an IP literal (the URL says it).
    pub(crate) pinned: Option<(String, SocketAddr)>,
}

impl WebhookSettings {
    /// Checks `raw` for a delivery: http(s) (http only when allowed), a host, no
    /// credentials, and every address it resolves to allowed. Resolves the host.
    pub(crate) async fn check_url(&self, raw: &str) -> std::result::Result<CheckedUrl, Invalid> {
        let refuse = |detail: String| Invalid::WebhookUrl { detail };
        if raw.len() > MAX_URL_LEN {
            return Err(refuse(format!("it is longer than {MAX_URL_LEN} characters")));
        }
        let url = reqwest::Url::parse(raw).map_err(|e| refuse(format!("it is not a URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(refuse(
                    "http:// is refused in production; use https:// (or the operator sets --webhook-allow-http)".into(),
                ));
            }
            other => return Err(refuse(format!("the scheme must be https or http, not {other}"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("it must not carry credentials; authenticate with the signature".into()));
        }
        let Some(host) = url.host_str().map(str::to_owned) else {
            return Err(refuse("it has no host".into()));
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        let addresses: Vec<SocketAddr> = match literal {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            // Bounded: a resolver that never answers must not hold a request or a pass.
            None => match tokio::time::timeout(self.timeout, tokio::net::lookup_host((host.as_str(), port))).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(_)) => return Err(refuse(format!("its host {host} does not resolve"))),
                Err(_) => return Err(refuse(format!("resolving its host {host} took too long"))),
            },
        };
        let Some(first) = addresses.first().copied() else {
            return Err(refuse(format!("its host {host} does not resolve")));
        };
        if let Some(bad) = addresses.iter().find(|a| is_denied(a.ip(), &self.allowed_networks)) {
            return Err(refuse(format!(
                "{host} resolves to {}, a loopback, private, link-local or otherwise internal address; the operator \
                 can allow that network with --webhook-allowed-networks",
                bad.ip()
            )));
        }
        let pinned = match literal {
            Some(_) => None,
            None => Some((host, first)),
        };
        Ok(CheckedUrl { url, pinned })
    }
}

fn parse_events(events: &[String]) -> std::result::Result<Vec<WebhookEvent>, Invalid> {
    if events.is_empty() {
        return Err(Invalid::WebhookEvents { detail: "give at least one event".into() });
    }
    let mut parsed = events
        .iter()
        .map(|e| WebhookEvent::parse(e).map_err(|why| Invalid::WebhookEvents { detail: why.to_string() }))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

fn check_description(description: Option<String>) -> std::result::Result<Option<String>, Invalid> {
    match description {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN => {
            Err(Invalid::TooLong { field: "description", max: MAX_DESCRIPTION_LEN })
        }
        other => Ok(other),
    }
}

impl Control {
    fn seal_webhook_secret(&self, tenant: &TenantId, owner: &str, secret: &str) -> Result<SealedSecret> {
        let owner = WebhookSecretOwner { tenant, owner };
        self.settings.master_keys.seal(owner, secret).map_err(ControlError::internal)
    }

    /// Creates an endpoint with a new signing secret, returned this once.
    pub async fn webhook_create(&self, ctx: &Ctx<Deploy>, spec: WebhookSpec) -> Result<WebhookWithSecret> {
        let url = self.settings.webhooks.check_url(&spec.url).await?;
        let events = parse_events(&spec.events)?;
        let description = check_description(spec.description)?;
        let secret = new_standard_secret();
        // The secret is sealed for the endpoint's id, so the id is made here.
        let id = WebhookId::generate();
        let sealed = self.seal_webhook_secret(ctx.tenant_id(), id.as_str(), &secret)?;
        let new = NewWebhook {
            id,
            url: url.url.to_string(),
            events,
            description,
            enabled: spec.enabled.unwrap_or(true),
            sealed,
        };
        let limit = MAX_WEBHOOKS_PER_TENANT;
        let endpoint = self.store.webhook_create(ctx.store_scope(), &new, limit).await.map_err(|e| match e {
            StoreError::QuotaReached { count } => QuotaExceeded::Webhooks { count, limit }.into(),
            other => ControlError::from(other),
        })?;
        ctx.span().in_scope(|| tracing::info!(webhook_id = %endpoint.id, "webhook endpoint created"));
        Ok(WebhookWithSecret { endpoint, secret })
    }

    pub async fn webhooks_list(&self, ctx: &Ctx<Read>) -> Result<Vec<WebhookEndpoint>> {
        Ok(self.store.webhooks_list(ctx.store_scope()).await?)
    }

    pub async fn webhook_get(&self, ctx: &Ctx<Read>, id: &WebhookId) -> Result<WebhookEndpoint> {
        Ok(self.store.webhook_get(ctx.store_scope(), id).await?)
    }

    pub async fn webhook_update(
        &self,
        ctx: &Ctx<Deploy>,
        id: &WebhookId,
        changes: WebhookChanges,
    ) -> Result<WebhookEndpoint> {
        let url = match &changes.url {
            Some(raw) => Some(self.settings.webhooks.check_url(raw).await?.url.to_string()),
            None => None,
        };
        let events = changes.events.as_deref().map(parse_events).transpose()?;
        let description = match changes.description {
            Some(d) => Some(check_description(d)?),
            None => None,
        };
        let patch = WebhookPatch { url, events, description, enabled: changes.enabled };
        Ok(self.store.webhook_update(ctx.store_scope(), id, &patch).await?)
    }

    pub async fn webhook_delete(&self, ctx: &Ctx<Deploy>, id: &WebhookId) -> Result<()> {
        self.store.webhook_delete(ctx.store_scope(), id).await?;
        ctx.span().in_scope(|| tracing::info!(webhook_id = %id, "webhook endpoint deleted"));
        Ok(())
    }

    /// Gives an endpoint a new signing secret, returned this once; the old one stops
    /// signing at once.
    pub async fn webhook_rotate_secret(&self, ctx: &Ctx<Deploy>, id: &WebhookId) -> Result<WebhookWithSecret> {
        let secret = new_standard_secret();
        let sealed = self.seal_webhook_secret(ctx.tenant_id(), id.as_str(), &secret)?;
        let endpoint = self.store.webhook_rotate_secret(ctx.store_scope(), id, &sealed).await?;
        Ok(WebhookWithSecret { endpoint, secret })
    }

    pub async fn webhook_deliveries(&self, ctx: &Ctx<Read>, id: &WebhookId) -> Result<Vec<WebhookDelivery>> {
        Ok(self.store.webhook_deliveries_list(ctx.store_scope(), id, DELIVERY_LOG_LIMIT).await?)
    }

    /// The webhook deliveries of an invocation (to endpoints and to its `webhook_url`).
    pub async fn invocation_webhook_deliveries(
        &self,
        ctx: &Ctx<Read>,
        id: &agentd_core::InvocationId,
    ) -> Result<Vec<WebhookDelivery>> {
        Ok(self.store.webhook_deliveries_of_invocation(ctx.store_scope(), id, DELIVERY_LOG_LIMIT).await?)
    }

    /// Sends a delivery again (due now, same `webhook-id`, a new retry window).
    pub async fn webhook_redeliver(
        &self,
        ctx: &Ctx<Deploy>,
        id: &WebhookId,
        delivery_id: &WebhookDeliveryId,
    ) -> Result<WebhookDelivery> {
        Ok(self.store.webhook_redeliver(ctx.store_scope(), id, delivery_id).await?)
    }

    /// The tenant's secret that signs deliveries to invocations' own `webhook_url`s,
    /// made on first use. With `rotate`, a new one replaces it.
    pub async fn webhook_invocation_secret(&self, ctx: &Ctx<Deploy>, rotate: bool) -> Result<String> {
        self.invocation_webhook_secret_in_force(ctx.tenant_id(), ctx.store_scope(), rotate).await
    }

    pub(crate) async fn invocation_webhook_secret_in_force(
        &self,
        tenant: &TenantId,
        scope: &agentd_core::TenantScope,
        rotate: bool,
    ) -> Result<String> {
        let owner = WebhookSecretOwner { tenant, owner: INVOCATION_SECRET_OWNER };
        let existing = match rotate {
            true => None,
            false => self.store.webhook_invocation_secret(scope).await?,
        };
        let sealed = match existing {
            Some(sealed) => sealed,
            None => {
                let fresh = new_standard_secret();
                let sealed = self.settings.master_keys.seal(owner, &fresh).map_err(ControlError::internal)?;
                self.store.webhook_invocation_secret_put(scope, &sealed, rotate).await?
            }
        };
        let opened = self.settings.master_keys.open(owner, &sealed).map_err(ControlError::internal)?;
        Ok(opened.expose().to_owned())
    }

    /// Checks an invoke's `webhook_url` and makes sure the tenant has the secret that
    /// will sign its deliveries.
    pub(crate) async fn check_invocation_webhook(
        &self,
        tenant: &TenantId,
        scope: &agentd_core::TenantScope,
        raw: &str,
    ) -> Result<String> {
        let url = self.settings.webhooks.check_url(raw).await?;
        self.invocation_webhook_secret_in_force(tenant, scope, false).await?;
        Ok(url.url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allow_http: bool, allowed: &[&str]) -> WebhookSettings {
        let allowed_networks = allowed.iter().map(|n| n.parse().unwrap()).collect();
        WebhookSettings { allowed_networks, allow_http, ..WebhookSettings::default() }
    }

    async fn refused(settings: &WebhookSettings, url: &str) -> String {
        match settings.check_url(url).await {
            Err(Invalid::WebhookUrl { detail }) => detail,
            other => panic!("{url} should be refused: {other:?}"),
        }
    }

    #[tokio::test]
    async fn internal_addresses_are_refused_unless_their_network_is_allowed() {
        let strict = settings(true, &[]);
        for url in [
            "http://127.0.0.1/",
            "http://10.0.0.5:8080/x",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.1.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
        ] {
            assert!(refused(&strict, url).await.contains("--webhook-allowed-networks"), "{url}");
        }
        let public = strict.check_url("https://93.184.216.34/hook").await.unwrap();
        assert!(public.pinned.is_none(), "an IP literal needs no pinning");
        let allowed = settings(true, &["127.0.0.0/8"]);
        assert!(allowed.check_url("http://127.0.0.1:9/hook").await.is_ok());
        assert!(allowed.check_url("http://[::ffff:127.0.0.1]:9/").await.is_ok(), "the mapped form of an allowed one");
        assert!(allowed.check_url("http://[::1]:9/").await.is_err());
    }

    #[tokio::test]
    async fn http_is_refused_when_not_allowed_and_only_http_s_without_credentials_is_accepted() {
        let production = settings(false, &[]);
        assert!(refused(&production, "http://93.184.216.34/").await.contains("https://"));
        assert!(production.check_url("https://93.184.216.34/").await.is_ok());
        for url in ["ftp://93.184.216.34/", "file:///etc/passwd", "not a url", "https://user:pw@93.184.216.34/"] {
            refused(&production, url).await;
        }
        refused(&production, &format!("https://93.184.216.34/{}", "a".repeat(MAX_URL_LEN))).await;
    }

    #[test]
    fn events_are_a_fixed_set_given_at_least_once() {
        let parsed = parse_events(&["invocation.failed".into(), "invocation.failed".into()]).unwrap();
        assert_eq!(parsed, [WebhookEvent::InvocationFailed]);
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&["invocation.exploded".into()]).is_err());
    }
}
