//! `TestApp`: the real `agentd serve` binary on a free port with a temporary data dir,
//! driven over HTTP through `agentd-client`. The server binds port 0 and writes the
//! address it got to a file (`--address-file`), which the harness polls for. Dropping a
//! `TestApp` stops the server and checks that no sandboxed process of it is left running.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentd_api_types::{AgentVersion, CreateAgentRequest, Invocation, InvokeRequest, SignupRequest, SignupResponse};
use agentd_client::{Client, InvokeOptions};
use agentd_test_support::{Backend, TestDb};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_agentd"))
}

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/agents")
}

/// Rate limits high enough that no test trips one by accident: tests make many
/// requests with one key, and sign up every tenant from 127.0.0.1. A test of a limit
/// sets its own value, which comes later and wins.
pub const UNTHROTTLED: &[(&str, &str)] = &[
    ("AGENTD_LIMITS_REQUESTS_PER_SECOND", "1000000"),
    ("AGENTD_LIMITS_INVOCATIONS_PER_MINUTE", "1000000"),
    ("AGENTD_SIGNUPS_PER_HOUR_PER_IP", "1000000"),
    ("AGENTD_LOGINS_PER_MINUTE_PER_IP", "1000000"),
];

pub struct TestApp {
    pub base_url: String,
    pub data_dir: PathBuf,
    /// Holds the data dir (or the link to a shared one) and the address file.
    tmp: tempfile::TempDir,
    child: Option<Child>,
    env: Vec<(String, String)>,
    db_url: String,
    /// Everything the server processes of this app wrote to stderr, across restarts.
    log: Arc<Mutex<String>>,
    /// The database this app created (a replica shares another app's and owns none).
    _db: Option<TestDb>,
}

/// Where a replica keeps its files.
enum DataDir {
    /// The first app's, through a link of its own (replicas on a shared file system).
    Shared,
    /// A directory of its own (a replica on another machine).
    Separate,
}

/// A signed-up tenant: its owner's API key and a client using it.
pub struct TestTenant {
    pub client: Client,
    pub key: String,
    pub signup: SignupResponse,
}

