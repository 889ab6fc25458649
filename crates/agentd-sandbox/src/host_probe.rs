//! What the host supports, checked once in `Sandbox::new`: the namespaces a run needs
//! (missing ones are an error, proven by running the init program in probe mode, which
//! also finds out whether overlays mount in a user namespace and whether a seccomp filter
//! installs; see `init_probe.rs`). The optional mechanisms are gathered in
//! `host_support.rs`.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::Uid;

use crate::INIT_ARG;
use crate::error::SandboxError;
use crate::init_probe::{OVERLAY_OK, PROBE_ANSWER, PROBE_ARG, PROBE_DIRS, SECCOMP_OK};
use crate::sandbox::SandboxSettings;

const NAMESPACES: &[&str] = &["user", "mnt", "pid", "net", "ipc", "uts"];
/// A sandbox init answers the probe in milliseconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the probe learnt beyond "namespaces work".
pub(crate) struct ProbeReport {
    /// `Err(reason)` when a user namespace's root could not mount an overlay.
    pub overlay: Result<(), String>,
    /// `Err(reason)` when a seccomp filter could not be installed.
    pub seccomp: Result<(), String>,
}

/// Checks what runs need and probes what they may use; `work_dir` is a private directory
/// on the scratch dir's filesystem for the probe's files.
pub(crate) fn check_host(settings: &SandboxSettings, work_dir: &Path) -> Result<ProbeReport, SandboxError> {
    let unsupported = |reason: String| SandboxError::Unsupported { reason };
    if !settings.init_program.is_file() {
        return Err(unsupported(format!("init program {} is not a file", settings.init_program.display())));
    }
    for ns in NAMESPACES {
        if !Path::new("/proc/self/ns").join(ns).exists() {
            return Err(unsupported(format!("the kernel has no {ns} namespaces")));
        }
    }
    if read_number("/proc/sys/user/max_user_namespaces") == Some(0) {
        return Err(unsupported("user namespaces are disabled (sysctl user.max_user_namespaces = 0)".into()));
    }
    if !Uid::effective().is_root() {
        if read_number("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
            return Err(unsupported(
                "unprivileged user namespaces are disabled \
                 (sysctl kernel.unprivileged_userns_clone = 0); run as root or enable them"
                    .into(),
            ));
        }
        if read_number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
            tracing::warn!("AppArmor restricts unprivileged user namespaces; sandbox setup may fail");
        }
        tracing::warn!(
            "not running as root: the agent runs as uid 0 inside its sandbox, \
             without capabilities, mapped to this user's uid"
        );
    }
    let answer = probe_init(&settings.init_program, work_dir)?;
    let line = |topic: &str, ok: &str| match answer.lines().find(|line| line.starts_with(topic)) {
        Some(line) if line == ok => Ok(()),
        Some(other) => Err(other.to_string()),
        None => Err(format!("the probe did not report on {topic}")),
    };
    Ok(ProbeReport { overlay: line("overlay", OVERLAY_OK), seccomp: line("seccomp", SECCOMP_OK) })
}

/// The agent runs as an unprivileged uid that owns nothing on the host: the bundle must be
/// readable and traversable by others, or the program cannot even be opened.
pub(crate) fn check_readable_by_others(dir: &Path) -> Result<(), SandboxError> {
    let mode = fs::metadata(dir)
        .map_err(|e| SandboxError::io(format!("could not inspect {}", dir.display()), e))?
        .permissions()
        .mode();
    if mode & 0o005 != 0o005 {
        return Err(SandboxError::InvalidSpec {
            reason: format!(
                "bundle_dir {} has mode {:o}; the sandboxed agent needs o+rx on it (e.g. 0755)",
                dir.display(),
                mode & 0o7777
            ),
        });
    }
    Ok(())
}

/// Runs `<init_program> __sandbox-init --probe`: proves that the program is a sandbox init
/// and that this process may create the namespaces (seccomp profiles of container runtimes
/// often forbid it even where `/proc` says yes). Returns what the probe printed.
fn probe_init(program: &Path, work_dir: &Path) -> Result<String, SandboxError> {
    let dir = tempfile::Builder::new()
        .prefix("probe-")
        .tempdir_in(work_dir)
        .map_err(|e| SandboxError::io(format!("could not create a probe dir in {}", work_dir.display()), e))?;
    for name in PROBE_DIRS {
        fs::create_dir(dir.path().join(name))
            .map_err(|e| SandboxError::io(format!("could not create a probe dir in {}", work_dir.display()), e))?;
    }
    let mut child = Command::new(program)
        .args([INIT_ARG, PROBE_ARG])
        .current_dir(dir.path())
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SandboxError::Spawn { program: program.to_path_buf(), source })?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Ok(None) | Err(_) => {
                // Not a sandbox init (or hung): stop it before reporting.
                let _ = child.kill();
                let _ = child.wait();
                return Err(SandboxError::Unsupported {
                    reason: format!(
                        "{} did not answer the sandbox probe; it must call init_main() when \
                         its first argument is {INIT_ARG}",
                        program.display()
                    ),
                });
            }
        }
    };
    // Both outputs are a line or two, written before exit: reading them cannot block.
    let stdout = drain(child.stdout.take());
    if status.success() && stdout.lines().next() == Some(PROBE_ANSWER) {
        return Ok(stdout);
    }
    let stderr = drain(child.stderr.take());
    Err(SandboxError::Unsupported {
        reason: format!(
            "the sandbox probe of {} failed ({status}): {}",
            program.display(),
            if stderr.trim().is_empty() { "it did not answer as a sandbox init" } else { stderr.trim() }
        ),
    })
}

/// What a finished child wrote to a pipe (best effort: it only goes into a message).
fn drain(pipe: Option<impl Read>) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_string(&mut text);
    }
    text
}

fn read_number(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}
