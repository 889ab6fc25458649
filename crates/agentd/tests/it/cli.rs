//! The client commands, run as a user runs them: the real `agentd` binary against a real
//! server, with its own config dir, checking stdout, stderr, exit codes and the stored
//! credentials file.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use agentd_test_support::{Backend, on_both_stores};
use serde_json::Value;
use tempfile::TempDir;

use crate::harness::{TestApp, bin, examples_dir};

/// Upper bound for one CLI command; `--wait` on a short agent ends far sooner.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

/// What one run of the binary showed.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A user's shell: an empty config dir and the server to talk to.
pub struct Shell {
    config: TempDir,
    server: String,
}

impl Shell {
    pub fn new(server: &str) -> Shell {
        let config = tempfile::tempdir().unwrap_or_else(|e| panic!("temp config dir: {e}"));
        Shell { config, server: server.to_owned() }
    }

    /// Runs `agentd <args>` with this shell's config dir, `AGENTD_SERVER` set to its
    /// server, and nothing inherited that could change which credentials are used.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None).await
    }

    /// [`Shell::run`] with `stdin` (if any) piped into the command.
    pub async fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        use tokio::io::AsyncWriteExt;
        let mut command = tokio::process::Command::new(bin());
        command
            .args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("HOME", self.config.path())
            .env("AGENTD_SERVER", &self.server)
            .env_remove("AGENTD_TOKEN")
            .env_remove("AGENTD_EMAIL")
            .env_remove("AGENTD_PASSWORD")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin().display()));
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).await.unwrap_or_else(|e| panic!("write the command's stdin: {e}"));
        }
        let output = tokio::time::timeout(COMMAND_DEADLINE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("`agentd {}` did not finish in time", args.join(" ")))
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin().display()));
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The shell command line that runs `agentd <args>` as [`Shell::run`] does, for a
    /// terminal driven by another program.
    pub fn command_line(&self, args: &[&str]) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let config = self.config.path().to_string_lossy().into_owned();
        let mut line = format!(
            "env -u AGENTD_TOKEN -u AGENTD_EMAIL -u AGENTD_PASSWORD XDG_CONFIG_HOME={} HOME={} AGENTD_SERVER={} {}",
            quote(&config),
            quote(&config),
            quote(&self.server),
            quote(&bin().to_string_lossy())
        );
        for arg in args {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        line
    }

    /// Runs a command that must succeed.
    pub async fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, Some(0), "`agentd {}` failed: {run:#?}", args.join(" "));
        run
    }

    pub async fn signup(&self) {
        self.ok(&[
            "signup",
            "--email",
            "dev@example.com",
            "--password",
            "correct horse battery staple",
            "--workspace-name",
            "Acme",
            "--workspace-slug",
            "acme",
        ])
        .await;
    }

    fn credentials_path(&self) -> std::path::PathBuf {
        self.config.path().join("agentd").join("credentials.json")
    }
}

fn example(name: &str) -> String {
    let dir = examples_dir().join(name);
    assert!(dir.join("agent.toml").is_file(), "missing example {}", dir.display());
    dir.to_string_lossy().into_owned()
}

pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text}"))
}

on_both_stores!(signup_deploy_invoke_and_logs_work_from_the_command_line);
async fn signup_deploy_invoke_and_logs_work_from_the_command_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    assert_credentials_are_private(&shell.credentials_path(), &app.base_url);

    let deployed = shell.ok(&["agents", "deploy", &example("python-echo")]).await;
    assert!(deployed.stdout.contains("python-echo version 1"), "{deployed:#?}");

    let listed = shell.ok(&["agents", "list"]).await;
    assert!(listed.stdout.lines().any(|l| l.starts_with("python-echo ")), "{listed:#?}");

    let invoked = shell.ok(&["invoke", "python-echo", "--input", r#"{"x":1}"#, "--wait", "--json"]).await;
    let invocation = json(&invoked.stdout);
    assert_eq!(invocation["status"], "succeeded", "{invoked:#?}");
    assert_eq!(invocation["output"], serde_json::json!({"echo": {"x": 1}}));

    let id = invocation["id"].as_str().unwrap_or_default();
    let logs = shell.ok(&["logs", id]).await;
    let echoing = logs.stdout.lines().find(|l| l.ends_with(" echoing"));
    let echoing = echoing.unwrap_or_else(|| panic!("no `echoing` log line: {logs:#?}"));
    let seq = echoing.split_whitespace().next().unwrap_or_default();
    assert!(seq.parse::<u64>().is_ok(), "line should start with its seq: {echoing}");
}

fn assert_credentials_are_private(path: &Path, server: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("signup should store {}: {e}", path.display()));
    let stored = json(&text);
    assert_eq!(stored["default_profile"], "default", "{text}");
    assert_eq!(stored["profiles"]["default"]["server"], server.trim_end_matches('/'));
    assert!(stored["profiles"]["default"]["token"].as_str().is_some_and(|t| t.starts_with("agd_")), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600), "credentials must be readable by their owner only");
    }
}

