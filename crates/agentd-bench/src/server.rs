//! The server under test: this very binary's `serve` as a subprocess on a free port, with
//! its own data dir, driven over HTTP like any client would. It learns the port from the
//! file the server writes once listening (`--address-file`), polled with a deadline. The
//! server's log is kept (the last lines) to explain a failure, not echoed. Stopping sends
//! SIGTERM and waits for the clean shutdown; dropping it without `stop` SIGKILLs it (its
//! sandboxes die with it).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentd_client::Client;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::BenchError;

/// Time the server gets to write its address, and then to answer `/healthz`.
const STARTUP: Duration = Duration::from_secs(60);
/// How often the address file and `/healthz` are looked at while starting.
const POLL: Duration = Duration::from_millis(20);
/// Time the server gets to shut down cleanly after SIGTERM.
const SHUTDOWN: Duration = Duration::from_secs(30);
/// How long a server that exited gets to finish writing its log, for the error message.
const LAST_WORDS: Duration = Duration::from_secs(1);
const LOG_TAIL_LINES: usize = 30;

type LogTail = Arc<Mutex<VecDeque<String>>>;

pub struct BenchServer {
    child: Child,
    pub base_url: String,
    log: LogTail,
    log_reader: Option<JoinHandle<()>>,
}

impl BenchServer {
    /// Starts `agentd serve` with `slots` worker slots and limits that cannot throttle the
    /// benchmark, on `database_url` (default: SQLite in its data dir, `dir/data`); returns
    /// once it answers `/healthz`. Its address file is `dir/address`.
    pub async fn start(dir: &Path, database_url: Option<&str>, slots: usize) -> Result<BenchServer, BenchError> {
        BenchServer::start_with(dir, database_url, slots, &[]).await
    }

    /// [`BenchServer::start`] with `env` laid over the benchmark's settings.
    pub async fn start_with(
        dir: &Path,
        database_url: Option<&str>,
        slots: usize,
        env: &[(&str, &str)],
    ) -> Result<BenchServer, BenchError> {
        let address_file = dir.join("address");
        let exe = std::env::current_exe().map_err(BenchError::io("could not locate the agentd binary to serve"))?;
        let mut command = Command::new(exe);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .arg("--address-file")
            .arg(&address_file)
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
        command.envs(env.iter().copied());
        let child = command.spawn().map_err(BenchError::io("could not start `agentd serve`"))?;
        let mut server = BenchServer::watch(child);
        let address = server.wait_for_address(&address_file).await?;
        server.base_url = format!("http://{address}");
        server.wait_until_healthy().await?;
        Ok(server)
    }

    /// Starts keeping the tail of the log of a server just spawned with a piped stderr.
    fn watch(mut child: Child) -> BenchServer {
        let log = LogTail::default();
        let log_reader = child.stderr.take().map(|stderr| tokio::spawn(keep_tail(stderr, log.clone())));
        BenchServer { child, base_url: String::new(), log, log_reader }
    }

    /// Polls for the address file until the deadline; the server writes it whole (a
    /// rename), so a file that exists holds the full address.
    async fn wait_for_address(&mut self, path: &Path) -> Result<SocketAddr, BenchError> {
        let deadline = Instant::now() + STARTUP;
        let mut poll = tokio::time::interval(POLL);
        loop {
            poll.tick().await;
            match tokio::fs::read_to_string(path).await {
                Ok(text) => {
                    return text.trim().parse().map_err(|err| {
                        self.failure(&format!("wrote `{text}` to {}, not an address ({err})", path.display()))
                    });
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(BenchError::io(format!("could not read {}", path.display()))(err)),
            }
            match self.child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    self.wait_for_log_end().await;
                    return Err(self.failure(&format!("exited ({status}) before it was listening")));
                }
                Err(err) => return Err(BenchError::io("could not check on the server")(err)),
            }
            if Instant::now() >= deadline {
                let problem = format!("wrote no address to {} within {} s", path.display(), STARTUP.as_secs());
                return Err(self.failure(&problem));
            }
        }
    }

    /// Lets the log reader take in what an exited server wrote last, which is usually why
    /// it exited.
    async fn wait_for_log_end(&mut self) {
        if let Some(reader) = self.log_reader.take() {
            // Past the grace period (a straggler holding the pipe open) or if the reader
            // failed, the tail is still worth showing as it is.
            let _ = tokio::time::timeout(LAST_WORDS, reader).await;
        }
    }

    async fn wait_until_healthy(&self) -> Result<(), BenchError> {
        let client = Client::new(&self.base_url)?;
        let deadline = Instant::now() + STARTUP;
        let mut poll = tokio::time::interval(POLL);
        loop {
            poll.tick().await;
            match client.healthz().await {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() < deadline => {}
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
            Ok(Ok(status)) => {
                self.wait_for_log_end().await;
                Err(self.failure(&format!("shut down with {status}")))
            }
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
        ("AGENTD_LIMITS_INVOCATIONS_PER_MINUTE".to_owned(), unlimited.clone()),
        ("AGENTD_SIGNUPS_PER_HOUR_PER_IP".to_owned(), unlimited.clone()),
        ("AGENTD_LOGINS_PER_MINUTE_PER_IP".to_owned(), unlimited),
    ]
}

/// Reads the server's log to its end, keeping the last lines.
async fn keep_tail(stderr: ChildStderr, tail: LogTail) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == LOG_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for `agentd serve`: a shell script given the address file as `$0`.
    fn fake_server(script: &str, address_file: &Path) -> BenchServer {
        let child = Command::new("sh")
            .args(["-c", script])
            .arg(address_file)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        BenchServer::watch(child)
    }

    #[tokio::test]
    async fn the_address_is_read_from_the_file_once_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("address");
        let script = "sleep 0.1; printf 127.0.0.1:41234 > \"$0.partial\"; mv \"$0.partial\" \"$0\"; sleep 30";
        let mut server = fake_server(script, &file);
        let address = server.wait_for_address(&file).await.unwrap();
        assert_eq!(address, "127.0.0.1:41234".parse::<SocketAddr>().unwrap());
    }

    #[tokio::test]
    async fn a_server_that_exits_before_listening_is_reported_with_its_last_words() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("address");
        let mut server = fake_server("echo 'error: cannot open the database' >&2; exit 3", &file);
        let message = server.wait_for_address(&file).await.unwrap_err().to_string();
        assert!(message.contains("exited (exit status: 3) before it was listening"), "{message}");
        assert!(message.contains("error: cannot open the database"), "{message}");
    }
}
