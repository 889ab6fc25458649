//! A throwaway PostgreSQL cluster for one test process, for machines with PostgreSQL
//! installed but no server running: `initdb` into a temp dir, then `postgres` on a free
//! port of 127.0.0.1 with trust authentication and durability off (the data dies with the
//! process anyway).
//!
//! `initdb` refuses to run as root, and tests often run as root: then the cluster runs as
//! the `postgres` system user, or `nobody` where there is none, and its directory belongs
//! to that user.
//!
//! Nothing outlives the test process, however it ends (a panic, `exit`, SIGKILL): the
//! server is started by a small watchdog shell, in a process group of its own so that a
//! terminal's Ctrl-C reaches it only through the test process. The watchdog holds the read
//! end of a pipe whose only write end the test process keeps open until it ends (as the
//! watchdog's stdin, close-on-exec, so no other child inherits it). When the test process
//! is gone, for whatever reason, the read sees end of file, and the watchdog stops the
//! server (SIGQUIT: immediate shutdown, which also ends its backends), waits for it and
//! removes the directory.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::unistd::{Uid, User};

use crate::postgres::Server;

pub(crate) const NOT_FOUND: &str = "no initdb and postgres programs on PATH or under /usr/lib/postgresql/*/bin";

/// The watchdog: `$1` the `postgres` program, `$2` the cluster's directory, `$3` the port.
/// It prints the server's pid, then waits for its stdin to close. SIGPIPE is ignored so
/// that a test process gone before reading the pid still gets its cleanup.
const WATCHDOG: &str = r#"trap '' PIPE
"$1" -D "$2/data" -p "$3" -h 127.0.0.1 -k '' \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
  >"$2/postgres.log" 2>&1 </dev/null &
pg=$!
echo "$pg"
read -r _line
kill -QUIT "$pg" 2>/dev/null
wait "$pg"
rm -rf "$2"
"#;

/// Never dropped: the watchdog's stdin stays open for as long as this process lives.
static WATCHDOG_CHILD: OnceLock<Child> = OnceLock::new();

/// The directory with `initdb` and `postgres`: on PATH, else the newest major version
/// under `/usr/lib/postgresql` (Debian and Ubuntu keep them off PATH).
pub(crate) fn find_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_both(dir))
    {
        return Some(dir);
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    let mut found: Vec<(u32, PathBuf)> = versions
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
        .filter(|(_, bin)| has_both(bin))
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Starts a cluster with the programs in `bin` and returns its server, after saying on
/// stderr where it runs.
pub(crate) fn start(bin: &Path) -> Result<Server, String> {
    let user = cluster_user()?;
    let dir = tempfile::Builder::new()
        .prefix("agentd-test-postgres-")
        .tempdir()
        .map_err(|e| format!("a temp dir for the cluster: {e}"))?
        .keep();
    let started = init_and_run(bin, &dir, user.as_ref());
    if started.is_err() {
        // Before the watchdog owns the directory, it is ours to remove; removing is best
        // effort, the error that brought us here is the one to report.
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (port, watchdog) = started?;
    let server = Server::parse(&format!("postgres://postgres@127.0.0.1:{port}"))?;
    if let Err(e) = wait_until_ready(&server, &dir, watchdog.pid) {
        // Dropping the watchdog's stdin has it stop the server and remove the directory.
        drop(watchdog.child);
        return Err(e);
    }
    let _ = WATCHDOG_CHILD.set(watchdog.child);
    crate::note(&format!(
        "PostgreSQL for the tests: a private cluster on 127.0.0.1:{port} ({}, in {}), stopped when this process ends",
        bin.display(),
        dir.display()
    ));
    Ok(server)
}

/// Who runs the cluster: ourselves, unless we are root (`None`).
fn cluster_user() -> Result<Option<User>, String> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Ok(Some(user)) = User::from_name(name) {
            return Ok(Some(user));
        }
    }
    Err("initdb refuses root, and there is neither a postgres nor a nobody user to run it as".into())
}

/// Runs `command` as `user`. std drops root's supplementary groups when it sets a uid.
fn run_as<'c>(command: &'c mut Command, user: Option<&User>) -> &'c mut Command {
    if let Some(user) = user {
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    // Nothing of the caller's environment (PGDATA, PGPORT, a locale) may steer the cluster.
    command.env_clear().env("PATH", "/usr/bin:/bin").env("LC_ALL", "C")
}

struct Watchdog {
    child: Child,
    /// The server's.
    pid: u32,
}

fn init_and_run(bin: &Path, dir: &Path, user: Option<&User>) -> Result<(u16, Watchdog), String> {
    if let Some(user) = user {
        std::os::unix::fs::chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .map_err(|e| format!("handing {} to {}: {e}", dir.display(), user.name))?;
    }
    let initdb = run_as(Command::new(bin.join("initdb")).arg("-D").arg(dir.join("data")), user)
        .args(["-U", "postgres", "--auth=trust", "--no-locale", "--encoding=UTF8", "--no-sync"])
        .output()
        .map_err(|e| format!("running {}/initdb: {e}", bin.display()))?;
    if !initdb.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr).trim()));
    }
    let port = free_port()?;
    let mut child = run_as(Command::new("/bin/sh").args(["-c", WATCHDOG, "agentd-test-postgres"]), user)
        .arg(bin.join("postgres"))
        .arg(dir)
        .arg(port.to_string())
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the cluster's watchdog: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("the watchdog's stdout is piped")?;
    BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("reading the server's pid: {e}"))?;
    let pid = line.trim().parse().map_err(|_| format!("the watchdog printed {line:?}, not the server's pid"))?;
    Ok((port, Watchdog { child, pid }))
}

/// A port nothing listens on now; the server binds it a moment later.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener.local_addr().map(|addr| addr.port()).map_err(|e| format!("finding a free port: {e}"))
}

/// Polls until the server takes a query, failing at once with its log if it exits.
fn wait_until_ready(server: &Server, dir: &Path, pid: u32) -> Result<(), String> {
    const WITHIN: Duration = Duration::from_secs(60);
    let deadline = Instant::now() + WITHIN;
    let log = || std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
    loop {
        let Err(e) = server.admin("SELECT 1") else { return Ok(()) };
        if has_exited(pid) {
            return Err(format!("the private cluster's server exited: {}", log().trim()));
        }
        if Instant::now() >= deadline {
            return Err(format!("the private cluster took no query within {WITHIN:?} ({e}): {}", log().trim()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid`, a child of the watchdog (which reaps it only at the end), has exited:
/// it is then a zombie.
fn has_exited(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return true };
    // The state follows the command name, which is in parentheses and may hold spaces.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some("Z" | "X") | None)
}
