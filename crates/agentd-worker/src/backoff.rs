//! Waiting out a run source that keeps failing (a server down, a network gone): the wait
//! doubles from one second up to half a minute, and the cause is logged when it changes
//! and when it clears, not once per attempt.

use std::time::Duration;

use crate::source::SourceError;

const FIRST: Duration = Duration::from_secs(1);
const MOST: Duration = Duration::from_secs(30);

pub(crate) struct Backoff {
    /// What is being retried, for the log (`claiming work`).
    what: &'static str,
    failures: u32,
    cause: Option<String>,
}

impl Backoff {
    pub(crate) fn new(what: &'static str) -> Backoff {
        Backoff { what, failures: 0, cause: None }
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub(crate) fn failed(&mut self, err: &SourceError) -> Duration {
        let cause = with_sources(err);
        if self.cause.as_deref() != Some(cause.as_str()) {
            tracing::error!(what = self.what, error = %cause, "failed; retrying with backoff (said again only if the cause changes)");
            self.cause = Some(cause);
        }
        let wait = FIRST.saturating_mul(1 << self.failures.min(5)).min(MOST);
        self.failures = self.failures.saturating_add(1);
        wait
    }

    /// Records a success: a failure before it is reported as over.
    pub(crate) fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(what = self.what, failures = self.failures, "works again");
        }
        self.failures = 0;
        self.cause = None;
    }
}

/// `outer: inner: innermost`, so that "request failed" says why (connection refused, …).
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_half_a_minute_and_resets() {
        let err = SourceError::Remote(agentd_client::ClientError::StreamClosed);
        let mut backoff = Backoff::new("claiming work");
        let waits: Vec<u64> = (0..8).map(|_| backoff.failed(&err).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        backoff.succeeded();
        assert_eq!(backoff.failed(&err), FIRST);
    }
}
