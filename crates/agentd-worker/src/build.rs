//! Installing a version's dependencies. The installer runs in a sandbox as untrusted code
//! (install scripts are code) under the build's own limits: its wall time, its memory, a
//! `/work` the size of the installed-size cap, and network only to the package indexes
//! through the egress proxy (none at all offline). What it installed is packed in the
//! sandbox as one `.tar.gz` in `/outputs`, checked and unpacked here like a bundle, and
//! uploaded; runs of every version with the same dependencies mount it read-only.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentd_bundle::{BundleLimits, DependencyPlan, PipSource};
use agentd_core::queue::{BuildLease, ClaimedBuild};
use agentd_sandbox::{Egress, OutputLine, RunLimits, RunOutcome, RunSpec, Stream, Termination};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Shared;
use crate::event_log::with_retries;
use crate::prepare;

/// The archive the install leaves in `/outputs`.
const ARCHIVE: &str = "dependencies.tar.gz";
/// Where the installer writes inside the sandbox; its content is what runs see at `/deps`.
const INSTALL_ROOT: &str = "/work/deps";
/// The host's CA bundle: builds trust what the machine trusts (an operator's mirror or
/// TLS-inspecting proxy included).
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Log lines are sent in batches this large at most, and at least this often.
const LOG_BATCH: usize = 200;
const LOG_EVERY: Duration = Duration::from_millis(500);
/// Most files an installed tree may hold.
const MAX_INSTALLED_ENTRIES: u32 = 200_000;
/// Installer lines kept for explaining a failure.
const TAIL_LINES: usize = 200;

pub(crate) async fn run_claimed(shared: &Shared, build: ClaimedBuild, stop: CancellationToken) {
    let span =
        tracing::info_span!("build", tenant_id = %build.tenant_id, build_id = %build.build_id, attempt = build.attempt);
    async move {
        let lease = build.lease();
        let mut log =
            BuildLog { shared, lease: lease.clone(), pending: Vec::new(), tail: VecDeque::new(), lost: false };
        let shutting_down = stop.clone();
        let ended = match build_tree(shared, &build, &mut log, stop).await {
            // Shutting down: hand it back for another worker, without spending a start.
            Ok(Built::Stopped) if !log.lost && shutting_down.is_cancelled() => {
                match with_retries("build release", || shared.source.build_release(&lease)).await {
                    Ok(_) => tracing::info!("worker shutting down; the build goes back to the queue"),
                    Err(err) => tracing::warn!(error = %err, "releasing the build failed; its lease will expire"),
                }
                return;
            }
            Ok(Built::Stopped) => return,
            Ok(Built::Ready { archive, installed_bytes }) => {
                log.system(format!("installed {} in all; uploading", human_bytes(installed_bytes)));
                log.flush().await;
                if log.lost {
                    return;
                }
                with_retries("build", || shared.source.build_ready(&lease, archive.clone(), installed_bytes)).await
            }
            Err(error) => {
                log.system(format!("build failed: {error}"));
                log.flush().await;
                if log.lost {
                    return;
                }
                with_retries("build", || shared.source.build_fail(&lease, &error)).await
            }
        };
        match ended {
            Ok(true) => tracing::info!("build finished"),
            Ok(false) => tracing::warn!("the build's lease expired before it finished; the result was not recorded"),
            Err(err) => {
                tracing::error!(error = %err, "recording the build failed; its lease will expire and it runs again")
            }
        }
    }
    .instrument(span)
    .await
}

enum Built {
    Ready {
        archive: Vec<u8>,
        installed_bytes: u64,
    },
    /// Shutting down or the lease was lost: record nothing.
    Stopped,
}

/// The log of one build: buffered, sent in batches, each send renewing the lease.
struct BuildLog<'a> {
    shared: &'a Shared,
    lease: BuildLease,
    pending: Vec<(String, String)>,
    /// The installer's last lines, sent or not, for saying why it failed.
    tail: VecDeque<(String, String)>,
    /// The lease is someone else's now.
    lost: bool,
}