on_both_stores!(invoke_wait_prints_the_agents_output);
async fn invoke_wait_prints_the_agents_output(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    shell.ok(&["agents", "deploy", &example("node-greet"), "--slug", "greet"]).await;

    let greeted = shell.ok(&["invoke", "greet", "--input", r#"{"name":"ada"}"#, "--wait"]).await;
    assert_eq!(json(&greeted.stdout), serde_json::json!({"greeting": "hello, ada"}));
}

on_both_stores!(a_run_that_fails_makes_invoke_wait_exit_1);
async fn a_run_that_fails_makes_invoke_wait_exit_1(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    let agent = tempfile::tempdir().unwrap_or_else(|e| panic!("temp agent dir: {e}"));
    write_failing_agent(agent.path());
    let dir = agent.path().to_string_lossy().into_owned();
    shell.ok(&["agents", "deploy", &dir]).await;

    let run = shell.run(&["invoke", "fails", "--wait"]).await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("failed"), "{run:#?}");
}

fn write_failing_agent(dir: &Path) {
    let manifest = "name = \"fails\"\nruntime = \"shell\"\nentrypoint = \"run.sh\"\n";
    let script = "#!/bin/sh\necho 'about to fail' >&2\nexit 3\n";
    let written =
        std::fs::write(dir.join("agent.toml"), manifest).and_then(|()| std::fs::write(dir.join("run.sh"), script));
    written.unwrap_or_else(|e| panic!("write the failing agent: {e}"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let executable = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(dir.join("run.sh"), executable).unwrap_or_else(|e| panic!("chmod run.sh: {e}"));
    }
}

on_both_stores!(invoking_a_missing_agent_exits_4_with_the_not_found_code);
async fn invoking_a_missing_agent_exits_4_with_the_not_found_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;

    let run = shell.run(&["invoke", "no-such-agent", "--wait"]).await;
    assert_eq!(run.code, Some(4), "{run:#?}");
    assert!(run.stderr.starts_with("error: "), "{run:#?}");
    assert!(run.stderr.contains("code not_found"), "{run:#?}");
    assert!(run.stderr.contains("request "), "the request id helps support: {run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
}

#[tokio::test]
async fn a_server_that_is_not_listening_exits_6() {
    // Bind then drop a listener: the port is free and nothing accepts on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind a free port: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    drop(listener);
    let shell = Shell::new("http://127.0.0.1:9");

    let server = format!("http://127.0.0.1:{port}");
    let run = shell.run(&["agents", "list", "--server", &server, "--token", "agd_x_y"]).await;
    assert_eq!(run.code, Some(6), "{run:#?}");
    assert!(run.stderr.contains("cannot reach the server"), "{run:#?}");
}

on_both_stores!(commands_without_credentials_exit_3_and_say_how_to_sign_in);
async fn commands_without_credentials_exit_3_and_say_how_to_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);

    let run = shell.run(&["agents", "list"]).await;
    assert_eq!(run.code, Some(3), "{run:#?}");
    assert!(run.stderr.contains("agentd signup"), "{run:#?}");
}

on_both_stores!(a_stored_token_is_not_sent_to_another_server);
async fn a_stored_token_is_not_sent_to_another_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;

    let elsewhere = shell.run(&["agents", "list", "--server", "http://127.0.0.1:9"]).await;
    assert_eq!(elsewhere.code, Some(3), "{elsewhere:#?}");
    assert!(elsewhere.stderr.contains("no credentials for http://127.0.0.1:9"), "{elsewhere:#?}");
}

