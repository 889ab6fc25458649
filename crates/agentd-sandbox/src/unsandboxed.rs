//! `run_unsandboxed`: the same program, pipes, protocol and supervision as `Sandbox::run`,
//! with no isolation at all — the baseline for benchmarks, never for untrusted code.
//!
//! Paths inside the sandbox are translated for the host: a program under `/agent` (or under
//! an extra mount target) runs from the bundle (or the mount's source); other paths are used
//! as they are. Arguments are passed unchanged. The cwd is a fresh temp dir instead of
//! `/work`. The program runs in its own process group, which is killed when it ends, so
//! background children do not outlive the run (unless they escape with `setsid`). It shares
//! the host's network, so `egress` and `host_forward` are ignored: there is nothing to bridge.

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::agent::EVENTS_FD;
use crate::error::SandboxError;
use crate::init_control::AgentStatus;
use crate::line_capture::LineCapture;
use crate::run_pipes::{self, ChildEnds, Pipes};
use crate::spec::{BUNDLE_MOUNT, OutputLine, RunOutcome, RunSpec};
use crate::supervise::supervise;

/// Same program, same pipes and protocol, no isolation: the baseline for benchmarks.
pub async fn run_unsandboxed(
    spec: RunSpec,
    lines: mpsc::Sender<OutputLine>,
    cancel: CancellationToken,
) -> Result<RunOutcome, SandboxError> {
    spec.validate()?;
    let started = Instant::now();
    let cwd = tempfile::Builder::new()
        .prefix("agentd-unsandboxed-")
        .tempdir()
        .map_err(|e| SandboxError::io("could not create a temp dir for the run", e))?;
    let program = host_path(&spec);
    let (mut child, pipes) = spawn_direct(&program, &spec.args, &spec.env, cwd.path())?;
    let spawned = Instant::now();
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw)
        .ok_or_else(|| SandboxError::protocol("the program exited at once"))?;
    let output = LineCapture::new(lines, spec.limits.max_output_bytes, spec.limits.max_line_bytes);
    let exited = async {
        let status = child.wait().await.map_err(|e| SandboxError::io("could not wait for the program", e))?;
        kill_group(group);
        Ok(match (status.code(), status.signal()) {
            (Some(code), _) => AgentStatus::Code(code),
            (None, Some(signal)) => AgentStatus::Signal(signal),
            (None, None) => AgentStatus::Code(-1),
        })
    };
    let ending = supervise(pipes, spec.stdin, &spec.limits, &output, &cancel, exited).await;
    kill_group(group);
    if !matches!(child.try_wait(), Ok(Some(_)))
        && let Err(e) = child.kill().await
    {
        tracing::warn!(error = %e, "could not kill the unsandboxed program");
    }
    if let Err(e) = cwd.close() {
        tracing::warn!(error = %e, "could not remove the unsandboxed run's temp dir");
    }
    let ending = ending?;
    Ok(RunOutcome {
        termination: ending.termination(),
        wall: started.elapsed(),
        spawn: spawned.duration_since(started),
        output_bytes: output.total(),
        // No cgroup here: the baseline measures speed, not resources.
        cpu: std::time::Duration::ZERO,
        peak_memory_bytes: 0,
        // No /outputs mount either: nothing to collect.
        outputs: Vec::new(),
        egress_refusals: Vec::new(),
    })
}

fn kill_group(group: Pid) {
    // ESRCH: the group is already empty.
    let _ = killpg(group, Signal::SIGKILL);
}

/// The host path of `spec.program`, following the mounts the sandbox would set up.
fn host_path(spec: &RunSpec) -> PathBuf {
    let mounts = std::iter::once((spec.bundle_dir.as_path(), BUNDLE_MOUNT))
        .chain(spec.extra_ro_mounts.iter().map(|(host, inside)| (host.as_path(), inside.as_str())));
    let program = Path::new(&spec.program);
    mounts
        .filter_map(|(host, inside)| {
            let rest = program.strip_prefix(inside).ok()?;
            Some((inside.len(), host.join(rest)))
        })
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, path)| path)
        .unwrap_or_else(|| program.to_path_buf())
}

/// Spawns `program` directly, without isolation, in its own process group, with the events
/// pipe on fd 3 and exactly `env`.
fn spawn_direct(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
) -> Result<(Child, Pipes), SandboxError> {
    let (ours, theirs) = run_pipes::create()?;
    let ChildEnds { stdin, stdout, stderr, events } = theirs;
    let events_fd = events.as_raw_fd();
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (OsStr::new(k), OsStr::new(v))))
        .current_dir(cwd)
        .process_group(0)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true);
    // SAFETY: the hook only calls dup2/fcntl, which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if events_fd == EVENTS_FD {
                run_pipes::clear_cloexec(EVENTS_FD)
            } else if libc::dup2(events_fd, EVENTS_FD) == EVENTS_FD {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    let child = command.spawn().map_err(|source| SandboxError::Spawn { program: program.to_path_buf(), source })?;
    // The command (dropped with the ends it holds) and `events` were our last copies.
    drop((command, events));
    Ok((child, ours.register()?))
}
