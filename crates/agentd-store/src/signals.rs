//! Notifications from the store to whoever waits on it: workers waiting for work,
//! requests waiting for an invocation to settle, event streams following one, workers
//! watching for a cancel.
//!
//! Waiters subscribe to what they wait for: the queue as a whole, or one invocation.
//! Each subscription is a `watch` channel of change counters, so a waiter is woken only
//! by its own invocation's changes and can never lag behind (a burst of changes is one
//! wake-up), however many streams are open. An invocation's channel exists while
//! someone subscribes to it and goes away with its last subscriber.
//!
//! On SQLite the store delivers its own signals in process. On PostgreSQL every change is
//! a `NOTIFY`, and every replica's `LISTEN` connection delivers it locally, so a waiter
//! on one replica hears what another did. A missed signal is never fatal: every waiter
//! also re-reads the store on a bounded timer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use agentd_core::InvocationId;
use sqlx::AnyPool;
use tokio::sync::watch;

use crate::Result;

pub(crate) const CHANNEL: &str = "agentd_signals";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A new run is ready to be claimed.
    InvocationQueued,
    /// An invocation changed status (started, finished, cancelled, requeued).
    InvocationChanged(InvocationId),
    /// A cancel was requested for a running invocation.
    CancelRequested(InvocationId),
    /// New events were appended to an invocation.
    EventsAppended(InvocationId),
    /// A dependency build was created, claimed, logged to or finished.
    BuildsChanged,
}

impl Signal {
    pub(crate) fn encode(&self) -> String {
        match self {
            Signal::InvocationQueued => "queued".to_owned(),
            Signal::InvocationChanged(id) => format!("changed:{id}"),
            Signal::CancelRequested(id) => format!("cancel:{id}"),
            Signal::EventsAppended(id) => format!("events:{id}"),
            Signal::BuildsChanged => "builds".to_owned(),
        }
    }

    fn decode(payload: &str) -> Option<Signal> {
        let id = |raw: &str| InvocationId::parse(raw).ok();
        match payload.split_once(':') {
            None if payload == "queued" => Some(Signal::InvocationQueued),
            None if payload == "builds" => Some(Signal::BuildsChanged),
            Some(("changed", raw)) => id(raw).map(Signal::InvocationChanged),
            Some(("cancel", raw)) => id(raw).map(Signal::CancelRequested),
            Some(("events", raw)) => id(raw).map(Signal::EventsAppended),
            _ => None,
        }
    }
}

/// How often each kind of change has happened to one invocation since its first
/// subscriber came; a waiter compares counters to see what changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub status: u64,
    pub events: u64,
    pub cancels: u64,
}

/// The subscriptions of one process.
#[derive(Clone)]
pub(crate) struct Signals {
    hub: Arc<Hub>,
}

struct Hub {
    invocations: Mutex<HashMap<InvocationId, watch::Sender<Changes>>>,
    /// Bumped when a run may have become claimable: queued, retried, released, or a
    /// running one ended and freed its tenant's concurrency slot.
    queue: watch::Sender<u64>,
    /// Bumped on every change to any build: they are few, and their waiters few too.
    builds: watch::Sender<u64>,
}

impl Hub {
    fn invocations(&self) -> std::sync::MutexGuard<'_, HashMap<InvocationId, watch::Sender<Changes>>> {
        // The map holds no invariant a panicking holder could have broken halfway.
        self.invocations.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self, id: &InvocationId, change: impl FnOnce(&mut Changes)) {
        if let Some(sender) = self.invocations().get(id) {
            sender.send_modify(change);
        }
    }
}

impl Signals {
    pub(crate) fn new() -> Signals {
        let (queue, _) = watch::channel(0);
        let (builds, _) = watch::channel(0);
        Signals { hub: Arc::new(Hub { invocations: Mutex::new(HashMap::new()), queue, builds }) }
    }

    /// Wakes the subscribers `signal` concerns.
    pub(crate) fn deliver(&self, signal: &Signal) {
        match signal {
            Signal::InvocationQueued => self.hub.queue.send_modify(|n| *n += 1),
            Signal::InvocationChanged(id) => {
                self.hub.bump(id, |c| c.status += 1);
                self.hub.queue.send_modify(|n| *n += 1);
            }
            Signal::CancelRequested(id) => self.hub.bump(id, |c| c.cancels += 1),
            Signal::EventsAppended(id) => self.hub.bump(id, |c| c.events += 1),
            Signal::BuildsChanged => self.hub.builds.send_modify(|n| *n += 1),
        }
    }

