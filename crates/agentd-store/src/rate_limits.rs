//! The state behind rate limits: one GCRA `tat` per limited key (see
//! [`agentd_core::rate`]). On PostgreSQL it lives in the UNLOGGED `rate_limits` table
//! (migration 0020) and one statement per request reads, decides and writes it on the
//! database's clock, so every replica shares the buckets and clock skew between
//! replicas does not matter. On SQLite, whose store belongs to one process by
//! construction, it lives in this process: a map behind a mutex, no write per request.
//!
//! Keys are cross-tenant by nature (a credential, a tenant, a client address), so the
//! methods are `unscoped`; the domain builds the keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use agentd_core::{RateDecision, RateOutcome, RatePolicy};
use sqlx::Row;

use crate::{Backend, Result, Store};

/// Beyond this many keys in process, the passed ones are dropped before adding another.
const MAX_KEYS_IN_PROCESS: usize = 100_000;

/// One statement: insert a full bucket's first request, or apply GCRA to the stored
/// `tat`. `now` is taken once, from the database's clock, and reaches the update
/// through `EXCLUDED.touched_us`. Every `SET` expression reads the row as it was, so
/// `refused` and `tat_us` see the same old `tat`. A refused request keeps its `tat`.
/// $2 is the emission interval, $3 the tolerance (both µs).
const TAKE_POSTGRES: &str = "
INSERT INTO rate_limits AS r (key, tat_us, touched_us, refused)
SELECT $1, c.now_us + $2, c.now_us, false
FROM (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us) c
ON CONFLICT (key) DO UPDATE SET
    refused = GREATEST(r.tat_us, EXCLUDED.touched_us) + $2 - EXCLUDED.touched_us > $3,
    tat_us = CASE WHEN GREATEST(r.tat_us, EXCLUDED.touched_us) + $2 - EXCLUDED.touched_us > $3
        THEN r.tat_us ELSE GREATEST(r.tat_us, EXCLUDED.touched_us) + $2 END,
    touched_us = EXCLUDED.touched_us
RETURNING tat_us, touched_us AS now_us, CASE WHEN refused THEN 1 ELSE 0 END::bigint AS refused";

/// The buckets of a SQLite store, on this process's monotonic clock.
#[derive(Clone)]
pub(crate) struct InProcessBuckets {
    started: Instant,
    tats: Arc<Mutex<HashMap<String, i64>>>,
}

impl InProcessBuckets {
    pub(crate) fn new() -> InProcessBuckets {
        InProcessBuckets { started: Instant::now(), tats: Arc::default() }
    }

    fn now_us(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX)
    }

    fn take(&self, key: &str, policy: &RatePolicy) -> RateOutcome {
        self.take_at(key, policy, self.now_us())
    }

    fn take_at(&self, key: &str, policy: &RatePolicy, now: i64) -> RateOutcome {
        // A poisoned lock only means another request panicked mid-update of one number.
        let mut tats = self.tats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let outcome = policy.take(tats.get(key).copied(), now);
        if !outcome.refused {
            if tats.len() >= MAX_KEYS_IN_PROCESS && !tats.contains_key(key) {
                tats.retain(|_, tat| *tat > now);
            }
            tats.insert(key.to_owned(), outcome.tat_us);
        }
        outcome
    }

    fn sweep(&self) -> u64 {
        self.sweep_at(self.now_us())
    }

    fn sweep_at(&self, now: i64) -> u64 {
        let mut tats = self.tats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = tats.len();
        tats.retain(|_, tat| *tat > now);
        (before - tats.len()) as u64
    }
}

impl Store {
    /// Counts one request against `key` under `policy` and says whether it may go on.
    pub async fn rate_limit_take_unscoped(&self, key: &str, policy: &RatePolicy) -> Result<RateDecision> {
        let outcome = match self.backend {
            Backend::Sqlite => self.buckets.take(key, policy),
            Backend::Postgres => {
                let row = sqlx::query(TAKE_POSTGRES)
                    .bind(key)
                    .bind(policy.emission_interval_us())
                    .bind(policy.tolerance_us())
                    .fetch_one(&self.writer)
                    .await?;
                let refused: i64 = row.try_get("refused")?;
                RateOutcome { now_us: row.try_get("now_us")?, tat_us: row.try_get("tat_us")?, refused: refused != 0 }
            }
        };
        Ok(policy.decision(outcome))
    }

    /// Forgets every key whose bucket is full again (its `tat` has passed): the same as
    /// no entry. Returns how many went.
    pub async fn rate_limits_sweep_unscoped(&self) -> Result<u64> {
        match self.backend {
            Backend::Sqlite => Ok(self.buckets.sweep()),
            Backend::Postgres => {
                let done = sqlx::query(
                    "DELETE FROM rate_limits WHERE tat_us < (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
                )
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use agentd_core::RateLimitKind;

    use super::*;

    #[test]
    fn in_process_buckets_refuse_past_the_quota_and_sweep_only_full_ones() {
        let buckets = InProcessBuckets::new();
        let hourly = RatePolicy::new(RateLimitKind::SignupsPerHour, 2);
        assert!(!buckets.take_at("a", &hourly, 0).refused);
        assert!(!buckets.take_at("a", &hourly, 0).refused);
        assert!(buckets.take_at("a", &hourly, 1_000_000).refused, "the third within the hour");
        assert!(!buckets.take_at("b", &hourly, 1_000_000).refused, "another key has its own bucket");
        // Both buckets are still owed time: nothing is full again yet.
        assert_eq!(buckets.sweep_at(2_000_000), 0);
        let fast = RatePolicy::new(RateLimitKind::RequestsPerSecond, 1_000_000);
        assert!(!buckets.take_at("c", &fast, 2_000_000).refused);
        assert_eq!(buckets.sweep_at(2_000_002), 1, "only the bucket whose tat has passed goes");
    }
}
