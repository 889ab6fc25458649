//! `agentd bench`: measures what the sandbox and the platform cost, each figure beside a
//! baseline taken in the same run on the same machine (the project's rule: speed is
//! measured in benchmarks, never in timed tests).
//!
//! The `agentd` binary parses [`BenchArgs`] as its `bench` subcommand and calls [`run`]. The
//! benchmark runs inside that process and re-executes it (`current_exe()`) as the sandbox's
//! init and as the `agentd serve` under test, so it works only in a binary that dispatches
//! `agentd_sandbox::INIT_ARG` first and has a `serve` command: the `agentd` binary.
//!
//! Four sections, each skippable with a run count of 0:
//! - `spawn`: one program started bare (`Command`, `run_unsandboxed`) and sandboxed
//!   (`Sandbox::run`), the modes alternated run by run so that drift hits all alike;
//! - `end_to_end`: a trivial agent invoked through a real `agentd serve` subprocess
//!   (`server`) by concurrent clients, against the same script run bare and sandboxed
//!   at the same concurrency;
//! - `queue`: jobs/s through agentd's queue (`Store` claim + complete) against the
//!   textbook `SKIP LOCKED` loop on a bare table, on SQLite and on PostgreSQL (in a
//!   fresh database, `postgres`);
//! - `rate_limit`: an authenticated `GET` with the `requests_per_second` check off and
//!   on (a limit that never refuses), on SQLite and PostgreSQL.
//!
//! Everything lives under one temp dir that is removed at the end, also on error.

mod end_to_end;
mod postgres;
mod queue;
mod rate_limit;
mod report;
mod server;
mod spawn;
mod stats;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use self::postgres::{DEFAULT_POSTGRES, FreshPostgres, PostgresTarget};
use self::report::Report;
use self::spawn::Spawner;

/// The options of `agentd bench`: what to measure, how much, and on which database.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Runs per program and mode for the spawn overhead (0 skips it).
    #[arg(long, default_value_t = 200)]
    pub spawn_runs: u32,
    /// Invocations for the end-to-end throughput, and runs of each baseline (0 skips it).
    #[arg(long, default_value_t = 300)]
    pub e2e_runs: u32,
    /// Concurrent clients end to end; also the server's worker slots and the baselines'
    /// concurrency.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Jobs for the queue throughput, per engine and side (0 skips it).
    #[arg(long, default_value_t = 2000)]
    pub queue_jobs: u32,
    /// Authenticated `GET`s per side for the cost of the rate-limit check, on each
    /// engine (0 skips it).
    #[arg(long, default_value_t = 3000)]
    pub rate_limit_requests: u32,
    /// PostgreSQL server for the queue benchmark (and `--e2e-postgres`): a fresh database
    /// `agentd_bench_<uuid>` is created on it and dropped at the end. Default: the local
    /// server at postgres://postgres@127.0.0.1:5432, skipped if it does not answer;
    /// `none` skips PostgreSQL.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Run the end-to-end server on a fresh PostgreSQL database instead of SQLite.
    #[arg(long)]
    pub e2e_postgres: bool,
    /// Also print the figures as JSON on stdout (the table then goes to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    #[error("{action}: {source}")]
    Io { action: String, source: std::io::Error },
    #[error(transparent)]
    Sandbox(#[from] agentd_sandbox::SandboxError),
    #[error("calling the benchmark server failed: {0}")]
    Client(#[from] agentd_client::ClientError),
    #[error("could not pack the benchmark agent: {0}")]
    Bundle(#[from] agentd_bundle::BundleError),
    #[error("the benchmark server {problem}; its last log lines:\n{log}")]
    Server { problem: String, log: String },
    #[error("a measured run of {what} did not succeed ({detail}); its figures would mean nothing")]
    RunFailed { what: String, detail: String },
    #[error("a benchmark task stopped unexpectedly: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Store(#[from] agentd_store::StoreError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Config(String),
    #[error("could not write the JSON report: {0}")]
    Json(#[from] serde_json::Error),
}

impl BenchError {
    fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let action = action.into();
        move |source| BenchError::Io { action, source }
    }
}

/// Runs the sections `args` asks for and prints the report; any failure is printed on
/// stderr and makes the exit code a failure (partial figures are not printed).
pub async fn run(args: BenchArgs) -> ExitCode {
    match bench(&args).await.and_then(|report| report.print(args.json)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(args: &BenchArgs) -> Result<Report, BenchError> {
    let scratch = ScratchDir::create()?;
    let agent_dir = scratch.subdir("agent")?;
    end_to_end::write_agent(&agent_dir)?;
    let spawner = Spawner::new(&scratch.subdir("sandbox")?, agent_dir.clone())?;
    let mut report = Report::new();
    if args.spawn_runs > 0 {
        report.spawn = Some(spawn::measure(&spawner, args.spawn_runs as usize).await?);
    }
    let postgres = match args.database_url.as_deref() {
        None => PostgresTarget::Default,
        Some("none") => PostgresTarget::Off,
        Some(url) => PostgresTarget::Given(url.to_owned()),
    };
    if args.e2e_runs > 0 {
        let database = match (args.e2e_postgres, &postgres) {
            (false, _) => None,
            (true, PostgresTarget::Off) => {
                return Err(BenchError::Config("--e2e-postgres needs PostgreSQL, not --database-url none".into()));
            }
            (true, PostgresTarget::Given(url)) => Some(FreshPostgres::create(url).await?),
            (true, PostgresTarget::Default) => Some(FreshPostgres::create(DEFAULT_POSTGRES).await?),
        };
        let setup = end_to_end::Setup {
            spawner,
            agent_dir,
            server_dir: scratch.subdir("server")?,
            database_url: database.as_ref().map(|db| db.url.clone()),
            runs: args.e2e_runs as usize,
            concurrency: args.concurrency as usize,
        };
        let measured = end_to_end::measure(setup).await;
        let dropped = match database {
            Some(db) => db.drop_database().await,
            None => Ok(()),
        };
        report.end_to_end = Some(measured?);
        dropped?;
    }
    if args.queue_jobs > 0 {
        let dir = scratch.subdir("queue")?;
        report.queue = Some(queue::measure(&dir, args.queue_jobs as usize, &postgres).await?);
    }
    if args.rate_limit_requests > 0 {
        let dir = scratch.subdir("rate-limit")?;
        report.rate_limit = Some(rate_limit::measure(&dir, args.rate_limit_requests as usize, &postgres).await?);
    }
    Ok(report)
}

/// A fresh dir under the system temp dir, removed with everything in it when dropped.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create() -> Result<ScratchDir, BenchError> {
        let name = format!("agentd-bench-{}", uuid::Uuid::now_v7().simple());
        let path = std::env::temp_dir().join(name);
        make_dir(&path)?;
        Ok(ScratchDir { path })
    }

    fn subdir(&self, name: &str) -> Result<PathBuf, BenchError> {
        let path = self.path.join(name);
        make_dir(&path)?;
        Ok(path)
    }
}

/// Mode 0755 whatever the umask: the sandboxed agent runs as a uid that owns nothing on
/// the host and must still traverse every dir down to its bundle.
fn make_dir(path: &Path) -> Result<(), BenchError> {
    let failed = || BenchError::io(format!("could not create {}", path.display()));
    std::fs::DirBuilder::new().mode(0o755).create(path).map_err(failed())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(failed())
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.path) {
            eprintln!("warning: could not remove {}: {err}", self.path.display());
        }
    }
}
