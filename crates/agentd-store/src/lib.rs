//! Persistence for agentd: migrations and one function per question the domain asks,
//! the invocation queue, the tenants' memory stores, and the content-addressed blob
//! directory for bundles.
//!
//! Every method that touches tenant data takes a [`TenantScope`](agentd_core::TenantScope)
//! and filters on its tenant. Methods that are deliberately cross-tenant (the queue
//! claim, credential lookup before a tenant is known) say `unscoped` in their name.
//! On PostgreSQL the tenant-scoped ones also run inside `Store::begin_scoped`, under a
//! role that row-level security confines to the caller's tenant, so a forgotten filter
//! returns nothing instead of another tenant's rows.
//!
//! One code path serves both engines through sqlx's `Any` driver: the SQL is portable
//! (`$N` parameters, `RETURNING`, integers as BIGINT) except where a statement says
//! otherwise per [`Backend`]. SQLite runs in WAL mode behind one writer connection (it
//! has a single writer; funnelling writes avoids lock-upgrade failures) and a reader
//! pool. PostgreSQL uses one pool, `FOR UPDATE SKIP LOCKED` claims and `LISTEN/NOTIFY`.

mod agents;
mod artifacts;
mod audit;
mod blob_collection;
mod blobs;
mod builds;
mod credentials;
mod error;
mod events;
mod interrupts;
mod invites;
mod invocations;
mod members;
mod memory;
mod migrate;
mod operators;
mod queue;
mod rate_limits;
mod rows;
mod schedules;
mod secrets;
mod signals;
mod tenants;
mod threads;
mod triggers;
mod usage;
mod webhooks;
mod workers;

use std::path::Path;
use std::time::Duration;

use agentd_core::{InvocationId, TenantLimits, TenantScope};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use agents::{AgentPatch, NewAgent, NewVersion};
pub use artifacts::NewArtifact;
pub use audit::AuditFilter;
pub use blob_collection::BlobsCollected;
pub use blobs::{BlobLocation, Blobs, S3Connection, StoredBlob, digest_of};
pub use builds::{BuildClaim, NewBuild};
pub use credentials::{Credential, Membership, NewApiKey, NewSession, RunCredential, UserWithPassword, hash_secret};
pub use error::{Conflict, StoreError};
pub use events::NewEvent;
pub use invites::{Accepted as InviteAccepted, FoundInvite, Invitee, NewInvite, NewTenant, OPERATOR};
pub use invocations::{Enqueued, InvocationFilter, NewInvocation, ParentRun};
pub use members::MemberRemoved;
pub use memory::{MemoryPut, MemorySearch, MemoryWrite, NamespaceListing, memory_item_size};
pub use queue::{ClaimedRun, Completion, LeaseStatus, RetryPlan, RunLease, RunOutputSchemas};
pub use schedules::{DueSchedule, OccurrenceOutcome, PendingOccurrence, ScheduleFields, ScheduledRun};
pub use secrets::{SealedSecret, SecretCursor, SecretWritten, StoredSecret};
pub use signals::{Changes, Signal, Subscription};
pub use tenants::{NewSignup, SignedUp, TenantLimitsRecord, TenantUsageCounts};
pub use threads::{ThreadFilter, ThreadRun};
pub use triggers::{FoundTrigger, NewTrigger, StoredTriggerSecret};
pub use webhooks::{
    AttemptNext, AttemptRecord, AttemptRecorded, ClaimedDelivery, NewWebhook, StoredWebhookSecret, WebhookPatch,
    WebhookSecretRow,
};
pub use workers::WorkerSighting;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    writer: AnyPool,
    reader: AnyPool,
    signals: signals::Signals,
    /// The platform's default limits, which each tenant's overrides overlay wherever a
    /// tenant is read (and in the claim's concurrency limit). The domain sets them from
    /// the operator's settings; until then they are the built-in ones.
    default_limits: std::sync::Arc<TenantLimits>,
    /// Rate-limit buckets on SQLite (PostgreSQL keeps them in a table).
    buckets: rate_limits::InProcessBuckets,
}

type PragmaFuture<'c> = std::pin::Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// Creates `path` empty with mode 0600 if it does not exist, so that SQLite (which keeps
/// the mode of the database for its `-wal` and `-shm` files) never makes it world-readable.
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::File { path: path.display().to_string(), source }),
    }
}

/// Per-connection SQLite settings. NORMAL synchronous in WAL mode survives any process
/// crash; only an OS crash or power loss can drop the last commits.
fn sqlite_pragmas(conn: &mut sqlx::AnyConnection, _: sqlx::pool::PoolConnectionMetadata) -> PragmaFuture<'_> {
    Box::pin(async move {
        conn.execute(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
        )
        .await
        .map(drop)
    })
}