impl BuildLog<'_> {
    fn system(&mut self, message: String) {
        self.pending.push(("system".to_owned(), message));
    }

    fn line(&mut self, line: OutputLine) {
        let stream = match line.stream {
            Stream::Stdout => "stdout",
            Stream::Stderr | Stream::Events => "stderr",
        };
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back((stream.to_owned(), line.line.clone()));
        self.pending.push((stream.to_owned(), line.line));
    }

    /// Sends what is buffered (nothing: a heartbeat). A failed send keeps the lines for
    /// the next one; a build log is worth less than the build, so it does not stop it.
    async fn flush(&mut self) {
        let lease_length = self.shared.settings.lease;
        let send = || self.shared.source.build_log(&self.lease, &self.pending, lease_length);
        match with_retries("build log", send).await {
            Ok(true) => self.pending.clear(),
            Ok(false) => self.lost = true,
            Err(err) => tracing::warn!(error = %err, "the build's log could not be sent; keeping it for the next try"),
        }
    }
}

async fn build_tree(
    shared: &Shared,
    build: &ClaimedBuild,
    log: &mut BuildLog<'_>,
    stop: CancellationToken,
) -> Result<Built, String> {
    let plan: DependencyPlan =
        serde_json::from_value(build.plan.clone()).map_err(|e| format!("the build plan cannot be read ({e})"))?;
    let offline = build.indexes.offline || is_offline(&plan);
    log.system(format!(
        "{}{} (attempt {}; at most {} s, {} MiB of memory, {} installed)",
        plan.describe(),
        if offline && !is_offline(&plan) { " (offline: the platform allows no network for builds)" } else { "" },
        build.attempt,
        build.timeout_s,
        build.memory_mb,
        human_bytes(build.max_bytes),
    ));
    log.flush().await;
    let bundle = prepare::bundle_dir(shared, &build.bundle_digest)
        .await
        .map_err(|e| format!("the platform could not prepare the bundle: {e}"))?;
    let outputs = tempfile::Builder::new()
        .prefix(&format!("{}-{}-", build.build_id, build.attempt))
        .tempdir_in(shared.sandbox.instance_dir())
        .map_err(|e| format!("the platform could not create the build's files: {e}"))?;
    let spec = build_spec(shared, build, &plan, offline, bundle, outputs.path().to_path_buf())?;
    let outcome = match sandboxed(shared, log, spec, stop).await {
        Sandboxed::Ended(outcome) => outcome,
        Sandboxed::Stopped => return Ok(Built::Stopped),
        Sandboxed::Failed(error) => return Err(error),
    };
    for refused in &outcome.egress_refusals {
        log.system(format!("the egress proxy refused {refused}"));
    }
    if let Some(reason) = failure(&outcome, build, log) {
        return Err(with_refusals(reason, &outcome.egress_refusals));
    }
    let Some(file) = outcome.outputs.iter().find(|f| f.name == ARCHIVE) else {
        return Err("the installer finished without leaving the installed tree".to_owned());
    };
    let archive = tokio::fs::read(&file.path).await.map_err(|e| format!("the installed tree cannot be read: {e}"))?;
    // Unpacked here once (this worker's runs use it next) and measured on the way: the
    // tree obeys every rule of a bundle, since the installer was untrusted.
    let limits = BundleLimits {
        max_bundle_bytes: build.max_bytes.max(1),
        max_unpacked_bytes: build.max_bytes.max(1),
        max_entries: MAX_INSTALLED_ENTRIES,
    };
    let refused = |e: agentd_bundle::BundleError| match e {
        agentd_bundle::BundleError::TooLarge { .. } => size_cap(build),
        other => format!("the installed tree was refused: {other}"),
    };
    let installed_bytes = agentd_bundle::inspect_tree(&archive, &limits).map_err(refused)?;
    let digest = agentd_bundle::digest(&archive);
    if let Err(err) = prepare::unpack_dependencies(shared, &digest, archive.clone()).await {
        // Runs fetch it again if they need it; the build itself is sound.
        tracing::warn!(error = %err, "the installed tree could not be unpacked for this worker's runs");
    }
    Ok(Built::Ready { archive, installed_bytes })
}

