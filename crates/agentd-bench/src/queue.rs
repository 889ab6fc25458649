//! Queue throughput: how many jobs per second agentd's own queue moves through claim and
//! completion, against the textbook queue on the same engine, same run, same machine.
//!
//! Per engine (SQLite always, in a temp dir; PostgreSQL when reachable, in a fresh
//! database dropped at the end):
//! - **raw**: a table `bench_jobs(id, status, locked_by)` with `N` rows, and 2 claimers
//!   looping "claim one row" (`UPDATE … WHERE id = (SELECT … LIMIT 1 FOR UPDATE SKIP
//!   LOCKED) RETURNING id`; SQLite the same without `SKIP LOCKED`, on one connection) then
//!   "mark it done": two commits per job;
//! - **agentd**: `N` invocations enqueued through [`Store::invocation_enqueue`] for one
//!   tenant whose limits cannot throttle, then 2 claimers looping
//!   [`Store::queue_claim_unscoped`] + [`Store::queue_complete`] until all `N` are done.
//!
//! Both sides go through sqlx's `Any` driver, as the store does, so the ratio is what the
//! store's schema, fairness, fencing and wake-ups cost over the bare loop.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agentd_core::{
    Actor, AgentVersion, Fault, InvocationStatus, PageBounds, PageRequest, RequestId, Role, Slug, TenantLimits,
    TenantScope, Timestamp, Usage, Visibility,
};
use agentd_store::{Completion, NewAgent, NewApiKey, NewInvocation, NewSignup, NewVersion, RetryPlan, Store};
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use tokio::task::JoinSet;

use super::BenchError;
use super::postgres::{FreshPostgres, PostgresTarget};
use super::stats::ratio;

/// Concurrent claimers on each side.
pub const CLAIMERS: usize = 2;
/// Longer than any lease the claimers could need: nothing is reaped during the run.
const LEASE: Duration = Duration::from_secs(600);
/// A side that has not finished by then is reported as failed, not waited for.
const DEADLINE: Duration = Duration::from_secs(600);
const AGENT_SLUG: &str = "bench-queue";

/// Jobs per second over one side's claim-and-complete loop.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    pub jobs: usize,
    pub wall_s: f64,
    pub jobs_per_s: f64,
}