impl TestApp {
    /// Starts a server on a fresh database of `backend`.
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, &[]).await
    }

    /// Starts the server with extra environment variables.
    pub async fn spawn_with(backend: Backend, env: &[(&str, &str)]) -> TestApp {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let db = TestDb::create(backend);
        let db_url = db.url.clone();
        let log = Arc::default();
        let mut app = TestApp { base_url: String::new(), data_dir, tmp, child: None, env, db_url, log, _db: Some(db) };
        app.start().await;
        app
    }

    async fn start(&mut self) {
        let address_file = self.tmp.path().join("address");
        match std::fs::remove_file(&address_file) {
            // A restart must not read the address of the server before it.
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing {}: {e}", address_file.display()),
        }
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--database-url", &self.db_url])
            .arg("--address-file")
            .arg(&address_file)
            .envs(UNTHROTTLED.iter().copied())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("AGENTD_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start agentd serve");
        let log = ServerLog::echo(child.stderr.take().expect("stderr is piped"), self.log.clone());
        let address = wait_for_address(&mut child, &address_file, log).await;
        self.base_url = format!("http://{address}");
        self.child = Some(child);
        let client = self.client();
        for _ in 0..100 {
            if client.healthz().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} never answered /healthz", self.base_url);
    }

    /// Starts a server on an existing data dir (a restored backup) and its SQLite
    /// database, `<data_dir>/agentd.db`, with `env`.
    pub async fn spawn_on_data_dir(data_dir: &Path, env: &[(&str, &str)]) -> TestApp {
        let tmp = tempfile::tempdir().expect("temp dir");
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let db_url = format!("sqlite://{}", data_dir.join("agentd.db").display());
        let data_dir = data_dir.to_path_buf();
        let log = Arc::default();
        let mut app = TestApp { base_url: String::new(), data_dir, tmp, child: None, env, db_url, log, _db: None };
        app.start().await;
        app
    }

    /// A second `serve` process on the same database, sharing this app's blob directory
    /// (as replicas on a shared filesystem do), reached through its own path so that
    /// each app's leftover-process check sees only its own children.
    pub async fn replica(&self) -> TestApp {
        self.start_replica(DataDir::Shared, &[]).await
    }

    /// A second `serve` process on the same database with its own, separate data dir (as
    /// a replica on another machine has) and `extra_env` on top of this app's environment.
    pub async fn replica_apart(&self, extra_env: &[(&str, &str)]) -> TestApp {
        self.start_replica(DataDir::Separate, extra_env).await
    }

    async fn start_replica(&self, data_dir: DataDir, extra_env: &[(&str, &str)]) -> TestApp {
        let tmp = tempfile::tempdir().expect("temp dir");
        let replica_data_dir = tmp.path().join("replica-data");
        match data_dir {
            DataDir::Shared => {
                std::os::unix::fs::symlink(&self.data_dir, &replica_data_dir).expect("link the shared data dir")
            }
            DataDir::Separate => {}
        }
        let data_dir = replica_data_dir;
        let mut env = self.env.clone();
        env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let db_url = self.db_url.clone();
        let log = Arc::default();
        let mut app = TestApp { base_url: String::new(), data_dir, tmp, child: None, env, db_url, log, _db: None };
        app.start().await;
        app
    }

    /// SIGTERM and wait: a clean shutdown.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait for agentd");
        }
    }

    /// SIGTERM without waiting: the server begins its graceful shutdown.
    pub fn signal_terminate(&self) {
        if let Some(child) = &self.child {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM agentd");
        }
    }

    /// SIGKILL: the server dies mid-whatever, as in a crash or an OOM kill.
    pub async fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill agentd");
            tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait for agentd");
        }
    }

    /// Starts the server again on the same data dir after `stop` or `crash`.
    pub async fn start_again(&mut self) {
        self.start().await;
    }

    /// Stops the server cleanly and starts it again on the same data dir.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    /// Sets (or, with `None`, removes) a variable of the server's environment for its
    /// next start.
    pub fn set_env(&mut self, name: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != name);
        if let Some(value) = value {
            self.env.push((name.to_owned(), value.to_owned()));
        }
    }

    /// What the server wrote to stderr so far (its log), across restarts.
    pub fn server_log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Runs `agentd admin ARGS` on this app's database and data dir, with `env` added.
    pub fn admin(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        Command::new(bin())
            .arg("admin")
            .args(args)
            .args(["--database-url", &self.db_url, "--data-dir"])
            .arg(&self.data_dir)
            .envs(env.iter().copied())
            .output()
            .expect("run agentd admin")
    }

    /// The database's URL, for a test that reads it behind the server's back.
    pub fn database_url(&self) -> &str {
        &self.db_url
    }

    /// The SQLite database file, when the app runs on SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.db_url.strip_prefix("sqlite://").map(PathBuf::from)
    }

    /// Runs `sql` on this app's database behind the server's back.
    pub async fn execute_sql(&self, sql: &str) {
        agentd_test_support::execute_sql(&self.db_url, sql).await;
    }

    /// The first column of the first row `sql` returns on this app's database, as text.
    pub async fn query_text(&self, sql: &str) -> Option<String> {
        agentd_test_support::query_text(&self.db_url, sql).await
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base_url).expect("client")
    }

    pub async fn signup(&self, slug: &str) -> TestTenant {
        let request = SignupRequest {
            email: format!("{slug}@example.com"),
            password: "correct horse battery staple".into(),
            workspace_name: format!("Workspace {slug}"),
            workspace_slug: slug.into(),
        };
        let signup = self.client().signup(&request).await.expect("signup");
        let key = signup.api_key.secret.clone();
        TestTenant { client: self.client().with_token(key.clone()), key, signup }
    }

    /// Creates agent `slug` and deploys the folder `dir` as its next version.
    pub async fn deploy_dir(&self, tenant: &TestTenant, slug: &str, dir: &Path) -> AgentVersion {
        if tenant.client.agent_get(slug).await.is_err() {
            let request = CreateAgentRequest { slug: slug.into(), ..CreateAgentRequest::default() };
            tenant.client.agent_create(&request).await.expect("create agent");
        }
        let bundle = agentd_bundle::pack_dir(dir).expect("pack bundle");
        tenant.client.version_upload(slug, bundle, true).await.expect("upload bundle")
    }

    /// Deploys `examples/agents/<name>` as agent `<name>`.
    pub async fn deploy_example(&self, tenant: &TestTenant, name: &str) -> AgentVersion {
        self.deploy_dir(tenant, name, &examples_dir().join(name)).await
    }

    /// Deploys a shell agent whose `run.sh` is `script`.
    pub async fn deploy_script(&self, tenant: &TestTenant, slug: &str, script: &str) -> AgentVersion {
        let dir = tempfile::tempdir().expect("temp dir");
        write_shell_agent(dir.path(), slug, script);
        self.deploy_dir(tenant, slug, dir.path()).await
    }

    /// A worker token made with the operator command, as an operator would.
    pub fn create_worker_token(&self) -> String {
        let out = Command::new(bin())
            .args(["admin", "workers", "create-token", "--name", "test", "--database-url", &self.db_url])
            .output()
            .expect("run agentd admin");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Starts `agentd worker` against this server; it is killed when dropped.
    pub fn spawn_worker(&self, token: &str, name: &str) -> RemoteWorker {
        self.spawn_worker_with(token, name, &[])
    }

    /// [`TestApp::spawn_worker`] with more flags.
    pub fn spawn_worker_with(&self, token: &str, name: &str, extra_args: &[&str]) -> RemoteWorker {
        let dir = self.data_dir.join(format!("remote-{name}"));
        let child = Command::new(bin())
            .args(["worker", "--server", &self.base_url, "--token", token, "--lease-s", "2", "--data-dir"])
            .arg(&dir)
            .args(extra_args)
            .env("AGENTD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start agentd worker");
        RemoteWorker { child }
    }

    /// Every process on the host whose command line mentions this app's data dir.
    pub fn processes_of_this_app(&self) -> Vec<String> {
        let needle = self.data_dir.to_string_lossy().into_owned();
        let server = self.child.as_ref().map(|c| c.id().to_string());
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) || Some(&name) == server.as_ref() {
                continue;
            }
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains(&needle) {
                    found.push(format!("{name}: {cmdline}"));
                }
            }
        }
        found
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            // Killing the server kills its sandboxes (their init dies with its parent).
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !self.processes_of_this_app().is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let left = self.processes_of_this_app();
            assert!(left.is_empty(), "sandboxed processes outlived the server: {left:?}");
        }
    }
}

