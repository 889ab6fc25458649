//! `Sandbox`: runs one program per call in fresh namespaces and supervises it.
//!
//! `run` creates a per-run dir in the instance's part of the scratch dir (`instance.rs`),
//! has the launcher fork an init, drives the control protocol (config → unshare → id maps
//! → go → exit status), supervises the pipes and limits, and always ends by killing (if
//! needed) and awaiting the init, which exits only once every process of the run is gone.
//! If the `run` future is dropped midway, the init handle SIGKILLs the init as it drops;
//! PID 1 follows through its parent-death signal and takes the whole PID namespace with it.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cgroup::{RunCgroup, Usage};
use crate::egress::{Egress, EgressSettings};
use crate::egress_proxy::{Policy, RunProxy};
use crate::error::SandboxError;
use crate::host_forward::RunForward;
use crate::host_probe;
use crate::host_support::HostSupport;
use crate::init_control::{self, AgentStatus, FromInit, InitConfig, ToInit};
use crate::instance::{Instance, LeftoverReport};
use crate::launcher_client::{InitProcess, Launcher};
use crate::line_capture::LineCapture;
use crate::mounts::{EMPTY_LAYER, ROOT_MOUNTPOINT};
use crate::namespaces::IdMapping;
use crate::output_files::{Collected, LentDir};
use crate::rlimits::AgentRlimits;
use crate::spec::{OutputLine, RunOutcome, RunSpec, Termination};
use crate::supervise::{Ending, supervise};

/// How long the init gets to kill and reap the sandbox before it is SIGKILLed itself.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Host-side settings of the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Program re-executed as the sandbox init; it must call `init_main()` when its first
    /// argument is `INIT_ARG` (the agentd binary: `std::env::current_exe()`).
    pub init_program: PathBuf,
    /// Host dir where each `Sandbox` keeps its per-run dirs (removed after the run) and its
    /// owner's files, in a directory of its own; several processes may share it
    /// (`Sandbox::remove_leftovers`).
    pub scratch_dir: PathBuf,
    /// The egress proxy's operator settings (exempted networks, fixed name answers).
    pub egress: EgressSettings,
}

/// Runs programs in isolation. Cheap to share: `run` takes `&self`.
#[derive(Debug)]
pub struct Sandbox {
    settings: SandboxSettings,
    mapping: IdMapping,
    /// What `new` found usable on this host; prepared once, used by every run.
    host: HostSupport,
    launcher: Launcher,
    /// Dropped last: its directory goes once nothing of this sandbox uses it any more.
    instance: Instance,
}

impl Sandbox {
    /// Takes a directory of its own in the scratch dir, probes what the host supports
    /// (logging what is missing) and prepares the run cgroups' parents and the seccomp
    /// program.
    pub fn new(settings: SandboxSettings) -> Result<Sandbox, SandboxError> {
        let instance = Instance::create(&settings.scratch_dir)?;
        let report = host_probe::check_host(&settings, instance.dir())?;
        let mapping = IdMapping::for_current_process();
        let host = HostSupport::probe(&settings, mapping, report, instance.id())?;
        instance.record_cgroups(&host.cgroup_prefixes(&cgroup_prefix(&host, instance.id())))?;
        let launcher = Launcher::new(&settings.init_program);
        Ok(Sandbox { settings, mapping, host, launcher, instance })
    }

    /// A directory for the owner's own per-run files (the worker's copies of `/outputs`,
    /// say), private to this `Sandbox`: nothing else writes in it. It is removed with all
    /// it holds when the `Sandbox` is dropped, or, if this process dies first, by the
    /// `remove_leftovers` of any `Sandbox` on the same scratch dir.
    pub fn instance_dir(&self) -> &Path {
        self.instance.owner_dir()
    }

    /// Removes what `Sandbox`es on this scratch dir left behind when their process died
    /// (killed, crashed, lost power): the dirs of their runs, their `instance_dir`s and
    /// their run cgroups, after killing any process still in those cgroups. A live
    /// `Sandbox`'s runs, in this process or another, are never touched: each holds a lock
    /// for its whole life, which the kernel releases when its process ends.
    ///
    /// A reconciler: idempotent, takes no input; call it at start-up and on a timer. It
    /// blocks (up to a few seconds per cgroup whose processes are still exiting), so call
    /// it from a blocking thread (`tokio::task::spawn_blocking`). What it could not remove
    /// is listed in the report, for the caller to log, and tried again by the next call.
    pub fn remove_leftovers(&self) -> Result<LeftoverReport, SandboxError> {
        self.instance.remove_leftovers(|id| self.host.cgroup_prefixes(&cgroup_prefix(&self.host, id)))
    }

