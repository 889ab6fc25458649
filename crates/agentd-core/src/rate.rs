//! Rate limits as GCRA (the generic cell rate algorithm), the arithmetic only: the
//! store keeps one number per limited key (its *theoretical arrival time*, `tat`) and
//! applies [`RatePolicy::take`] to it, in process (SQLite) or in one SQL statement that
//! does the same sums (PostgreSQL); both then describe the outcome with
//! [`RatePolicy::decision`].
//!
//! A policy lets `quota` requests through per `window`: one every emission interval
//! `T = window / quota`, and up to `quota` at once (the burst is the whole quota, so a
//! bucket that has been idle for a window is full). A request at `now` is accepted when
//! `max(tat, now) + T - now <= quota × T`, and then moves `tat` to `max(tat, now) + T`;
//! a refused one leaves `tat` where it was. A `tat` in the past is the same as none, so
//! stale entries may be dropped at any time.

use std::time::Duration;

/// Which rate a decision is about; each answers `429` with its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitKind {
    /// Per credential (API key, session, run attempt), the tenant's `requests_per_second`.
    RequestsPerSecond,
    /// Per tenant, the tenant's `invocations_per_minute`.
    InvocationsPerMinute,
    /// Per client address, the platform's `--signups-per-hour-per-ip`.
    SignupsPerHour,
    /// Per client address, the platform's `--logins-per-minute-per-ip`.
    LoginsPerMinute,
}

impl RateLimitKind {
    /// The policy's name in `RateLimit-Policy` and the limit's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitKind::RequestsPerSecond => "requests_per_second",
            RateLimitKind::InvocationsPerMinute => "invocations_per_minute",
            RateLimitKind::SignupsPerHour => "signups_per_hour_per_ip",
            RateLimitKind::LoginsPerMinute => "logins_per_minute_per_ip",
        }
    }

    pub fn window(self) -> Duration {
        Duration::from_secs(match self {
            RateLimitKind::RequestsPerSecond => 1,
            RateLimitKind::InvocationsPerMinute | RateLimitKind::LoginsPerMinute => 60,
            RateLimitKind::SignupsPerHour => 3600,
        })
    }

    /// The prefix of the store's keys for this limit, so that two limits never share a bucket.
    pub fn key_prefix(self) -> &'static str {
        match self {
            RateLimitKind::RequestsPerSecond => "rps",
            RateLimitKind::InvocationsPerMinute => "ipm",
            RateLimitKind::SignupsPerHour => "signup_ip",
            RateLimitKind::LoginsPerMinute => "login_ip",
        }
    }
}

/// `quota` per the kind's window, burst `quota`. A quota of 0 means no limit: callers
/// do not ask the store at all then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    pub kind: RateLimitKind,
    pub quota: u32,
}

/// What the store's arithmetic produced for one request: the stored `tat` afterwards
/// (microseconds on the store's clock), the clock's `now`, and whether it refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateOutcome {
    pub now_us: i64,
    pub tat_us: i64,
    pub refused: bool,
}

/// One request's verdict, with what the `RateLimit` headers and `Retry-After` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub policy: RatePolicy,
    pub allowed: bool,
    /// Requests that would be accepted right now, after this one.
    pub remaining: u32,
    /// Until the bucket is full again (nothing used).
    pub reset: Duration,
    /// Until the next request can be accepted; zero when this one was.
    pub retry_after: Duration,
}

impl RateDecision {
    /// `Retry-After`: whole seconds, rounded up, at least 1.
    pub fn retry_after_s(&self) -> u64 {
        ceil_s(self.retry_after).max(1)
    }

    /// Seconds until the bucket is full, rounded up.
    pub fn reset_s(&self) -> u64 {
        ceil_s(self.reset)
    }
}

fn ceil_s(d: Duration) -> u64 {
    d.as_micros().div_ceil(1_000_000).try_into().unwrap_or(u64::MAX)
}

impl RatePolicy {
    pub fn new(kind: RateLimitKind, quota: u32) -> RatePolicy {
        RatePolicy { kind, quota }
    }