enum Sandboxed {
    Ended(RunOutcome),
    Stopped,
    Failed(String),
}

/// Runs the installer, streaming its output to the build log every [`LOG_EVERY`]; each
/// send renews the lease, and a quiet installer still sends an empty one every third of
/// the lease.
async fn sandboxed(shared: &Shared, log: &mut BuildLog<'_>, spec: RunSpec, stop: CancellationToken) -> Sandboxed {
    let (tx, mut lines) = mpsc::channel::<OutputLine>(1024);
    let cancel = CancellationToken::new();
    let run = {
        let cancel = cancel.clone();
        async move { shared.sandbox.run(spec, tx, cancel).await }
    };
    tokio::pin!(run);
    let mut tick = tokio::time::interval(LOG_EVERY);
    let mut sent_at = tokio::time::Instant::now();
    let mut result = None;
    let mut lines_open = true;
    let mut stopped = false;
    while result.is_none() || lines_open {
        tokio::select! {
            done = &mut run, if result.is_none() => result = Some(done),
            line = lines.recv(), if lines_open => match line {
                Some(line) => {
                    log.line(line);
                    if log.pending.len() >= LOG_BATCH {
                        log.flush().await;
                        sent_at = tokio::time::Instant::now();
                    }
                }
                None => lines_open = false,
            },
            _ = tick.tick() => {
                if !log.pending.is_empty() || sent_at.elapsed() >= shared.settings.lease / 3 {
                    log.flush().await;
                    sent_at = tokio::time::Instant::now();
                }
                if log.lost && !cancel.is_cancelled() {
                    cancel.cancel();
                }
            }
            _ = stop.cancelled(), if !cancel.is_cancelled() => {
                stopped = true;
                cancel.cancel();
            }
        }
    }
    log.flush().await;
    if stopped || log.lost {
        return Sandboxed::Stopped;
    }
    match result {
        Some(Ok(outcome)) => Sandboxed::Ended(outcome),
        Some(Err(err)) => {
            tracing::error!(error = ?err, "the sandbox failed to run the install");
            Sandboxed::Failed(format!("the platform could not run the install: {}", err.summary()))
        }
        None => Sandboxed::Failed("the install ended without an outcome".to_owned()),
    }
}

/// Why a finished install failed, in words a person can act on; `None` when it worked.
fn failure(outcome: &RunOutcome, build: &ClaimedBuild, log: &BuildLog<'_>) -> Option<String> {
    let said = |needle: &str| log_mentions(log, needle);
    match outcome.termination {
        Termination::Exited(0) => None,
        Termination::TimedOut => {
            Some(format!("the install took longer than build_timeout_s = {} s and was stopped", build.timeout_s))
        }
        Termination::MemoryLimit => {
            Some(format!("the install ran out of memory (build_memory_mb = {} MiB)", build.memory_mb))
        }
        Termination::OutputLimit => Some("the install printed more output than a build may keep".to_owned()),
        Termination::Cancelled => Some("the install was cancelled".to_owned()),
        Termination::Signaled(signal) => Some(format!("the installer was killed by signal {signal}")),
        Termination::Exited(_) if said("No space left on device") || said("ENOSPC") => Some(size_cap(build)),
        Termination::Exited(code) => Some(match last_error_line(log) {
            Some(line) => format!("the installer exited with code {code}: {line}"),
            None => format!("the installer exited with code {code}; see the build log"),
        }),
    }
}

