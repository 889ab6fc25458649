//! End-to-end throughput of trivial runs: a shell agent that only emits its output is
//! invoked through a real server by `concurrency` clients, each waiting (`?wait=60`) for
//! its run to finish before sending the next. Baselines, same run, same concurrency: the
//! same `run.sh` started by `run_unsandboxed` (bare) and by `Sandbox::run` (sandboxed), so
//! the gap splits into what the sandbox costs and what the platform (HTTP, database,
//! queue, worker) costs.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agentd_api_types::{CreateAgentRequest, Invocation, InvocationStatus, InvokeRequest, SignupRequest};
use agentd_client::{Client, InvokeOptions};
use serde::Serialize;
use tokio::task::JoinSet;

use super::BenchError;
use super::server::BenchServer;
use super::spawn::{Mode, Program, Spawner};
use super::stats::{Summary, ratio};

const AGENT_SLUG: &str = "bench-noop";
const SCRIPT: &str = r#"printf '{"type":"output","data":1}\n' >&3"#;
const RUN_SH: Program = Program { label: "run.sh", path: "/agent/run.sh", args: &[] };
/// What the worker writes to the agent's stdin, give or take the ids.
const STDIN: &[u8] =
    br#"{"invocation_id":"bench","agent":"bench-noop","input":{},"thread":null,"resume":null,"attempt":1}"#;

/// Writes the trivial shell agent (manifest and `run.sh`) into `dir`.
pub fn write_agent(dir: &Path) -> Result<(), BenchError> {
    use std::os::unix::fs::PermissionsExt;
    let write = |name: &str, text: String, mode: u32| {
        let path = dir.join(name);
        let failed = || BenchError::io(format!("could not write {}", path.display()));
        std::fs::write(&path, text).map_err(failed())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(failed())
    };
    let manifest = format!("name = \"{AGENT_SLUG}\"\nruntime = \"shell\"\nentrypoint = \"run.sh\"\n");
    write("agent.toml", manifest, 0o644)?;
    write("run.sh", format!("#!/bin/sh\n{SCRIPT}\n"), 0o755)
}

pub struct Setup {
    /// Its bundle dir is `agent_dir`.
    pub spawner: Spawner,
    pub agent_dir: PathBuf,
    /// The server's own dir, for its data dir and its address file (removed with the
    /// scratch dir).
    pub server_dir: PathBuf,
    /// The server's `--database-url`; `None` for its default, SQLite in the data dir.
    pub database_url: Option<String>,
    pub runs: usize,
    pub concurrency: usize,
}

/// Runs/s and the latency of each run as its caller saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub runs: usize,
    pub wall_s: f64,
    pub runs_per_s: f64,
    pub latency: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndToEndReport {
    pub concurrency: usize,
    /// The server's database engine: `sqlite` or `postgres`.
    pub database: &'static str,
    pub script: &'static str,
    pub bare: Throughput,
    pub sandboxed: Throughput,
    pub server: Throughput,
    /// Server-side timestamps (ms resolution): `created_at → started_at`.
    pub server_queue: Summary,
    /// Server-side timestamps (ms resolution): `started_at → finished_at`.
    pub server_run: Summary,
    /// Runs/s of the server over runs/s bare.
    pub server_over_bare: f64,
    /// Runs/s sandboxed over runs/s bare.
    pub sandboxed_over_bare: f64,
}

pub async fn measure(setup: Setup) -> Result<EndToEndReport, BenchError> {
    let Setup { spawner, agent_dir, server_dir, database_url, runs, concurrency } = setup;
    let spawner = Arc::new(spawner);
    let mut baselines = Vec::new();
    for mode in [Mode::Bare, Mode::Sandboxed] {
        eprintln!("end to end: baseline {mode:?}, {runs} runs of run.sh, {concurrency} at a time…");
        let spawner = spawner.clone();
        let job = move |_worker: usize| {
            let spawner = spawner.clone();
            async move { spawner.time(mode, &RUN_SH, STDIN).await }
        };
        closed_loop(concurrency, concurrency, job.clone()).await?;
        baselines.push(throughput(closed_loop(runs, concurrency, job).await?.0));
    }
    let database = if database_url.is_some() { "postgres" } else { "sqlite" };
    eprintln!("end to end: agentd serve on {database}, {runs} invocations, {concurrency} clients…");
    let server = BenchServer::start(&server_dir, database_url.as_deref(), concurrency).await?;
    // Stop the server whatever happened, then report the first failure.
    let measured = through_server(&server, &agent_dir, runs, concurrency).await;
    let stopped = server.stop().await;
    let (server, invocations) = measured?;
    stopped?;
    let [bare, sandboxed] = <[Throughput; 2]>::try_from(baselines)
        .map_err(|_| BenchError::RunFailed { what: "the baselines".into(), detail: "not both were measured".into() })?;
    let span = |from: fn(&Invocation) -> Option<i64>, to: fn(&Invocation) -> Option<i64>| {
        let sample: Vec<Duration> = invocations
            .iter()
            .filter_map(|i| Some(to(i)? - from(i)?))
            .map(|ms| Duration::from_millis(ms.max(0).unsigned_abs()))
            .collect();
        Summary::of(&sample)
    };
    Ok(EndToEndReport {
        concurrency,
        database,
        script: SCRIPT,
        server_queue: span(|i| Some(i.created_at.unix_ms()), |i| i.started_at.map(|t| t.unix_ms())),
        server_run: span(|i| i.started_at.map(|t| t.unix_ms()), |i| i.finished_at.map(|t| t.unix_ms())),
        server_over_bare: ratio(server.runs_per_s, bare.runs_per_s),
        sandboxed_over_bare: ratio(sandboxed.runs_per_s, bare.runs_per_s),
        bare,
        sandboxed,
        server,
    })
}

