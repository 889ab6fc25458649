//! The server under test: this very binary's `serve` as a subprocess on a free port, with
//! its own data dir, driven over HTTP like any client would. Its log is kept (the last
//! lines) to explain a failure, not echoed. Stopping sends SIGTERM and waits for the clean
//! shutdown; dropping it without `stop` SIGKILLs it (its sandboxes die with it).

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentd_client::Client;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::oneshot;

use super::BenchError;

/// Time the server gets to print its address, and then to answer `/healthz`.
const STARTUP: Duration = Duration::from_secs(60);
/// Time the server gets to shut down cleanly after SIGTERM.
const SHUTDOWN: Duration = Duration::from_secs(30);
const LOG_TAIL_LINES: usize = 30;

type LogTail = Arc<Mutex<VecDeque<String>>>;

pub struct BenchServer {
    child: Child,
    pub base_url: String,
    log: LogTail,
}

impl BenchServer {
    /// Starts `agentd serve` with `slots` worker slots and limits that cannot throttle the
    /// benchmark, on `database_url` (default: SQLite in `data_dir`); returns once it
    /// answers `/healthz`.
    pub async fn start(data_dir: &Path, database_url: Option<&str>, slots: usize) -> Result<BenchServer, BenchError> {
        let exe = std::env::current_exe().map_err(BenchError::io("could not locate the agentd binary to serve"))?;
        let mut command = Command::new(exe);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(database_url.map(|url| ["--database-url", url]).into_iter().flatten())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The caller's own AGENTD_* settings (a database URL, a port) must not leak in.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AGENTD_") {
                command.env_remove(name);
            }
        }
        command.envs(server_env(slots));
        let mut child = command.spawn().map_err(BenchError::io("could not start `agentd serve`"))?;
        let log = LogTail::default();
        let (found, address) = oneshot::channel();
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(read_log(stderr, log.clone(), found));
        }
        let mut server = BenchServer { child, base_url: String::new(), log };
        match tokio::time::timeout(STARTUP, address).await {
            Ok(Ok(url)) => server.base_url = url,
            Ok(Err(_)) => return Err(server.failure("exited before it was listening")),
            Err(_) => return Err(server.failure("printed no address within 60 s")),
        }
        server.wait_until_healthy().await?;
        Ok(server)
    }

    async fn wait_until_healthy(&self) -> Result<(), BenchError> {
        let client = Client::new(&self.base_url)?;
        let deadline = tokio::time::Instant::now() + STARTUP;
        let mut poll = tokio::time::interval(Duration::from_millis(20));
        loop {
            poll.tick().await;
            match client.healthz().await {
                Ok(()) => return Ok(()),
                Err(_) if tokio::time::Instant::now() < deadline => {}
                Err(err) => {
                    return Err(self.failure(&format!("never answered /healthz ({err})")));
                }
            }
        }
    }

    /// SIGTERM, then wait for the clean shutdown (SIGKILL if it does not come in time).
    pub async fn stop(mut self) -> Result<(), BenchError> {
        if let Some(pid) = self.child.id() {
            // `kill(1)`: this crate has no signal API among its dependencies.
            let sent = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await
                .map_err(BenchError::io("could not run `kill -TERM` on the server"))?;
            if !sent.success() {
                return Err(self.failure(&format!("could not be sent SIGTERM (kill: {sent})")));
            }
        }
        match tokio::time::timeout(SHUTDOWN, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(self.failure(&format!("shut down with {status}"))),
            Ok(Err(err)) => Err(BenchError::io("could not wait for the server")(err)),
            Err(_) => {
                let killed = self.child.kill().await;
                let note = killed.err().map(|e| format!(" (and SIGKILL failed: {e})"));
                let problem = format!("did not stop within 30 s of SIGTERM{}", note.unwrap_or_default());
                Err(self.failure(&problem))
            }
        }
    }

    fn failure(&self, problem: &str) -> BenchError {
        let log = match self.log.lock() {
            Ok(tail) => tail.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
            Err(_) => "  (log unavailable)".to_owned(),
        };
        BenchError::Server { problem: problem.to_owned(), log }
    }
}

/// Worker slots as asked; tenant limits high enough that the benchmark measures the
/// platform, not its quotas.
fn server_env(slots: usize) -> Vec<(String, String)> {
    let unlimited = "1000000".to_owned();
    vec![
        ("AGENTD_WORKER_SLOTS".to_owned(), slots.to_string()),
        ("AGENTD_SIGNUP".to_owned(), "open".to_owned()),
        ("AGENTD_LOG".to_owned(), "info,sqlx=warn".to_owned()),
        ("AGENTD_LIMITS_MAX_CONCURRENT_INVOCATIONS".to_owned(), unlimited.clone()),
        ("AGENTD_LIMITS_MAX_QUEUED_INVOCATIONS".to_owned(), unlimited.clone()),
        ("AGENTD_LIMITS_REQUESTS_PER_SECOND".to_owned(), unlimited.clone()),
        ("AGENTD_LIMITS_INVOCATIONS_PER_MINUTE".to_owned(), unlimited),
    ]
}

/// Reads the server's log to its end: reports the address it listens on, keeps the tail.
async fn read_log(stderr: ChildStderr, tail: LogTail, found: oneshot::Sender<String>) {
    let mut found = Some(found);
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(at) = line.find("listening on http://") {
            let url = line[at + "listening on ".len()..].split_whitespace().next();
            if let (Some(url), Some(found)) = (url, found.take()) {
                // The receiver is gone only if startup was given up on already.
                let _ = found.send(url.to_owned());
            }
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == LOG_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}