/// A failure's reason with what the egress proxy refused, which is often the cause (an
/// index that resolves to an address the platform keeps agents from).
fn with_refusals(reason: String, refusals: &[String]) -> String {
    let Some(first) = refusals.first() else { return reason };
    let more = match refusals.len() {
        1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    let hint = match first.contains("private or reserved") {
        true => "; the operator can allow that network for egress with --egress-allowed-networks",
        false => "; builds may reach only the package indexes the operator configured",
    };
    format!("{reason} (the egress proxy refused {first}{more}{hint})")
}

fn size_cap(build: &ClaimedBuild) -> String {
    format!(
        "the installed dependencies exceed the size cap of {} (max_dependency_bytes, within max_storage_bytes)",
        human_bytes(build.max_bytes)
    )
}

fn log_mentions(log: &BuildLog<'_>, needle: &str) -> bool {
    log.recent().any(|(_, message)| message.contains(needle))
}

/// The installer's own summary of what went wrong: pip's last `ERROR:` line; else the
/// last line a failing install script wrote (npm's own closing lines only say that a
/// command failed and where its log went); else npm's error.
fn last_error_line(log: &BuildLog<'_>) -> Option<String> {
    let lines: Vec<&str> = log
        .recent()
        .filter(|(stream, _)| stream == "stderr")
        .map(|(_, m)| m.trim())
        .filter(|m| !m.is_empty())
        .collect();
    let is_npm = |m: &str| m.starts_with("npm error") || m.starts_with("npm ERR!") || m.starts_with("npm warn");
    let chosen = lines
        .iter()
        .rev()
        .find(|m| m.starts_with("ERROR"))
        .or_else(|| lines.iter().rev().find(|m| !is_npm(m)))
        .or_else(|| lines.iter().rev().find(|m| is_npm(m) && !m.contains("A complete log")))?;
    Some(crate::outcome::truncate(chosen, 300).to_owned())
}

impl BuildLog<'_> {
    /// What the installer said last.
    fn recent(&self) -> impl Iterator<Item = &(String, String)> {
        self.tail.iter()
    }
}

fn is_offline(plan: &DependencyPlan) -> bool {
    match plan {
        DependencyPlan::Pip { offline, .. } | DependencyPlan::Npm { offline, .. } => *offline,
    }
}