/// The server's stderr, echoed into the test's output line by line and appended to
/// `all`. Until the server listens, the lines are also kept, for the failure of a server
/// that exits first.
struct ServerLog {
    kept: Arc<Mutex<Option<String>>>,
    echo: std::thread::JoinHandle<()>,
}

impl ServerLog {
    fn echo(stderr: std::process::ChildStderr, all: Arc<Mutex<String>>) -> ServerLog {
        let kept = Arc::new(Mutex::new(Some(String::new())));
        let keep = kept.clone();
        let echo = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[agentd] {line}");
                let mut all = all.lock().expect("log lock");
                all.push_str(&line);
                all.push('\n');
                if let Some(kept) = keep.lock().expect("log lock").as_mut() {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
        });
        ServerLog { kept, echo }
    }

    /// The server listens: its log is echoed from now on, not kept.
    fn stop_keeping(self) {
        self.kept.lock().expect("log lock").take();
    }

    /// Everything the server wrote, once it has exited (its stderr is closed).
    fn all(self) -> String {
        self.echo.join().expect("the log echo thread");
        self.kept.lock().expect("log lock").take().unwrap_or_default()
    }
}

/// Polls for the address `serve` writes (by a rename, so never half of it) once it
/// listens, for at most 60 s. A server that exits first fails the test with its log.
async fn wait_for_address(child: &mut Child, file: &Path, log: ServerLog) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(address) = std::fs::read_to_string(file) {
            log.stop_keeping();
            return address.trim().to_owned();
        }
        if let Some(status) = child.try_wait().expect("check on agentd serve") {
            let log = tokio::task::spawn_blocking(move || log.all()).await.expect("join");
            panic!("agentd serve exited ({status}) before it listened; its log:\n{log}");
        }
        assert!(tokio::time::Instant::now() < deadline, "agentd serve wrote no {} within 60 s", file.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An `agentd worker` process.
pub struct RemoteWorker {
    child: Child,
}

impl RemoteWorker {
    /// SIGKILL, as when the machine dies.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RemoteWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn write_shell_agent(dir: &Path, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(
        dir.join("agent.toml"),
        format!("name = \"{name}\"\nruntime = \"shell\"\nentrypoint = \"run.sh\"\n"),
    )
    .expect("write manifest");
    let run = dir.join("run.sh");
    std::fs::write(&run, format!("#!/bin/sh\n{script}\n")).expect("write script");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Invokes and waits (server side) up to 30 s for the run to settle.
pub async fn invoke_and_wait(tenant: &TestTenant, slug: &str, input: serde_json::Value) -> Invocation {
    let request = InvokeRequest { input, ..InvokeRequest::default() };
    let options = InvokeOptions { wait_s: Some(30), ..InvokeOptions::default() };
    tenant.client.invoke(slug, &request, &options).await.expect("invoke")
}

/// Polls until `done` holds for the invocation, for at most `within`.
pub async fn poll_invocation(
    tenant: &TestTenant,
    id: &str,
    within: Duration,
    done: impl Fn(&Invocation) -> bool,
) -> Invocation {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let invocation = tenant.client.invocation_get(id).await.expect("get invocation");
        if done(&invocation) || tokio::time::Instant::now() >= deadline {
            return invocation;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// All log lines of an invocation, as text.
pub async fn log_messages(tenant: &TestTenant, id: &str) -> Vec<String> {
    let page = tenant.client.invocation_logs(id, None, None).await.expect("logs");
    page.data.into_iter().filter_map(|e| e.message).collect()
}