on_both_stores!(secrets_are_set_from_stdin_listed_and_deleted_from_the_command_line);
async fn secrets_are_set_from_stdin_listed_and_deleted_from_the_command_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    shell.ok(&["agents", "deploy", &example("shell-wc")]).await;

    let set =
        shell.run_with_stdin(&["agents", "secrets", "set", "shell-wc", "API_KEY"], Some(b"sk-from-stdin\n")).await;
    assert_eq!(set.code, Some(0), "{set:#?}");
    assert!(set.stdout.contains("Created secret API_KEY"), "{set:#?}");
    let again = shell.ok(&["agents", "secrets", "set", "shell-wc", "API_KEY", "--value", "sk-from-flag"]).await;
    assert!(again.stdout.contains("Updated secret API_KEY"), "{again:#?}");

    let listed = shell.ok(&["agents", "secrets", "list", "shell-wc"]).await;
    assert!(listed.stdout.lines().any(|l| l.starts_with("API_KEY ")), "{listed:#?}");
    let as_json = json(&shell.ok(&["agents", "secrets", "list", "shell-wc", "--json"]).await.stdout);
    assert_eq!(as_json["data"][0]["name"], "API_KEY");
    for shown in [&set.stdout, &again.stdout, &listed.stdout, &as_json.to_string()] {
        assert!(!shown.contains("sk-from"), "a value was printed: {shown}");
    }

    let refused = shell.run(&["agents", "secrets", "set", "shell-wc", "PATH", "--value", "x"]).await;
    assert_eq!(refused.code, Some(2), "{refused:#?}");
    assert!(refused.stderr.contains("invalid_secret_name"), "{refused:#?}");
    shell.ok(&["agents", "secrets", "delete", "shell-wc", "API_KEY"]).await;
    let gone = shell.run(&["agents", "secrets", "delete", "shell-wc", "API_KEY"]).await;
    assert_eq!(gone.code, Some(4), "{gone:#?}");
}

on_both_stores!(with_json_a_failure_is_a_problem_document_on_stderr);
async fn with_json_a_failure_is_a_problem_document_on_stderr(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    let signed_out = shell.run(&["agents", "list", "--json"]).await;
    assert_eq!(signed_out.code, Some(3), "{signed_out:#?}");
    let problem = json(&signed_out.stderr);
    assert_eq!(problem["code"], "signed_out", "{signed_out:#?}");

    shell.signup().await;
    let missing = shell.run(&["invoke", "no-such-agent", "--json"]).await;
    assert_eq!(missing.code, Some(4), "{missing:#?}");
    assert!(missing.stdout.is_empty(), "{missing:#?}");
    let problem = json(&missing.stderr);
    assert_eq!(problem["status"], 404, "the server's own document: {problem}");
    assert_eq!(problem["code"], "not_found");
    assert!(problem["request_id"].as_str().is_some_and(|id| id.starts_with("req_")), "{problem}");
}

on_both_stores!(a_command_writing_into_a_closed_pipe_ends_quietly);
async fn a_command_writing_into_a_closed_pipe_ends_quietly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    // The reader is gone before the command starts, so its first write meets a closed
    // pipe: it must end by SIGPIPE (141), not panic (101).
    let script = format!(
        "{{ sleep 0.5; {}; }} | true; echo \"rc=${{PIPESTATUS[0]}}\"",
        shell.command_line(&["agents", "list", "--json"])
    );
    let out = std::process::Command::new("bash").args(["-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.trim(), "rc=141", "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [("bash", "_agentd()"), ("zsh", "#compdef agentd"), ("fish", "complete -c agentd")] {
        let out = std::process::Command::new(bin()).args(["completions", shell]).output().unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}: {out:?}");
        assert!(script.contains(marker) && script.contains("invoke"), "{shell}: {script}");
    }
}

on_both_stores!(logs_of_a_queued_run_say_it_has_not_started);
async fn logs_of_a_queued_run_say_it_has_not_started(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    shell.ok(&["agents", "deploy", &example("shell-wc")]).await;
    let started = shell.ok(&["invoke", "shell-wc", "--input", "{}"]).await;
    let id = started.stdout.split_whitespace().next().unwrap().to_owned();
    let logs = shell.ok(&["logs", &id]).await;
    assert!(logs.stderr.contains("is queued") && logs.stderr.contains("no logs yet"), "{logs:#?}");
}

