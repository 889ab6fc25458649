//! Worker processes' heartbeats, for operators (`GET /v1/admin/workers`): a claim or a
//! lease renewal records its process as seen, with the run slots it stated. A busy
//! worker claims and renews many times a second, so each server process writes a
//! worker's row at most once per [`RECORD_EVERY`]; what it remembers between writes is
//! only that throttle, and losing it (a restart) costs one write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agentd_store::{Store, WorkerSighting};

use crate::auth::WorkerCtx;

/// How often one worker process's heartbeat is written at most, per server process.
const RECORD_EVERY: Duration = Duration::from_secs(5);
/// Entries older than this are dropped from the throttle when it grows.
const THROTTLE_ENTRIES: usize = 4096;

#[derive(Default)]
pub(crate) struct WorkerPresence {
    last_written: Mutex<HashMap<String, (Instant, Option<u32>)>>,
}

impl WorkerPresence {
    /// Records that the process `name` of `worker` was seen now, unless it was recorded
    /// lately with the same slots. A failed write is logged and skipped: a heartbeat is
    /// for operators to look at, and must not fail the claim or renewal that carried it.
    pub(crate) async fn seen(&self, store: &Store, worker: &WorkerCtx, name: &str, slots: Option<u32>) {
        let lease_owner = worker.lease_owner(name);
        if !self.due(&lease_owner, slots) {
            return;
        }
        let sighting = WorkerSighting { lease_owner: &lease_owner, worker_token_id: worker.token_id(), name, slots };
        if let Err(err) = store.worker_seen_unscoped(&sighting).await {
            tracing::warn!(error = %err, lease_owner, "could not record a worker's heartbeat");
        }
    }

    /// Whether a write is due, noting it as made when it is.
    fn due(&self, lease_owner: &str, slots: Option<u32>) -> bool {
        let now = Instant::now();
        let Ok(mut last) = self.last_written.lock() else { return true };
        if let Some((at, known_slots)) = last.get(lease_owner)
            && now.duration_since(*at) < RECORD_EVERY
            && (slots.is_none() || slots == *known_slots)
        {
            return false;
        }
        if last.len() >= THROTTLE_ENTRIES {
            last.retain(|_, (at, _)| now.duration_since(*at) < RECORD_EVERY);
        }
        let slots = slots.or_else(|| last.get(lease_owner).and_then(|(_, s)| *s));
        last.insert(lease_owner.to_owned(), (now, slots));
        true
    }
}
