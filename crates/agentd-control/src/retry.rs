//! The one place that decides what runs again: an agent's failure is retried with
//! exponential backoff while the invocation's `max_attempts` allow; a platform's failure
//! (a lost worker, a sandbox that would not start) runs again at once as a new attempt,
//! up to `max_recoveries`, without consuming `max_attempts`. The store applies the plan
//! in the statement that ends the attempt, reading the attempts used from the row.

use std::time::Duration;

use agentd_core::Timestamp;
use agentd_store::RetryPlan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry's delay; each next one doubles it.
    pub base: Duration,
    /// The longest delay between retries.
    pub max: Duration,
    /// How often one invocation may be run again because the platform failed it.
    pub max_recoveries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_secs(1), max: Duration::from_secs(300), max_recoveries: 3 }
    }
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1`: base·2^(attempt-1), capped, with up to 50 %
    /// random jitter added so that retries of many runs do not arrive together.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max);
        let jitter = capped.mul_f64(rand::random::<f64>() / 2.0);
        capped + jitter
    }

    /// What the store applies when attempt `attempt` ends.
    pub(crate) fn plan(&self, attempt: u32) -> RetryPlan {
        let delay = self.delay_after(attempt);
        let retry_at = Timestamp::now().plus_ms(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        RetryPlan { retry_at, max_recoveries: self.max_recoveries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy { base: Duration::from_secs(1), max: Duration::from_secs(10), max_recoveries: 3 };
        let first = policy.delay_after(1);
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_millis(1500), "{first:?}");
        let third = policy.delay_after(3);
        assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(6), "{third:?}");
        assert!(policy.delay_after(30) <= Duration::from_secs(15));
    }
}