on_both_stores!(signing_in_to_a_second_server_keeps_the_first_ones_credentials);
async fn signing_in_to_a_second_server_keeps_the_first_ones_credentials(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = TestApp::spawn(backend).await;
    let shell = Shell::new(&first.base_url);
    shell.signup().await;
    let other = second.base_url.as_str();
    // The password from stdin, as a script pipes it.
    let signed = shell
        .run_with_stdin(
            &["signup", "--server", other, "--email", "b@example.com", "--workspace-name", "Beta"],
            Some(b"a long passphrase for beta\n"),
        )
        .await;
    assert_eq!(signed.code, Some(0), "{signed:#?}");
    let profile = signed.stdout.split("as profile ").nth(1).and_then(|r| r.split(';').next()).unwrap().to_owned();
    assert_ne!(profile, "default", "{signed:#?}");

    // Each server's credentials are used for it: by its URL (as `localhost` too) or by
    // the profile's name.
    let me = json(&shell.ok(&["whoami", "--json", "--server", other]).await.stdout);
    assert_eq!(me["tenant"]["slug"], "beta", "{me}");
    let by_url = json(&shell.ok(&["whoami", "--json", "--server", &first.base_url]).await.stdout);
    assert_eq!(by_url["tenant"]["slug"], "acme", "{by_url}");
    let as_localhost = first.base_url.replace("127.0.0.1", "localhost");
    let by_name = json(&shell.ok(&["whoami", "--json", "--server", &as_localhost]).await.stdout);
    assert_eq!(by_name["tenant"]["slug"], "acme", "{by_name}");
    let by_profile = json(&shell.ok(&["whoami", "--json", "--profile", "default"]).await.stdout);
    assert_eq!(by_profile["tenant"]["slug"], "acme", "{by_profile}");
    // (`--server` because the shell's AGENTD_SERVER names the first server.)
    let named = shell.ok(&["whoami", "--profile", &profile, "--server", other]).await;
    assert!(named.stdout.contains(&format!("profile:   {profile}")), "{named:#?}");
    let unknown = shell.run(&["whoami", "--profile", "nope"]).await;
    assert_eq!(unknown.code, Some(3), "{unknown:#?}");
}

on_both_stores!(a_credentials_file_of_the_first_format_still_signs_in);
async fn a_credentials_file_of_the_first_format_still_signs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    let path = shell.credentials_path();
    let stored = json(&std::fs::read_to_string(&path).unwrap());
    let single = serde_json::json!({"server": stored["profiles"]["default"]["server"], "token": stored["profiles"]["default"]["token"]});
    std::fs::write(&path, single.to_string()).unwrap();
    let me = json(&shell.ok(&["whoami", "--json"]).await.stdout);
    assert_eq!(me["tenant"]["slug"], "acme", "{me}");
}

on_both_stores!(login_asks_for_the_password_on_a_terminal_without_echo);
async fn login_asks_for_the_password_on_a_terminal_without_echo(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    let command = shell.command_line(&["login", "--email", "dev@example.com"]);
    let Some(terminal) = crate::conversations::Terminal::start(&command) else { return };
    terminal.wait_for("Password: ", 1).await;
    terminal.type_line("correct horse battery staple");
    let screen = terminal.wait_for("EXIT=", 1).await;
    assert!(screen.contains("EXIT=0") && screen.contains("Signed in to acme"), "{screen}");
    assert!(!screen.contains("horse"), "the password was echoed: {screen}");
}