/// The sandbox spec of an install: `sh -c SCRIPT sh INSTALLER…`, where the script runs
/// the installer (`"$@"`) and packs what it installed.
fn build_spec(
    shared: &Shared,
    build: &ClaimedBuild,
    plan: &DependencyPlan,
    offline: bool,
    bundle: PathBuf,
    outputs: PathBuf,
) -> Result<RunSpec, String> {
    let shell = shared.runtimes.shell.clone().ok_or("no shell is installed on this worker")?;
    let (script, installer) = match plan {
        DependencyPlan::Pip { source, .. } => {
            let python = shared.runtimes.python.clone().ok_or("no python interpreter is installed on this worker")?;
            let script = format!(
                "set -eu; mkdir -p {INSTALL_ROOT}/python; \"$1\" --version; \"$@\"; \
                 cd {INSTALL_ROOT}; exec tar -czf /outputs/{ARCHIVE} ."
            );
            (script, pip_command(&python, source, offline, &build.indexes.python_index_url))
        }
        DependencyPlan::Npm { locked, .. } => {
            // The whole bundle is copied so that `file:` references resolve as written.
            let script = format!(
                "set -eu; mkdir -p {INSTALL_ROOT}; cp -R /agent/. {INSTALL_ROOT}/; cd {INSTALL_ROOT}; \
                 node --version; \"$@\"; mkdir -p node_modules; exec tar -czf /outputs/{ARCHIVE} node_modules"
            );
            (script, npm_command(*locked, offline, &build.indexes.npm_registry))
        }
    };
    let mut env = vec![
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("HOME".to_owned(), "/work".to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("TMPDIR".to_owned(), "/tmp".to_owned()),
    ];
    if Path::new(HOST_CA_BUNDLE).is_file() {
        for name in ["SSL_CERT_FILE", "PIP_CERT", "NODE_EXTRA_CA_CERTS"] {
            env.push((name.to_owned(), HOST_CA_BUNDLE.to_owned()));
        }
    }
    let mut args = vec!["-c".to_owned(), script, "sh".to_owned()];
    args.extend(installer);
    let egress = match offline {
        true => Egress::Denied,
        false => Egress::AllowHosts(build.indexes.hosts.clone()),
    };
    Ok(RunSpec {
        program: shell,
        args,
        env,
        bundle_dir: bundle,
        extra_ro_mounts: Vec::new(),
        stdin: Vec::new(),
        limits: RunLimits {
            wall_timeout: Duration::from_secs(u64::from(build.timeout_s)),
            max_output_bytes: 16 << 20,
            max_line_bytes: 16 << 10,
            tmp_bytes: 512 << 20,
            // Filling /work to its cap is what "too big" looks like from inside.
            work_bytes: build.max_bytes.max(1 << 20),
            outputs_bytes: build.max_bytes.max(1 << 20),
            memory_bytes: u64::from(build.memory_mb) << 20,
            max_pids: 512,
            cpu_millis_per_sec: None,
        },
        egress,
        // An install gets no token and no way to the API.
        host_forward: None,
        collect_outputs: Some(outputs),
    })
}

fn pip_command(python: &str, source: &PipSource, offline: bool, index_url: &str) -> Vec<String> {
    let mut command: Vec<String> = [
        python,
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--no-warn-script-location",
        "--progress-bar",
        "off",
        "--target",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    command.push(format!("{INSTALL_ROOT}/python"));
    match offline {
        true => command.extend(["--no-index", "--find-links", "/agent/wheels"].map(str::to_owned)),
        false => command.extend(["--index-url".to_owned(), index_url.to_owned()]),
    }
    match source {
        PipSource::RequirementsLock => command.extend(["-r", "/agent/requirements.lock"].map(str::to_owned)),
        PipSource::RequirementsTxt => command.extend(["-r", "/agent/requirements.txt"].map(str::to_owned)),
        PipSource::Pyproject { requirements } => {
            command.push("--".to_owned());
            command.extend(requirements.iter().cloned());
        }
    }
    command
}

fn npm_command(locked: bool, offline: bool, registry: &str) -> Vec<String> {
    let mut command: Vec<String> = vec!["npm".to_owned(), if locked { "ci" } else { "install" }.to_owned()];
    command.extend(
        ["--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier", "--cache", "/tmp/npm-cache"]
            .map(str::to_owned),
    );
    command.extend(["--registry".to_owned(), registry.to_owned()]);
    if offline {
        command.push("--offline".to_owned());
    }
    command
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_installs_from_the_index_or_only_from_vendored_wheels() {
        let online = pip_command("/usr/bin/python3", &PipSource::RequirementsTxt, false, "https://pypi.org/simple");
        assert!(online.windows(2).any(|w| w == ["--index-url", "https://pypi.org/simple"]));
        assert!(online.ends_with(&["-r".to_owned(), "/agent/requirements.txt".to_owned()]));
        let offline = pip_command("/usr/bin/python3", &PipSource::RequirementsLock, true, "https://pypi.org/simple");
        assert!(offline.windows(3).any(|w| w == ["--no-index", "--find-links", "/agent/wheels"]));
        assert!(!offline.iter().any(|a| a == "--index-url"));
        let listed = PipSource::Pyproject { requirements: vec!["-e .".into(), "six".into()] };
        let from_pyproject = pip_command("/usr/bin/python3", &listed, false, "https://pypi.org/simple");
        // After `--`, nothing a pyproject lists can be read as an option.
        assert!(from_pyproject.ends_with(&["--".to_owned(), "-e .".to_owned(), "six".to_owned()]));
    }

    #[test]
    fn npm_uses_ci_with_a_lock_and_the_configured_registry() {
        let locked = npm_command(true, false, "https://registry.npmjs.org/");
        assert_eq!(locked[..2], ["npm", "ci"]);
        assert!(locked.windows(2).any(|w| w == ["--registry", "https://registry.npmjs.org/"]));
        assert_eq!(npm_command(false, true, "r")[1], "install");
        assert!(npm_command(false, true, "r").contains(&"--offline".to_owned()));
    }
}