/// Whether opening a store applies the migrations it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Applies them (the default: one binary upgrades its own database).
    Apply,
    /// Leaves the schema alone, for deployments that migrate as a step of their own
    /// (`agentd migrate`); [`Store::migrations_pending`] says what is missing.
    Leave,
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `postgres://…`), creating a
    /// SQLite file if needed, and runs migrations.
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, Migrations::Apply).await
    }

    /// Opens the database at `url`, applying migrations or not.
    pub async fn open_with(url: &str, migrations: Migrations) -> Result<Store> {
        match url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Some(path) => Store::open_sqlite_with(Path::new(path), migrations).await,
            None if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Store::open_postgres(url, migrations).await
            }
            None => Err(StoreError::Config(format!(
                "unsupported database URL `{url}`; use sqlite://PATH or postgres://USER@HOST/DB"
            ))),
        }
    }

    /// Opens (creating if needed) the SQLite database at `path` and runs migrations. A
    /// new database file is readable by its owner only: it holds every tenant's data.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        Store::open_sqlite_with(path, Migrations::Apply).await
    }

    async fn open_sqlite_with(path: &Path, migrations: Migrations) -> Result<Store> {
        install_default_drivers();
        create_private_file(path)?;
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let writer = AnyPoolOptions::new().max_connections(1).after_connect(sqlite_pragmas).connect(&url).await?;
        if migrations == Migrations::Apply {
            migrate::run(&writer, Backend::Sqlite).await?;
        }
        let read_url = format!("sqlite://{}?mode=ro", path.display());
        let reader = AnyPoolOptions::new().max_connections(8).after_connect(sqlite_pragmas).connect(&read_url).await?;
        Ok(Store::assemble(Backend::Sqlite, writer, reader))
    }

    async fn open_postgres(url: &str, migrations: Migrations) -> Result<Store> {
        install_default_drivers();
        let pool =
            AnyPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        if migrations == Migrations::Apply {
            migrate::run(&pool, Backend::Postgres).await?;
        }
        let store = Store::assemble(Backend::Postgres, pool.clone(), pool);
        signals::listen_postgres(url, store.signals.clone()).await?;
        Ok(store)
    }

    fn assemble(backend: Backend, writer: AnyPool, reader: AnyPool) -> Store {
        Store {
            backend,
            writer,
            reader,
            signals: signals::Signals::new(),
            default_limits: Default::default(),
            buckets: rate_limits::InProcessBuckets::new(),
        }
    }

    /// This store with `defaults` as the platform's default limits.
    pub fn with_default_limits(mut self, defaults: TenantLimits) -> Store {
        self.default_limits = std::sync::Arc::new(defaults);
        self
    }

    pub fn default_limits(&self) -> &TenantLimits {
        &self.default_limits
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Changes to one invocation (status, events, cancel requests) from now on, in this
    /// process and (on PostgreSQL) in every other replica.
    pub fn subscribe_invocation(&self, id: &InvocationId) -> Subscription<Changes> {
        self.signals.invocation(id)
    }

    /// Wake-ups for claimers: a run may have become claimable.
    pub fn subscribe_queue(&self) -> Subscription<u64> {
        self.signals.queue()
    }

    /// Wake-ups for anyone waiting on a dependency build.
    pub fn subscribe_builds(&self) -> Subscription<u64> {
        self.signals.builds()
    }

    /// Tells every waiter, in this process and (on PostgreSQL) in every other replica.
    async fn emit(&self, signal: Signal) {
        match self.backend {
            Backend::Sqlite => self.signals.deliver(&signal),
            Backend::Postgres => {
                // Delivered back to this process too, through its own LISTEN.
                if let Err(err) = signals::notify(&self.writer, &signal).await {
                    tracing::warn!(error = ?err, "NOTIFY failed; waiters fall back to re-reading");
                }
            }
        }
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// A transaction on the writer confined to `ctx`'s tenant. On PostgreSQL it runs as
    /// the `agentd_tenant` role with `agentd.tenant_id` set (both until it ends), so
    /// row-level security hides and refuses every other tenant's rows; see migration
    /// 0003. On SQLite it is a plain transaction.
    pub(crate) async fn begin_scoped(&self, ctx: &TenantScope) -> Result<Transaction<'static, Any>> {
        self.confine(self.writer.begin().await?, ctx).await
    }

    /// [`Store::begin_scoped`] for reads: on SQLite a transaction on the read-only pool.
    pub(crate) async fn begin_scoped_read(&self, ctx: &TenantScope) -> Result<Transaction<'static, Any>> {
        self.confine(self.reader.begin().await?, ctx).await
    }

    async fn confine(&self, mut tx: Transaction<'static, Any>, ctx: &TenantScope) -> Result<Transaction<'static, Any>> {
        if self.backend == Backend::Postgres {
            // Both settings are transaction-local (`true`): COMMIT or ROLLBACK restores the
            // connecting role before the connection goes back to the pool.
            sqlx::query("SELECT set_config('role', 'agentd_tenant', true), set_config('agentd.tenant_id', $1, true)")
                .bind(ctx.tenant_id().as_str())
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// The migrations this binary knows that the database lacks (empty: current).
    pub async fn migrations_pending(&self) -> Result<Vec<i64>> {
        migrate::pending(&self.reader, self.backend).await
    }

    /// A consistent copy of the whole SQLite database into the new file `target`
    /// (`VACUUM INTO`), taken while the store is in use: one read transaction, so it
    /// holds every commit before it began and none after. PostgreSQL is backed up with
    /// its own tools (`pg_dump`).
    pub async fn backup_sqlite_into(&self, target: &Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Config(
                "this database is PostgreSQL: back it up with pg_dump (see docs/OPERATIONS.md)".to_owned(),
            ));
        }
        let target = target.to_str().ok_or_else(|| StoreError::Config("the backup path is not UTF-8".to_owned()))?;
        sqlx::query("VACUUM INTO $1").bind(target).execute(&self.reader).await?;
        Ok(())
    }

    /// A trivial round trip, for readiness probes.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}
