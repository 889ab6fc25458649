//! Rate limits, decided here so that every front end gets them: `requests_per_second`
//! per credential on every authenticated call ([`Control::authenticate`]),
//! `invocations_per_minute` per tenant in [`Control::invoke`], and the platform's
//! per-address limits on signup and login. The arithmetic is GCRA
//! ([`agentd_core::rate`]); the buckets are the store's (shared by every replica on
//! PostgreSQL, in process on SQLite). A limit of 0 is off.

use agentd_core::{Actor, RateDecision, RateLimitKind, RatePolicy, RequestOrigin};

use crate::Control;
use crate::auth::RunGrant;
use crate::error::{RateLimited, Result};

impl Control {
    /// Counts one unit against `subject`'s bucket of `kind` with `quota` per window;
    /// refused with [`RateLimited`] when the bucket is empty. `None`: the limit is off.
    pub(crate) async fn rate_take(
        &self,
        kind: RateLimitKind,
        quota: u32,
        subject: &str,
    ) -> Result<Option<RateDecision>> {
        if quota == 0 {
            return Ok(None);
        }
        let policy = RatePolicy::new(kind, quota);
        // The quota is part of the key: a changed limit (an operator's override) starts
        // from a full bucket at once instead of inheriting debt measured at the old rate.
        let key = format!("{}:{quota}:{subject}", kind.key_prefix());
        let decision = self.store.rate_limit_take_unscoped(&key, &policy).await?;
        if decision.allowed { Ok(Some(decision)) } else { Err(RateLimited { decision }.into()) }
    }

    /// One request of a credential: an API key, a session, or one attempt of a run
    /// (each attempt's token is a credential of its own).
    pub(crate) async fn rate_take_request(
        &self,
        actor: &Actor,
        session: Option<&agentd_core::SessionId>,
        run: Option<&RunGrant>,
        quota: u32,
    ) -> Result<Option<RateDecision>> {
        let subject = match (run, session, actor) {
            (Some(run), _, _) => format!("run:{}:{}", run.invocation_id, run.attempt),
            (None, Some(session), _) => format!("session:{session}"),
            (None, None, actor) => format!("actor:{}", actor.id_str()),
        };
        self.rate_take(RateLimitKind::RequestsPerSecond, quota, &subject).await
    }

    /// One signup attempt from the request's client address (none known: not limited).
    pub(crate) async fn rate_take_signup(&self, origin: &RequestOrigin) -> Result<()> {
        let Some(ip) = origin.client_ip else { return Ok(()) };
        let quota = self.settings.signups_per_hour_per_ip;
        self.rate_take(RateLimitKind::SignupsPerHour, quota, &ip.to_string()).await.map(drop)
    }

    /// One login attempt from the request's client address (none known: not limited).
    pub(crate) async fn rate_take_login(&self, origin: &RequestOrigin) -> Result<()> {
        let Some(ip) = origin.client_ip else { return Ok(()) };
        let quota = self.settings.logins_per_minute_per_ip;
        self.rate_take(RateLimitKind::LoginsPerMinute, quota, &ip.to_string()).await.map(drop)
    }

    /// Drops the buckets that are full again; a reconciler's pass.
    pub(crate) async fn sweep_rate_limits(&self) -> Result<u64> {
        Ok(self.store.rate_limits_sweep_unscoped().await?)
    }
}