    /// After signals may have been missed (a dropped `LISTEN` connection): every waiter
    /// re-reads.
    pub(crate) fn wake_all(&self) {
        for sender in self.hub.invocations().values() {
            sender.send_modify(|c| c.status += 1);
        }
        self.hub.queue.send_modify(|n| *n += 1);
        self.hub.builds.send_modify(|n| *n += 1);
    }

    pub(crate) fn invocation(&self, id: &InvocationId) -> Subscription<Changes> {
        let rx = self
            .hub
            .invocations()
            .entry(id.clone())
            .or_insert_with(|| watch::channel(Changes::default()).0)
            .subscribe();
        Subscription { rx, _release: Some(Release { hub: self.hub.clone(), id: id.clone() }) }
    }

    pub(crate) fn queue(&self) -> Subscription<u64> {
        Subscription { rx: self.hub.queue.subscribe(), _release: None }
    }

    pub(crate) fn builds(&self) -> Subscription<u64> {
        Subscription { rx: self.hub.builds.subscribe(), _release: None }
    }
}

/// Changes to one thing, from the moment of subscribing: subscribe first, then read the
/// store, then wait, and no change can slip between the read and the wait.
pub struct Subscription<T> {
    rx: watch::Receiver<T>,
    // Declared after `rx`, so it runs once `rx` is gone and can see whether it was the last.
    _release: Option<Release>,
}

impl<T: Clone> Subscription<T> {
    /// Waits for a change not seen yet. Never returns once the store is gone (the
    /// caller's own timer ends the wait then).
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The counters as of the last change seen.
    pub fn latest(&self) -> T {
        self.rx.borrow().clone()
    }
}

/// Removes an invocation's channel with its last subscriber.
struct Release {
    hub: Arc<Hub>,
    id: InvocationId,
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut invocations = self.hub.invocations();
        if invocations.get(&self.id).is_some_and(|s| s.receiver_count() == 0) {
            invocations.remove(&self.id);
        }
    }
}

pub(crate) async fn notify(pool: &AnyPool, signal: &Signal) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(signal.encode()).execute(pool).await?;
    Ok(())
}

/// Relays notifications of the channel to `local` for as long as the process lives,
/// reconnecting after a dropped connection (sqlx's listener does that itself).
pub(crate) async fn listen_postgres(url: &str, local: Signals) -> Result<()> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(note) => {
                    if let Some(signal) = Signal::decode(note.payload()) {
                        local.deliver(&signal);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = ?err, "LISTEN connection failed; reconnecting");
                    local.wake_all();
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_round_trip_through_their_payload() {
        let id = InvocationId::generate();
        for signal in [
            Signal::InvocationQueued,
            Signal::InvocationChanged(id.clone()),
            Signal::CancelRequested(id.clone()),
            Signal::EventsAppended(id),
            Signal::BuildsChanged,
        ] {
            assert_eq!(Signal::decode(&signal.encode()), Some(signal));
        }
        assert_eq!(Signal::decode("nonsense"), None);
    }

    #[tokio::test]
    async fn a_subscriber_hears_only_its_own_invocation_and_its_channel_goes_with_it() {
        let signals = Signals::new();
        let mine = InvocationId::generate();
        let mut sub = signals.invocation(&mine);
        signals.deliver(&Signal::EventsAppended(InvocationId::generate()));
        assert!(!sub.rx.has_changed().unwrap_or(true), "another invocation's change woke it");
        signals.deliver(&Signal::EventsAppended(mine.clone()));
        sub.changed().await;
        assert_eq!(sub.latest(), Changes { events: 1, ..Changes::default() });
        let second = signals.invocation(&mine);
        drop(sub);
        assert_eq!(signals.hub.invocations().len(), 1, "a subscriber remains");
        drop(second);
        assert!(signals.hub.invocations().is_empty(), "the last subscriber took the channel with it");
    }
}