    /// The mechanisms of DESIGN.md §6 this host does not give us, in words an operator can
    /// act on (empty on a fully capable host). Production mode refuses to start unless it
    /// is empty; runs still work without them, with less isolation.
    pub fn missing_mechanisms(&self) -> Vec<String> {
        self.host.missing.clone()
    }

    /// The pid of the launcher process that forks this sandbox's inits (it starts with the
    /// first run and is replaced if it dies), for diagnostics.
    pub fn launcher_pid(&self) -> Option<u32> {
        self.launcher.pid()
    }

    /// Runs `spec` to its end. Lines go to `lines` as they come; `cancel` kills the run.
    pub async fn run(
        &self,
        spec: RunSpec,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<RunOutcome, SandboxError> {
        spec.validate()?;
        if self.mapping == IdMapping::Range {
            host_probe::check_readable_by_others(&spec.bundle_dir)?;
        }
        // Before anything of the run exists, so that a refusal leaves nothing to clean up.
        let outputs_dir = spec.collect_outputs.as_deref().map(|dir| LentDir::lend(dir, self.mapping)).transpose()?;
        let started = Instant::now();
        let run_dir = create_run_dir(self.instance.runs_dir())?;
        let cgroup = self.host.run_cgroup(run_cgroup_name(&self.host, &self.instance, run_dir.path()), &spec.limits)?;
        let (agent_uid, agent_gid) = self.mapping.agent_ids();
        let RunSpec {
            program,
            args,
            mut env,
            bundle_dir,
            extra_ro_mounts,
            stdin,
            limits,
            egress,
            host_forward,
            collect_outputs,
        } = spec;
        let proxy = match egress {
            Egress::Denied => None,
            Egress::AllowHosts(hosts) => {
                let policy = Policy { hosts, settings: self.settings.egress.clone() };
                Some(RunProxy::open(run_dir.path(), self.mapping, policy, &mut env)?)
            }
        };
        let forward = host_forward.map(|f| RunForward::open(run_dir.path(), self.mapping, f)).transpose()?;
        let bridges = proxy.iter().map(RunProxy::bridge).chain(forward.iter().map(RunForward::bridge)).collect();
        let config = InitConfig {
            program,
            args,
            env,
            bundle_dir,
            extra_ro_mounts,
            hide_mount_sources: self.host.hide_mount_sources,
            tmp_bytes: limits.tmp_bytes,
            work_bytes: limits.work_bytes,
            run_dir: run_dir.path().to_path_buf(),
            agent_uid,
            agent_gid,
            outputs_bytes: limits.outputs_bytes,
            rlimits: AgentRlimits::for_run(&limits),
            seccomp: self.host.seccomp.clone(),
            landlock: self.host.landlock_abi > 0,
            cgroup_files: cgroup.as_ref().map(RunCgroup::self_attach_files).unwrap_or_default(),
            bridges,
            collect_outputs,
        };
        let refusals = proxy.as_ref().map(RunProxy::refusals).unwrap_or_default();
        let (mut init, pipes, mut ctl) = self.launcher.launch().await?;
        let output = LineCapture::new(lines, limits.max_output_bytes, limits.max_line_bytes);
        let mut collected = None;
        let mut let_go = None;
        let driven = drive(&mut ctl, &mut init, config, self.mapping, &mut collected, &mut let_go);
        // The proxy and the forward live exactly as long as the supervised run: dropping
        // them closes every connection they carry.
        let proxy = async {
            match proxy {
                Some(proxy) => proxy.serve().await,
                None => std::future::pending().await,
            }
        };
        let forward = async {
            match forward {
                Some(forward) => forward.serve().await,
                None => std::future::pending().await,
            }
        };
        let ending = tokio::select! {
            biased;
            ending = supervise(pipes, stdin, &limits, &output, &cancel, driven) => ending,
            never = proxy => match never {},
            never = forward => match never {},
        };
        stop(&mut ctl, &mut init).await;
        let usage = cgroup.map(finish_cgroup).unwrap_or_default();
        // Only now is PID 1, the one writer of the outputs dir, surely gone.
        let finished = matches!(ending, Ok(Ending::Finished(_)));
        let outputs = outputs_dir.map(|dir| dir.take_back(collected.filter(|_| finished))).unwrap_or_default();
        if let Err(e) = run_dir.close() {
            tracing::warn!(error = %e, "could not remove the run's scratch dir");
        }
        let termination = match ending {
            Ok(ending) => memory_limit_or(ending.termination(), usage.oom_kills),
            // On cgroup v2 an OOM kill takes the whole run (`memory.oom.group`), the init
            // and PID 1 included, before anything inside can report it.
            Err(SandboxError::Protocol { .. }) if usage.oom_kills > 0 => Termination::MemoryLimit,
            Err(e) => return Err(e),
        };
        Ok(RunOutcome {
            termination,
            wall: started.elapsed(),
            spawn: let_go.map_or(Duration::ZERO, |at: Instant| at.duration_since(started)),
            output_bytes: output.total(),
            cpu: usage.cpu,
            peak_memory_bytes: usage.peak_memory_bytes,
            outputs,
            egress_refusals: refusals.take(),
        })
    }
}

/// `<host prefix><instance id>-`: the name prefix of an instance's run cgroups.
fn cgroup_prefix(host: &HostSupport, instance_id: &str) -> String {
    format!("{}{instance_id}-", host.cgroup_prefix)
}

/// The name of the cgroup of the run whose dir is `run_dir`.
fn run_cgroup_name(host: &HostSupport, instance: &Instance, run_dir: &Path) -> String {
    let run = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{}{run}", cgroup_prefix(host, instance.id()))
}

/// Reads the run's accounting, then removes its cgroup (killing any straggler).
fn finish_cgroup(cgroup: RunCgroup) -> Usage {
    let usage = cgroup.usage();
    if let Err(e) = cgroup.remove() {
        tracing::error!(error = %e, "could not remove a run's cgroup");
    }
    usage
}

/// A program that failed after the kernel OOM-killed one of its processes ran out of
/// memory; a program that coped with it and exited 0 keeps its success.
fn memory_limit_or(termination: Termination, oom_kills: u64) -> Termination {
    match termination {
        Termination::Exited(code) if oom_kills > 0 && code != 0 => Termination::MemoryLimit,
        Termination::Signaled(_) if oom_kills > 0 => Termination::MemoryLimit,
        other => other,
    }
}

/// A fresh dir in `runs`, traversable by the sandbox's root (which is nobody on
/// the host), with the empty `root` mountpoint of the new root and the overlays' empty
/// layer inside.
fn create_run_dir(runs: &Path) -> Result<tempfile::TempDir, SandboxError> {
    let io = |action: &str| {
        let action = format!("{action} in {}", runs.display());
        move |e| SandboxError::io(action, e)
    };
    let dir = tempfile::Builder::new().prefix("run-").tempdir_in(runs).map_err(io("could not create a run dir"))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
        .map_err(io("could not set the run dir's mode"))?;
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(dir.path().join(ROOT_MOUNTPOINT))
        .map_err(io("could not create the root mountpoint"))?;
    std::fs::DirBuilder::new()
        .mode(0o555)
        .create(dir.path().join(EMPTY_LAYER))
        .map_err(io("could not create the overlays' empty layer"))?;
    Ok(dir)
}

/// The supervisor's half of the control protocol; resolves to the program's status.
async fn drive(
    ctl: &mut UnixStream,
    init: &mut InitProcess,
    config: InitConfig,
    mapping: IdMapping,
    collected: &mut Option<Collected>,
    let_go: &mut Option<Instant>,
) -> Result<AgentStatus, SandboxError> {
    let send_failed = |e| SandboxError::io("could not write to the sandbox init", e);
    init_control::send(ctl, &ToInit::Config(Box::new(config))).await.map_err(send_failed)?;
    match init_control::recv(ctl).await {
        Ok(Some(FromInit::Unshared)) => {}
        other => return Err(unexpected(other, init, "unsharing").await),
    }
    mapping.write_maps(init.pid())?;
    init_control::send(ctl, &ToInit::Go).await.map_err(send_failed)?;
    *let_go = Some(Instant::now());
    loop {
        match init_control::recv(ctl).await {
            Ok(Some(FromInit::Outputs(files))) => *collected = Some(files),
            Ok(Some(FromInit::Exited(status))) => {
                // The init exits as soon as PID 1 (and with it the namespace) is gone.
                init.wait().await.map_err(|e| SandboxError::io("could not wait for the sandbox init", e))?;
                return Ok(status);
            }
            other => return Err(unexpected(other, init, "running the program").await),
        }
    }
}

/// Turns anything but the expected message into the error that explains it.
async fn unexpected(message: std::io::Result<Option<FromInit>>, init: &mut InitProcess, during: &str) -> SandboxError {
    match message {
        Ok(Some(FromInit::Failed { stage, message })) => SandboxError::Setup { stage, message },
        Ok(Some(other)) => SandboxError::protocol(format!("unexpected {other:?} while {during}")),
        Ok(None) => {
            // EOF: every copy of the init's end is closed, so the init is exiting.
            if let Err(e) = init.wait().await {
                tracing::warn!(error = %e, "could not wait for the sandbox init");
            }
            SandboxError::protocol(format!("the init ended without a report while {during}"))
        }
        Err(e) => SandboxError::io(format!("could not read from the sandbox init while {during}"), e),
    }
}

/// Makes sure the run is over: asks the init to kill the sandbox and reaps it; SIGKILLs
/// the init if it does not finish in time (PID 1 then dies of its parent-death signal).
async fn stop(ctl: &mut UnixStream, init: &mut InitProcess) {
    if init.has_ended() {
        return;
    }
    let graceful = async {
        // The init may already be gone; then the write fails and the wait returns at once.
        let _ = init_control::send(ctl, &ToInit::Kill).await;
        init.wait().await
    };
    if tokio::time::timeout(KILL_GRACE, graceful).await.is_err() {
        tracing::warn!("the sandbox init did not stop in time; killing it");
        if let Err(e) = init.kill() {
            tracing::warn!(error = %e, "could not kill the sandbox init");
        }
        if let Err(e) = init.wait().await {
            tracing::warn!(error = %e, "could not wait for the killed sandbox init");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RunLimits;

    #[test]
    fn an_oom_kill_turns_a_failure_into_memory_limit_but_keeps_a_success() {
        assert_eq!(memory_limit_or(Termination::Signaled(9), 1), Termination::MemoryLimit);
        assert_eq!(memory_limit_or(Termination::Exited(1), 2), Termination::MemoryLimit);
        assert_eq!(memory_limit_or(Termination::Exited(0), 1), Termination::Exited(0));
        assert_eq!(memory_limit_or(Termination::Signaled(9), 0), Termination::Signaled(9));
        assert_eq!(memory_limit_or(Termination::TimedOut, 1), Termination::TimedOut);
    }

    /// The worker spawns runs as tasks: both futures must be `Send`.
    #[test]
    fn run_futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let scratch = tempfile::tempdir().unwrap();
        let sandbox = Sandbox {
            settings: SandboxSettings {
                init_program: "/nonexistent".into(),
                scratch_dir: "/nonexistent".into(),
                egress: EgressSettings::default(),
            },
            mapping: IdMapping::Range,
            host: HostSupport::none(),
            launcher: Launcher::new("/nonexistent".as_ref()),
            instance: Instance::create(scratch.path()).unwrap(),
        };
        let spec = RunSpec {
            program: "/bin/true".into(),
            args: Vec::new(),
            env: Vec::new(),
            bundle_dir: "/nonexistent".into(),
            extra_ro_mounts: Vec::new(),
            stdin: Vec::new(),
            limits: RunLimits::default(),
            egress: Egress::AllowHosts(vec!["example.com".into()]),
            host_forward: Some(crate::HostForward {
                port: 8470,
                target: std::sync::Arc::new(crate::TcpTarget { host: "127.0.0.1".into(), port: 1 }),
            }),
            collect_outputs: Some("/nonexistent".into()),
        };
        let (tx, _rx) = mpsc::channel(1);
        let sandboxed = sandbox.run(spec.clone(), tx.clone(), CancellationToken::new());
        assert_send(&sandboxed);
        let bare = crate::run_unsandboxed(spec, tx, CancellationToken::new());
        assert_send(&bare);
    }
}