    /// `T`: microseconds between two requests at the sustained rate (at least 1).
    pub fn emission_interval_us(&self) -> i64 {
        let window = i64::try_from(self.kind.window().as_micros()).unwrap_or(i64::MAX);
        (window / i64::from(self.quota.max(1))).max(1)
    }

    /// `quota × T`: how far ahead of `now` the `tat` may run.
    pub fn tolerance_us(&self) -> i64 {
        self.emission_interval_us().saturating_mul(i64::from(self.quota.max(1)))
    }

    /// GCRA for one request at `now_us` against the stored `tat` (none: a full bucket).
    pub fn take(&self, stored_tat_us: Option<i64>, now_us: i64) -> RateOutcome {
        let base = stored_tat_us.unwrap_or(now_us).max(now_us);
        let candidate = base.saturating_add(self.emission_interval_us());
        if candidate - now_us > self.tolerance_us() {
            RateOutcome { now_us, tat_us: base, refused: true }
        } else {
            RateOutcome { now_us, tat_us: candidate, refused: false }
        }
    }

    /// What `outcome` means for the caller.
    pub fn decision(&self, outcome: RateOutcome) -> RateDecision {
        let t = self.emission_interval_us();
        let ahead = (outcome.tat_us - outcome.now_us).max(0);
        let us = |v: i64| Duration::from_micros(v.max(0).unsigned_abs());
        if outcome.refused {
            // The next request fits once `tat + T - now` has shrunk to the tolerance.
            let retry = ahead + t - self.tolerance_us();
            return RateDecision {
                policy: *self,
                allowed: false,
                remaining: 0,
                reset: us(ahead),
                retry_after: us(retry),
            };
        }
        let free = (self.tolerance_us() - ahead) / t;
        RateDecision {
            policy: *self,
            allowed: true,
            remaining: u32::try_from(free.max(0)).unwrap_or(u32::MAX).min(self.quota),
            reset: us(ahead),
            retry_after: Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: RatePolicy, times_ms: &[i64]) -> Vec<bool> {
        let mut tat = None;
        times_ms
            .iter()
            .map(|ms| {
                let outcome = policy.take(tat, ms * 1000);
                tat = Some(outcome.tat_us);
                !outcome.refused
            })
            .collect()
    }

    #[test]
    fn a_full_bucket_lets_the_whole_quota_through_at_once_then_one_per_interval() {
        let policy = RatePolicy::new(RateLimitKind::RequestsPerSecond, 4);
        assert_eq!(run(policy, &[0, 0, 0, 0, 0]), [true, true, true, true, false]);
        // 250 ms later exactly one more fits.
        assert_eq!(run(policy, &[0, 0, 0, 0, 250, 250]), [true, true, true, true, true, false]);
        // After a whole idle window the bucket is full again.
        assert_eq!(
            run(policy, &[0, 0, 0, 0, 1000, 1000, 1000, 1000, 1000]),
            [true, true, true, true, true, true, true, true, false]
        );
    }

    #[test]
    fn decisions_say_how_many_are_left_and_when_to_retry() {
        let policy = RatePolicy::new(RateLimitKind::InvocationsPerMinute, 3);
        let first = policy.decision(policy.take(None, 0));
        assert_eq!((first.allowed, first.remaining, first.reset_s()), (true, 2, 20));
        let mut tat = None;
        for _ in 0..3 {
            tat = Some(policy.take(tat, 0).tat_us);
        }
        let refused = policy.decision(policy.take(tat, 5_000_000));
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        // One unit comes back every 20 s; 5 s have passed.
        assert_eq!(refused.retry_after, Duration::from_secs(15));
        assert_eq!(refused.retry_after_s(), 15);
        assert_eq!(refused.reset_s(), 55);
    }

    #[test]
    fn retry_after_is_at_least_one_second_and_rounds_up() {
        let policy = RatePolicy::new(RateLimitKind::RequestsPerSecond, 1000);
        let mut tat = None;
        for _ in 0..1000 {
            tat = Some(policy.take(tat, 0).tat_us);
        }
        let refused = policy.decision(policy.take(tat, 0));
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_millis(1));
        assert_eq!(refused.retry_after_s(), 1);
    }
}
