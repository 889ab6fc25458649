//! The events of one run: numbered, buffered between flushes, and written through the
//! run source. Every write about a run is retried a few times with growing pauses, so
//! that a hiccup of the store or the network costs a delay, never a line; a write that
//! still fails is reported, and the run ends failed instead of succeeding with holes in
//! its log. A batch written twice (a reply lost after the commit) changes nothing: the
//! store keeps an event's `seq` once.

use std::future::Future;
use std::time::Duration;

use agentd_core::queue::{ClaimedRun, NewEvent};
use agentd_core::{EventKind, EventStream, InvocationStatus, Timestamp};
use serde_json::Value;

use crate::redact::Redactor;
use crate::{Shared, SourceError};

/// Pauses between the tries of one write; one more try than pauses.
const RETRY_PAUSES: [Duration; 3] = [Duration::from_millis(250), Duration::from_secs(1), Duration::from_secs(2)];

/// Runs `write` until it answers, or until every try failed (the last error is returned).
pub(crate) async fn with_retries<T, F, Fut>(what: &str, mut write: F) -> Result<T, SourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SourceError>>,
{
    let mut pauses = RETRY_PAUSES.iter();
    loop {
        match write().await {
            Ok(done) => return Ok(done),
            Err(err) if err.is_storage_full() => return Err(err),
            Err(err) => match pauses.next() {
                Some(pause) => {
                    tracing::warn!(error = %err, write = what, "a write about the run failed; trying again");
                    tokio::time::sleep(*pause).await;
                }
                None => return Err(err),
            },
        }
    }
}

/// What a flush found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flushed {
    Recorded,
    /// The run is no longer ours; nothing more may be written about it.
    LeaseLost,
}

/// Events that could not be recorded after every try.
#[derive(Debug, thiserror::Error)]
#[error("the platform could not record the run's events ({0})")]
pub(crate) struct Unrecorded(pub(crate) String);

/// Numbers events of one invocation, redacts the run's secrets from them, and buffers
/// them until the next flush.
pub(crate) struct EventLog {
    next_seq: u64,
    pending: Vec<NewEvent>,
    redactor: Redactor,
}

impl EventLog {
    pub(crate) fn new(run: &ClaimedRun) -> EventLog {
        EventLog { next_seq: run.next_seq, pending: Vec::new(), redactor: Redactor::new(&run.secrets) }
    }

    /// What keeps this run's secrets out of its records (events pass it in `push`).
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub(crate) fn push(
        &mut self,
        kind: EventKind,
        stream: EventStream,
        level: Option<String>,
        message: Option<String>,
        data: Option<Value>,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (level, message) = (self.redactor.optional_text(level), self.redactor.optional_text(message));
        let data = data.map(|data| self.redactor.json(data));
        self.pending.push(NewEvent { seq, ts: Timestamp::now(), kind, stream, level, message, data });
    }

    pub(crate) fn status(&mut self, status: InvocationStatus, message: String) {
        let data = serde_json::json!({ "status": status.as_str() });
        self.push(EventKind::Status, EventStream::System, Some("info".into()), Some(message), Some(data));
    }

    /// Writes the buffered events. On failure they stay buffered (a later flush writes
    /// them with the same numbers).
    pub(crate) async fn flush(&mut self, shared: &Shared, run: &ClaimedRun) -> Result<Flushed, Unrecorded> {
        if self.pending.is_empty() {
            return Ok(Flushed::Recorded);
        }
        let lease = run.lease();
        let written = with_retries("events", || shared.source.append_events(&lease, &self.pending)).await;
        match written {
            Ok(applied) => {
                self.pending.clear();
                Ok(if applied { Flushed::Recorded } else { Flushed::LeaseLost })
            }
            Err(err) => {
                tracing::error!(error = %err, unrecorded = self.pending.len(), "the run's events could not be recorded");
                Err(Unrecorded(err.to_string()))
            }
        }
    }
}
