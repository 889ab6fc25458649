//! Persistence for agentd: migrations and one function per question the domain asks,
//! the invocation queue, and the content-addressed blob directory for bundles.
//!
//! Every method that touches tenant data takes a [`TenantCtx`](agentd_core::TenantCtx)
//! and filters on its tenant. Methods that are deliberately cross-tenant (the queue
//! claim, credential lookup before a tenant is known) say `unscoped` in their name.
//!
//! SQLite runs in WAL mode behind two pools: one connection for writes (SQLite has a
//! single writer; funnelling writes avoids lock-upgrade failures) and several for reads.

mod agents;
mod blobs;
mod credentials;
mod error;
mod events;
mod invocations;
mod migrate;
mod queue;
mod rows;
mod signals;
mod tenants;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use agents::{NewAgent, NewVersion};
pub use blobs::LocalBlobs;
pub use credentials::{Credential, NewApiKey, NewSession, hash_secret};
pub use error::StoreError;
pub use events::NewEvent;
pub use invocations::{InvocationFilter, NewInvocation};
pub use queue::{ClaimedRun, Completion, LeaseStatus, RetryPolicy};
pub use signals::Signal;
pub use tenants::NewSignup;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
    signals: tokio::sync::broadcast::Sender<Signal>,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and runs migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives any process crash; only an OS crash or power
            // loss can drop the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        migrate::run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(8).connect_with(options.read_only(true)).await?;
        let (signals, _) = tokio::sync::broadcast::channel(1024);
        Ok(Store { writer, reader, signals })
    }

    /// Wake-ups for the worker and for waiting requests; a missed message is never fatal
    /// because every waiter also re-reads the store on a bounded timer.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Signal> {
        self.signals.subscribe()
    }

    fn emit(&self, signal: Signal) {
        // No receiver is a normal state (no worker or waiter listening right now).
        let _ = self.signals.send(signal);
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// A trivial round trip, for readiness probes.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}