impl Rate {
    fn of(jobs: usize, wall: Duration) -> Rate {
        let wall_s = wall.as_secs_f64();
        Rate { jobs, wall_s, jobs_per_s: ratio(jobs as f64, wall_s) }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineReport {
    pub engine: &'static str,
    /// The textbook loop, two commits per job.
    pub raw: Rate,
    /// `queue_claim_unscoped` + `queue_complete`.
    pub agentd: Rate,
    /// Claims that came back empty while jobs were left: everything left was already
    /// claimed, or a run the claim chose was taken first.
    pub agentd_empty_claims: usize,
    /// `invocation_enqueue` one at a time, one claimer-free caller.
    pub agentd_enqueue: Rate,
    /// agentd's jobs/s over raw jobs/s (the goal is at least 0.5).
    pub agentd_over_raw: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueReport {
    pub jobs: usize,
    pub claimers: usize,
    pub engines: Vec<EngineReport>,
    /// Why PostgreSQL was not measured, when it was not.
    pub postgres_skipped: Option<String>,
}

pub async fn measure(scratch: &Path, jobs: usize, postgres: &PostgresTarget) -> Result<QueueReport, BenchError> {
    let mut engines = Vec::new();
    let path = scratch.join("agentd.db");
    eprintln!("queue: SQLite, {jobs} jobs, {CLAIMERS} claimers…");
    let raw = raw_sqlite(&scratch.join("raw.db"), jobs).await?;
    let store = Store::open_sqlite(&path).await?;
    let agentd = through_store(&store, jobs).await;
    store.close().await;
    engines.push(engine_report("sqlite", raw, agentd?));

    let postgres_skipped = match FreshPostgres::for_target(postgres).await? {
        Err(reason) => {
            eprintln!("queue: PostgreSQL skipped: {reason}");
            Some(reason)
        }
        Ok(db) => {
            eprintln!("queue: PostgreSQL (database {}), {jobs} jobs, {CLAIMERS} claimers…", db.name);
            let measured = measure_postgres(&db.url, jobs).await;
            let dropped = db.drop_database().await;
            engines.push(measured?);
            dropped?;
            None
        }
    };
    Ok(QueueReport { jobs, claimers: CLAIMERS, engines, postgres_skipped })
}

async fn measure_postgres(url: &str, jobs: usize) -> Result<EngineReport, BenchError> {
    let raw = raw_postgres(url, jobs).await?;
    let store = Store::open(url).await?;
    let agentd = through_store(&store, jobs).await;
    store.close().await;
    Ok(engine_report("postgres", raw, agentd?))
}

fn engine_report(engine: &'static str, raw: Rate, agentd: StoreRun) -> EngineReport {
    EngineReport {
        engine,
        agentd_over_raw: ratio(agentd.claimed.jobs_per_s, raw.jobs_per_s),
        raw,
        agentd: agentd.claimed,
        agentd_empty_claims: agentd.empty_claims,
        agentd_enqueue: agentd.enqueue,
    }
}

// ----- the baseline -----
//
// Fixed statements only: the table is this benchmark's own, in a scratch database (SQLite
// file or a fresh PostgreSQL database), and the one value that varies, the claimer, is bound.

const RAW_CLAIM_POSTGRES: &str = "UPDATE bench_jobs SET status = 'running', locked_by = $1
    WHERE id = (SELECT id FROM bench_jobs WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id";
const RAW_CLAIM_SQLITE: &str = "UPDATE bench_jobs SET status = 'running', locked_by = $1
    WHERE id = (SELECT id FROM bench_jobs WHERE status = 'queued' ORDER BY id LIMIT 1)
    RETURNING id";
const RAW_DONE: &str = "UPDATE bench_jobs SET status = 'done' WHERE id = $1";

type PragmaFuture<'c> = std::pin::Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// The store's own SQLite settings (WAL, `synchronous = NORMAL`), so both sides pay the
/// same price per commit.
fn sqlite_pragmas(conn: &mut sqlx::AnyConnection, _: sqlx::pool::PoolConnectionMetadata) -> PragmaFuture<'_> {
    Box::pin(async move {
        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;")
            .await
            .map(drop)
    })
}

async fn raw_sqlite(path: &Path, jobs: usize) -> Result<Rate, BenchError> {
    install_default_drivers();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    // One connection, as the store's single writer.
    let pool = AnyPoolOptions::new().max_connections(1).after_connect(sqlite_pragmas).connect(&url).await?;
    pool.execute("CREATE TABLE bench_jobs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, locked_by TEXT)").await?;
    let rate = raw_loop(&pool, jobs, RAW_CLAIM_SQLITE).await;
    pool.close().await;
    rate
}

async fn raw_postgres(url: &str, jobs: usize) -> Result<Rate, BenchError> {
    install_default_drivers();
    let pool = AnyPoolOptions::new().max_connections(CLAIMERS as u32).connect(url).await?;
    pool.execute("CREATE TABLE bench_jobs (id BIGSERIAL PRIMARY KEY, status TEXT NOT NULL, locked_by TEXT)").await?;
    let rate = raw_loop(&pool, jobs, RAW_CLAIM_POSTGRES).await;
    pool.close().await;
    rate
}

/// Fills the table, runs the claimers until a claim finds nothing, checks every job is done.
async fn raw_loop(pool: &AnyPool, jobs: usize, claim: &'static str) -> Result<Rate, BenchError> {
    let mut tx = pool.begin().await?;
    for _ in 0..jobs {
        sqlx::query("INSERT INTO bench_jobs (status) VALUES ('queued')").execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let started = Instant::now();
    let mut claimers = JoinSet::new();
    for claimer in 0..CLAIMERS {
        let pool = pool.clone();
        claimers.spawn(async move {
            let me = format!("raw-{claimer}");
            loop {
                let id: Option<i64> = sqlx::query_scalar(claim).bind(&me).fetch_optional(&pool).await?;
                let Some(id) = id else { return Ok::<_, sqlx::Error>(()) };
                sqlx::query(RAW_DONE).bind(id).execute(&pool).await?;
            }
        });
    }
    let finished = tokio::time::timeout(DEADLINE, async {
        while let Some(claimer) = claimers.join_next().await {
            claimer??;
        }
        Ok::<_, BenchError>(())
    })
    .await;
    let wall = started.elapsed();
    finished.map_err(|_| timed_out("the raw queue"))??;
    let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bench_jobs WHERE status = 'done'").fetch_one(pool).await?;
    check_all_done("the raw queue", done, jobs)?;
    Ok(Rate::of(jobs, wall))
}

// ----- agentd's queue -----

struct StoreRun {
    enqueue: Rate,
    claimed: Rate,
    empty_claims: usize,
}

async fn through_store(store: &Store, jobs: usize) -> Result<StoreRun, BenchError> {
    let (ctx, agent, version) = tenant_with_agent(store).await?;
    let started = Instant::now();
    for _ in 0..jobs {
        let new = NewInvocation {
            input: serde_json::json!({}),
            thread: None,
            priority: 0,
            max_attempts: 1,
            timeout_s: 60,
            idempotency_key: None,
            metadata: serde_json::json!({}),
            env: Default::default(),
            input_timeout_s: None,
            parent: None,
            webhook_url: None,
            schedule: None,
        };
        store.invocation_enqueue(&ctx, &agent, &version, new, u32::MAX).await?;
    }
    let enqueue = Rate::of(jobs, started.elapsed());

    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut claimers = JoinSet::new();
    for claimer in 0..CLAIMERS {
        let (store, done) = (store.clone(), done.clone());
        claimers.spawn(async move { claim_until_done(&store, &format!("bench-{claimer}"), &done, jobs).await });
    }
    let finished = tokio::time::timeout(DEADLINE, async {
        let mut empty_claims = 0;
        while let Some(claimer) = claimers.join_next().await {
            empty_claims += claimer??;
        }
        Ok::<_, BenchError>(empty_claims)
    })
    .await;
    let wall = started.elapsed();
    let empty_claims = finished.map_err(|_| timed_out("agentd's queue"))??;
    for status in [InvocationStatus::Queued, InvocationStatus::Running] {
        let filter = agentd_store::InvocationFilter { status: Some(status), ..Default::default() };
        let page = PageRequest::after_value(None, PageBounds { default: 1, max: 1 });
        if !store.invocations_list(&ctx, &filter, &page).await?.data.is_empty() {
            return Err(BenchError::RunFailed {
                what: "agentd's queue".into(),
                detail: format!("invocations were left {status} at the end"),
            });
        }
    }
    check_all_done("agentd's queue", i64::try_from(done.load(Ordering::Relaxed)).unwrap_or(i64::MAX), jobs)?;
    Ok(StoreRun { enqueue, claimed: Rate::of(jobs, wall), empty_claims })
}

/// Claims and completes until `jobs` runs are done across all claimers; returns how many
/// claims came back empty meanwhile. An empty claim is retried at once: near the end the
/// other claimer may hold the last runs.
async fn claim_until_done(store: &Store, me: &str, done: &AtomicUsize, jobs: usize) -> Result<usize, BenchError> {
    let retry = RetryPlan { retry_at: Timestamp::now(), max_recoveries: 0 };
    let mut empty = 0;
    while done.load(Ordering::Relaxed) < jobs {
        // Every attempt's token is unique (the store indexes its hash); a v7 id is.
        let token = agentd_core::Secret::new(format!("agr_{}", agentd_core::RequestId::generate()));
        let Some(run) = store.queue_claim_unscoped(me, LEASE, &token).await? else {
            empty += 1;
            tokio::task::yield_now().await;
            continue;
        };
        let completion = Completion {
            status: InvocationStatus::Succeeded,
            output: Some(serde_json::json!(1)),
            error: None,
            usage: Usage::default(),
            fault: Fault::Agent,
            interrupt: None,
            state: None,
        };
        if !store.queue_complete(&run.lease(), completion, &retry).await? {
            return Err(BenchError::RunFailed {
                what: format!("invocation {}", run.invocation_id),
                detail: "its lease was lost before completion".into(),
            });
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(empty)
}

/// One tenant whose limits cannot throttle the benchmark, one agent with one version.
async fn tenant_with_agent(store: &Store) -> Result<(TenantScope, agentd_core::Agent, AgentVersion), BenchError> {
    let unlimited = 1_000_000;
    let limits = TenantLimits {
        max_concurrent_invocations: unlimited,
        max_queued_invocations: unlimited,
        requests_per_second: unlimited,
        invocations_per_minute: unlimited,
        ..TenantLimits::default()
    };
    let slug = |s: &str| {
        Slug::parse(s).map_err(|e| BenchError::RunFailed { what: "the queue set-up".into(), detail: e.to_string() })
    };
    let signed_up = store
        .signup(NewSignup {
            tenant_name: "Queue benchmark".into(),
            tenant_slug: slug("bench-queue")?,
            email: "bench-queue@example.com".into(),
            password_hash: "not a hash: nobody signs in".into(),
            limits,
            first_key: NewApiKey {
                name: "bench".into(),
                prefix: "benchq".into(),
                key_hash: "unused".into(),
                scopes: Role::Owner.scopes(),
                expires_at: None,
            },
            origin: agentd_core::RequestOrigin::new(agentd_core::RequestId::generate(), None),
        })
        .await?;
    let ctx = TenantScope::new(signed_up.tenant.id, Actor::User { id: signed_up.user.id }, RequestId::generate());
    let agent_slug = slug(AGENT_SLUG)?;
    let new = NewAgent {
        slug: agent_slug.clone(),
        name: "queue benchmark".into(),
        description: None,
        tags: vec![],
        visibility: Visibility::Private,
    };
    store.agent_create(&ctx, new, unlimited).await?;
    let version = NewVersion {
        digest: "sha256:00".into(),
        manifest: serde_json::json!({"name": AGENT_SLUG, "runtime": "shell", "entrypoint": "run.sh"}),
        size_bytes: 1,
        activate: true,
        build: None,
    };
    let version = store.version_create(&ctx, &agent_slug, version).await?;
    let agent = store.agent_get(&ctx, &agent_slug).await?;
    Ok((ctx, agent, version))
}

fn timed_out(what: &str) -> BenchError {
    BenchError::RunFailed { what: what.into(), detail: format!("not done within {} s", DEADLINE.as_secs()) }
}

fn check_all_done(what: &str, done: i64, jobs: usize) -> Result<(), BenchError> {
    if usize::try_from(done).ok() == Some(jobs) {
        return Ok(());
    }
    Err(BenchError::RunFailed { what: what.into(), detail: format!("{done} of {jobs} jobs done at the end") })
}