/// Signs up, deploys the agent, warms up, then measures `runs` invocations.
async fn through_server(
    server: &BenchServer,
    agent_dir: &Path,
    runs: usize,
    concurrency: usize,
) -> Result<(Throughput, Vec<Invocation>), BenchError> {
    let anonymous = Client::new(&server.base_url)?;
    let signup = anonymous
        .signup(&SignupRequest {
            email: "bench@example.com".into(),
            password: "correct horse battery staple".into(),
            workspace_name: "Benchmark".into(),
            workspace_slug: "bench".into(),
        })
        .await?;
    let key = signup.api_key.secret;
    let owner = Client::new(&server.base_url)?.with_token(key.clone());
    let agent = CreateAgentRequest { slug: AGENT_SLUG.into(), ..CreateAgentRequest::default() };
    owner.agent_create(&agent).await?;
    owner.version_upload(AGENT_SLUG, agentd_bundle::pack_dir(agent_dir)?, true).await?;
    // One client (and connection pool) per concurrent caller, as separate users would have.
    let clients = (0..concurrency)
        .map(|_| Client::new(&server.base_url).map(|c| c.with_token(key.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let clients = Arc::new(clients);
    let job = move |worker: usize| {
        let client = clients.get(worker).cloned();
        async move {
            let client = client.ok_or_else(|| BenchError::RunFailed {
                what: "an invocation".into(),
                detail: format!("no client for caller {worker}"),
            })?;
            invoke_once(&client).await
        }
    };
    closed_loop(concurrency * 2, concurrency, job.clone()).await?;
    let (samples, invocations) = closed_loop(runs, concurrency, job).await?;
    Ok((throughput(samples), invocations))
}

/// One invocation, waited for by the server; anything but `succeeded` with output `1`
/// is an error (a benchmark of failing runs would measure the wrong thing).
async fn invoke_once(client: &Client) -> Result<Invocation, BenchError> {
    let request = InvokeRequest { input: serde_json::json!({}), ..InvokeRequest::default() };
    let options = InvokeOptions { wait_s: Some(60), ..InvokeOptions::default() };
    let invocation = client.invoke(AGENT_SLUG, &request, &options).await?;
    let output_ok = invocation.output == Some(serde_json::json!(1));
    if invocation.status == InvocationStatus::Succeeded && output_ok {
        return Ok(invocation);
    }
    Err(BenchError::RunFailed {
        what: format!("invocation {}", invocation.id),
        detail: format!(
            "status {}, output {:?}, error {:?} (after waiting up to 60 s)",
            invocation.status, invocation.output, invocation.error
        ),
    })
}

/// A sample of latencies and the wall time of the whole sample.
struct Sample {
    wall: Duration,
    latencies: Vec<Duration>,
}

fn throughput(sample: Sample) -> Throughput {
    let wall_s = sample.wall.as_secs_f64();
    Throughput {
        runs: sample.latencies.len(),
        wall_s,
        runs_per_s: ratio(sample.latencies.len() as f64, wall_s),
        latency: Summary::of(&sample.latencies),
    }
}

/// `runs` jobs by `concurrency` callers, each starting its next job when its last one
/// ended (a closed loop). The first failure aborts the rest.
async fn closed_loop<J, F, T>(runs: usize, concurrency: usize, job: J) -> Result<(Sample, Vec<T>), BenchError>
where
    J: Fn(usize) -> F + Clone + Send + 'static,
    F: Future<Output = Result<T, BenchError>> + Send + 'static,
    T: Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut callers = JoinSet::new();
    for worker in 0..concurrency {
        let (next, job) = (next.clone(), job.clone());
        callers.spawn(async move {
            let mut done = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < runs {
                let began = Instant::now();
                let value = job(worker).await?;
                done.push((began.elapsed(), value));
            }
            Ok::<_, BenchError>(done)
        });
    }
    let mut latencies = Vec::with_capacity(runs);
    let mut values = Vec::with_capacity(runs);
    while let Some(caller) = callers.join_next().await {
        for (latency, value) in caller?? {
            latencies.push(latency);
            values.push(value);
        }
    }
    Ok((Sample { wall: started.elapsed(), latencies }, values))
}