/// Everything a command wrote to a real terminal (tmux), escape sequences included.
async fn terminal_bytes(command: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("terminal.log");
    let done = dir.path().join("done");
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let socket = format!("agentd-terminal-{}-{n}", std::process::id());
    // The command waits for its output to be recorded before it starts.
    let script = format!("while [ ! -e {log:?} ]; do sleep 0.05; done; {command}; touch {done:?}; sleep 60");
    let started = std::process::Command::new("tmux")
        .args(["-L", &socket, "new-session", "-d", "-x", "120", "-y", "40", "sh", "-c", &script])
        .status();
    if !started.is_ok_and(|s| s.success()) {
        assert!(std::env::var_os("CI").is_none(), "tmux is needed for the terminal test and CI is set");
        eprintln!("skipping the terminal test: tmux cannot start here");
        return None;
    }
    let piped = std::process::Command::new("tmux")
        .args(["-L", &socket, "pipe-pane", "-t", "0", "-o", &format!("cat >> {log:?}")])
        .status();
    assert!(piped.is_ok_and(|s| s.success()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done.exists() {
        assert!(tokio::time::Instant::now() < deadline, "the command did not finish in the terminal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = std::process::Command::new("tmux").args(["-L", &socket, "kill-server"]).status();
    Some(String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned())
}

on_both_stores!(a_terminal_gets_colour_and_an_upload_progress_bar_and_no_color_turns_colour_off);
async fn a_terminal_gets_colour_and_an_upload_progress_bar_and_no_color_turns_colour_off(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    // A bundle big enough to need several chunks: the bar moves before it is cleared.
    let agent = tempfile::tempdir().unwrap();
    std::fs::write(agent.path().join("agent.toml"), "name = \"big\"\nruntime = \"shell\"\nentrypoint = \"run.sh\"\n")
        .unwrap();
    std::fs::write(agent.path().join("run.sh"), "#!/bin/sh\nprintf '{\"type\":\"output\",\"data\":1}\\n' >&3\n")
        .unwrap();
    let noise: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(agent.path().join("noise.bin"), noise).unwrap();
    let dir = agent.path().to_string_lossy().into_owned();

    let Some(deploy) = terminal_bytes(&shell.command_line(&["agents", "deploy", &dir])).await else { return };
    assert!(deploy.contains("uploading big") && deploy.contains("MiB"), "no progress bar: {deploy:?}");
    let invoke = shell.command_line(&["invoke", "big", "--input", "{}", "--wait"]);
    let coloured = terminal_bytes(&invoke).await.unwrap();
    assert!(coloured.contains("\u{1b}[32msucceeded"), "the status is green on a terminal: {coloured:?}");
    let plain = terminal_bytes(&format!("NO_COLOR=1 {invoke}")).await.unwrap();
    assert!(plain.contains("succeeded") && !plain.contains("\u{1b}[32m"), "NO_COLOR: {plain:?}");
    // Not a terminal: no colour, no bar.
    let piped = shell.ok(&["invoke", "big", "--input", "{}", "--wait"]).await;
    assert!(!piped.stderr.contains('\u{1b}'), "{piped:#?}");
}

on_both_stores!(invocations_limits_usage_and_agent_deletion_from_the_command_line);
async fn invocations_limits_usage_and_agent_deletion_from_the_command_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    shell.ok(&["agents", "deploy", &example("shell-wc")]).await;
    shell.ok(&["invoke", "shell-wc", "--input", "{}", "--wait"]).await;

    let listed = shell.ok(&["invocations", "list", "--agent", "shell-wc", "--status", "succeeded"]).await;
    let header = listed.stdout.lines().next().unwrap_or_default();
    assert!(header.starts_with("ID") && header.contains("STATUS"), "{listed:#?}");
    let id = listed.stdout.lines().nth(1).and_then(|l| l.split_whitespace().next()).unwrap().to_owned();
    assert!(id.starts_with("inv_"), "{listed:#?}");
    let none = json(&shell.ok(&["invocations", "list", "--status", "failed", "--json"]).await.stdout);
    assert_eq!(none["data"].as_array().map(Vec::len), Some(0), "{none}");
    let bad = shell.run(&["invocations", "list", "--status", "finished"]).await;
    assert_eq!(bad.code, Some(2), "{bad:#?}");
    let shown = shell.ok(&["invocations", "show", &id]).await;
    assert!(shown.stdout.contains("status:    succeeded"), "{shown:#?}");

    let limits = shell.ok(&["limits"]).await;
    assert!(limits.stdout.lines().any(|l| l.starts_with("max_agents") && l.contains("default")), "{limits:#?}");
    let usage = json(&shell.ok(&["usage", "--json"]).await.stdout);
    assert_eq!(usage["totals"]["succeeded"], 1, "{usage}");

    let unasked = shell.run(&["agents", "delete", "shell-wc"]).await;
    assert_eq!(unasked.code, Some(2), "a script must say --yes: {unasked:#?}");
    shell.ok(&["agents", "delete", "shell-wc", "--yes"]).await;
    let gone = shell.run(&["agents", "show", "shell-wc"]).await;
    assert_eq!(gone.code, Some(4), "{gone:#?}");
}
