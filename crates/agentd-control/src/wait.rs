//! The one way anything in agentd waits for the store: subscribe, re-read, and wait for
//! a signal or a bounded timer, until the re-read finds what it waits for.
//!
//! Subscribing comes first, so a change between a read and the wait still wakes it; the
//! timer bounds the cost of a signal that never comes (a dropped `LISTEN` connection).
//! Requests waiting for an invocation to settle, event streams and claiming workers all
//! go through [`until`].

use std::future::Future;
use std::time::Duration;

use agentd_store::Subscription;
use tokio::time::Instant;

use crate::error::Result;

/// The longest anything sleeps without re-reading the store.
pub(crate) const BACKSTOP: Duration = Duration::from_secs(1);

/// What one re-read found.
pub(crate) enum Step<T> {
    /// What the waiter waits for.
    Ready(T),
    /// Not yet; re-read on the next change, or after `at_most` (bounded by the backstop)
    /// when something is due by then without a signal (a retry coming due).
    Wait { at_most: Option<Duration> },
}

impl<T> Step<T> {
    pub(crate) const PENDING: Step<T> = Step::Wait { at_most: None };
}

/// Re-reads with `read` until it is ready or `deadline` passes (`None` if it passed),
/// woken by `changes`. `changes` must have been subscribed before the first read.
pub(crate) async fn until<T, S, F, Fut>(
    changes: &mut Subscription<S>,
    deadline: Option<Instant>,
    backstop: Duration,
    mut read: F,
) -> Result<Option<T>>
where
    S: Clone,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Step<T>>>,
{
    loop {
        let at_most = match read().await? {
            Step::Ready(found) => return Ok(Some(found)),
            Step::Wait { at_most } => at_most.map_or(backstop, |d| d.min(backstop)),
        };
        let now = Instant::now();
        let wake_at = match deadline {
            Some(deadline) if now >= deadline => return Ok(None),
            Some(deadline) => deadline.min(now + at_most),
            None => now + at_most,
        };
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(wake_at) => {}
        }
    }
}
