//! Notifications from the store to the worker and to waiting requests: an in-process
//! broadcast channel, fed on PostgreSQL by `LISTEN/NOTIFY` so that every replica hears
//! what any replica did.

use agentd_core::InvocationId;
use sqlx::AnyPool;
use tokio::sync::broadcast;

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
}

impl Signal {
    pub(crate) fn encode(&self) -> String {
        match self {
            Signal::InvocationQueued => "queued".to_owned(),
            Signal::InvocationChanged(id) => format!("changed:{id}"),
            Signal::CancelRequested(id) => format!("cancel:{id}"),
            Signal::EventsAppended(id) => format!("events:{id}"),
        }
    }

    fn decode(payload: &str) -> Option<Signal> {
        let id = |raw: &str| InvocationId::parse(raw).ok();
        match payload.split_once(':') {
            None if payload == "queued" => Some(Signal::InvocationQueued),
            Some(("changed", raw)) => id(raw).map(Signal::InvocationChanged),
            Some(("cancel", raw)) => id(raw).map(Signal::CancelRequested),
            Some(("events", raw)) => id(raw).map(Signal::EventsAppended),
            _ => None,
        }
    }
}

pub(crate) async fn notify(pool: &AnyPool, signal: &Signal) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(signal.encode()).execute(pool).await?;
    Ok(())
}

/// Relays notifications of the channel into `local` for as long as the process lives,
/// reconnecting after a dropped connection (sqlx's listener does that itself).
pub(crate) async fn listen_postgres(url: &str, local: broadcast::Sender<Signal>) -> Result<()> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(note) => {
                    if let Some(signal) = Signal::decode(note.payload()) {
                        let _ = local.send(signal);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = ?err, "LISTEN connection failed; reconnecting");
                    // A notification may have been missed: wake everyone to re-read.
                    let _ = local.send(Signal::InvocationQueued);
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
        ] {
            assert_eq!(Signal::decode(&signal.encode()), Some(signal));
        }
        assert_eq!(Signal::decode("nonsense"), None);
    }
}
