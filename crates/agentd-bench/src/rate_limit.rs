//! What the `requests_per_second` check costs an authenticated request: `GET /v1/me`
//! (one credential lookup, one tenant read) through two `agentd serve` processes side by
//! side, one with the limit off (`AGENTD_LIMITS_REQUESTS_PER_SECOND=0`: no bucket is
//! touched) and one with a limit so high that it never refuses (the bucket is read and
//! written on every request: in process on SQLite, one `INSERT … ON CONFLICT` on the
//! UNLOGGED table on PostgreSQL). Rounds alternate between the two, so drift on the
//! machine hits both alike. On SQLite and, when it answers, PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use agentd_api_types::SignupRequest;
use agentd_client::Client;
use serde::Serialize;
use tokio::task::JoinSet;

use super::BenchError;
use super::postgres::{FreshPostgres, PostgresTarget};
use super::server::BenchServer;
use super::stats::ratio;

const ROUNDS: usize = 6;
const CALLERS: usize = 4;

#[derive(Debug, Clone, Serialize)]
pub struct RateLimitReport {
    pub requests_per_side: usize,
    pub callers: usize,
    pub engines: Vec<RateLimitEngine>,
    pub postgres_skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RateLimitEngine {
    pub engine: &'static str,
    pub off: Side,
    pub on: Side,
    /// Mean latency with the check minus without, in µs.
    pub added_us_per_request: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub requests_per_s: f64,
    pub mean_us: f64,
}

pub async fn measure(
    scratch: &Path,
    requests: usize,
    postgres: &PostgresTarget,
) -> Result<RateLimitReport, BenchError> {
    let mut engines = vec![measure_engine("sqlite", scratch, None, requests).await?];
    let postgres_skipped = match FreshPostgres::for_target(postgres).await? {
        Err(reason) => Some(reason),
        Ok(off_db) => {
            let on_db = FreshPostgres::create_beside(&off_db).await;
            let measured = match &on_db {
                Ok(on_db) => {
                    let urls = [off_db.url.clone(), on_db.url.clone()];
                    measure_engine("postgres", scratch, Some(urls), requests).await
                }
                Err(_) => Err(BenchError::Config("could not create the second database".into())),
            };
            let dropped = off_db.drop_database().await;
            if let Ok(on_db) = on_db {
                on_db.drop_database().await?;
            }
            engines.push(measured?);
            dropped?;
            None
        }
    };
    Ok(RateLimitReport { requests_per_side: requests, callers: CALLERS, engines, postgres_skipped })
}

async fn measure_engine(
    engine: &'static str,
    scratch: &Path,
    databases: Option<[String; 2]>,
    requests: usize,
) -> Result<RateLimitEngine, BenchError> {
    eprintln!("rate limit: {engine}, {requests} GET /v1/me per side, {CALLERS} callers, limit off vs on…");
    let mut servers = Vec::new();
    for (side, limit) in [("off", "0"), ("on", "1000000")] {
        let dir = scratch.join(format!("rate-{engine}-{side}"));
        std::fs::create_dir_all(&dir).map_err(BenchError::io(format!("could not create {}", dir.display())))?;
        let url = databases.as_ref().map(|urls| if side == "off" { urls[0].clone() } else { urls[1].clone() });
        let env = [("AGENTD_LIMITS_REQUESTS_PER_SECOND", limit)];
        servers.push(BenchServer::start_with(&dir, url.as_deref(), 0, &env).await?);
    }
    let measured = alternate(&servers, requests).await;
    for server in servers {
        server.stop().await?;
    }
    let [off, on] = measured?;
    Ok(RateLimitEngine { engine, added_us_per_request: on.mean_us - off.mean_us, off, on })
}

/// `ROUNDS` rounds, each a share of the requests on the off server and then the on one.
async fn alternate(servers: &[BenchServer], requests: usize) -> Result<[Side; 2], BenchError> {
    let mut callers = Vec::new();
    for server in servers {
        callers.push(signed_up(server).await?);
    }
    let per_round = requests.div_ceil(ROUNDS).div_ceil(CALLERS) * CALLERS;
    let mut totals = [(0usize, Duration::ZERO, Duration::ZERO); 2];
    for round in 0..=ROUNDS {
        for (side, clients) in callers.iter().enumerate() {
            let (wall, latency) = closed_loop(clients, per_round).await?;
            // Round 0 warms both servers up (connections, caches) and is not counted.
            if round > 0 {
                totals[side].0 += per_round;
                totals[side].1 += wall;
                totals[side].2 += latency;
            }
        }
    }
    Ok(totals.map(|(count, wall, latency)| Side {
        requests_per_s: ratio(count as f64, wall.as_secs_f64()),
        mean_us: ratio(latency.as_micros() as f64, count as f64),
    }))
}

/// A workspace on `server` and one client per caller with its key.
async fn signed_up(server: &BenchServer) -> Result<Vec<Client>, BenchError> {
    let signup = Client::new(&server.base_url)?
        .signup(&SignupRequest {
            email: "bench@example.com".into(),
            password: "correct horse battery staple".into(),
            workspace_name: "Benchmark".into(),
            workspace_slug: "bench".into(),
        })
        .await?;
    let key = signup.api_key.secret;
    (0..CALLERS).map(|_| Ok(Client::new(&server.base_url)?.with_token(key.clone()))).collect()
}

/// `count` requests split among the callers; the wall time and the sum of latencies.
async fn closed_loop(clients: &[Client], count: usize) -> Result<(Duration, Duration), BenchError> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for client in clients {
        let client = client.clone();
        let share = count / clients.len();
        tasks.spawn(async move {
            let mut latency = Duration::ZERO;
            for _ in 0..share {
                let began = Instant::now();
                client.me().await?;
                latency += began.elapsed();
            }
            Ok::<_, BenchError>(latency)
        });
    }
    let mut latency = Duration::ZERO;
    while let Some(done) = tasks.join_next().await {
        latency += done??;
    }
    Ok((started.elapsed(), latency))
}
