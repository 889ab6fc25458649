//! The sandbox init: forked per run by the launcher (the init program re-executed once as
//! `<init_program> __sandbox-init --launcher <fd>`), single-threaded, so it may fork freely.
//!
//! The init reads its config, opens the bind sources, unshares the namespaces and waits
//! until the supervisor has written its id maps. It then forks PID 1 of the new PID
//! namespace and stays outside as its watcher: on `Kill` (or EOF) from the supervisor it
//! kills PID 1, and it exits once PID 1 has been reaped, which the kernel allows only after
//! every process of the namespace is gone. PID 1 builds the root, forks the agent, reaps
//! zombies, reports the agent's wait status and exits, which kills whatever is left.
//!
//! Two optional duties: with egress or a host forward, the init (already in the run's
//! network namespace) starts the bridge process once PID 1 is forked; with `collect_outputs`, PID 1 kills
//! what the agent left behind and copies `/outputs` out before it reports the status.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};
use nix::sys::prctl;
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, Uid, chdir, fork, pipe2, setgroups, sethostname, setsid};

use crate::init_control::{AgentStatus, FromInit, InitConfig, ToInit, read_frame, write_frame};
use crate::init_probe::PROBE_ARG;
use crate::launcher_client::LAUNCHER_ARG;
use crate::mounts::RootPlan;
use crate::output_files::{self, Collected};
use crate::step::{Stage, StepError};
use crate::{INIT_ARG, agent, init_probe, launcher_server, loopback_bridge, namespaces, network};

/// Inherited fds are moved at or above this number, clear of 0–3 which the agent needs.
const FIRST_PRIVATE_FD: RawFd = 10;

/// Entry for the re-executed init program. The `agentd` binary calls this first thing in
/// `main()` (before any runtime or thread exists) when `argv[1] == INIT_ARG`.
pub fn init_main() -> ! {
    let code = match start() {
        Ok(code) => code,
        Err(message) => {
            // Nothing else is listening when the control fd itself is unusable.
            eprintln!("agentd sandbox init: {message}");
            2
        }
    };
    std::process::exit(code)
}

/// Parses argv, takes the inherited fds and runs the init; returns the exit code.
fn start() -> Result<i32, String> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    if args == [PROBE_ARG] {
        // Sandbox::new checks what this host lets us do; see init_probe.rs.
        return init_probe::run().map(|()| 0);
    }
    let [flag, socket] = args.as_slice() else {
        return Err(format!("usage: {INIT_ARG} {LAUNCHER_ARG} <socket fd> | {PROBE_ARG}"));
    };
    if flag != LAUNCHER_ARG {
        return Err(format!("unknown mode {flag:?}"));
    }
    let socket = socket.parse::<RawFd>().map_err(|_| format!("bad fd {socket:?}"))?;
    Ok(launcher_server::serve(relocate(socket)?))
}

/// One run, in an init the launcher just forked (stdio are already the run's pipes).
/// Returns the exit code.
pub(crate) fn serve_run(ctl: OwnedFd, events: OwnedFd, netns: Option<OwnedFd>) -> i32 {
    // Out of the way of fds 0–3, which the agent needs.
    let (ctl, events) = match (relocate_owned(ctl), relocate_owned(events)) {
        (Ok(ctl), Ok(events)) => (UnixStream::from(ctl), events),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("agentd sandbox init: {e}");
            return 2;
        }
    };
    let config = match read_frame::<ToInit>(&ctl) {
        Ok(Some(ToInit::Config(config))) => config,
        Ok(None | Some(ToInit::Kill)) => return 0,
        Ok(Some(other)) => {
            eprintln!("agentd sandbox init: expected the config, got {other:?}");
            return 2;
        }
        Err(e) => {
            eprintln!("agentd sandbox init: reading the config: {e}");
            return 2;
        }
    };
    match run(&ctl, &config, events, netns) {
        Ok(()) => 0,
        Err(e) => {
            report_failure(&ctl, e);
            1
        }
    }
}

/// Takes ownership of an inherited fd and moves it to a close-on-exec fd ≥ 10.
fn relocate(fd: RawFd) -> Result<OwnedFd, String> {
    if fd < 0 {
        return Err(format!("bad fd {fd}"));
    }
    // SAFETY: the supervisor passed this fd to us for our exclusive use.
    relocate_owned(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Moves an fd to a close-on-exec fd ≥ 10.
fn relocate_owned(fd: OwnedFd) -> Result<OwnedFd, String> {
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(FIRST_PRIVATE_FD))
        .map(|raw| {
            // SAFETY: F_DUPFD_CLOEXEC just returned this new fd, owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(raw) }
        })
        .map_err(|e| format!("taking fd {}: {e}", fd.as_raw_fd()))
}

fn report_failure(ctl: &UnixStream, e: StepError) {
    let msg = FromInit::Failed { stage: e.stage, message: e.message };
    // If the supervisor is gone there is nobody left to tell.
    let _ = write_frame(ctl, &msg);
}

/// Everything between reading the config and the end of the sandbox.
/// `netns`: a fresh network namespace the launcher prepared (loopback up), or `None` to
/// make one here.
fn run(ctl: &UnixStream, config: &InitConfig, events: OwnedFd, netns: Option<OwnedFd>) -> Result<(), StepError> {
    // First, while still the supervisor's uid: into the run's cgroup, with all we fork.
    for file in &config.cgroup_files {
        std::fs::write(file, "0").stage(|| format!("joining the run's cgroup ({})", file.display()))?;
    }
    // A new session: no controlling terminal for anything inside.
    let _ = setsid(); // fails only if already a group leader, which is harmless
    chdir(&config.run_dir).stage(|| format!("entering {}", config.run_dir.display()))?;
    if Uid::effective().is_root() {
        // Host supplementary groups would follow the agent into the sandbox otherwise.
        setgroups(&[]).stage(|| "clearing supplementary groups".into())?;
    }
    // PID 1 watches the read end: EOF means the init died before PR_SET_PDEATHSIG held.
    let (lifeline_read, lifeline_write) = pipe2(OFlag::O_CLOEXEC).stage(|| "creating the lifeline pipe".into())?;
    // Opened with the supervisor's uid, which may write where the sandbox's root may not
    // look up paths; the fd survives the pivot_root that hides the host.
    let outputs_target = match &config.collect_outputs {
        Some(dir) => Some(
            nix::fcntl::open(
                dir,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .stage(|| format!("opening the outputs directory {}", dir.display()))?,
        ),
        None => None,
    };
    let prepared_network = netns.is_some();
    match netns {
        Some(netns) => {
            // Joined while still root on the host, which owns it; nothing inside will be.
            setns(netns, CloneFlags::CLONE_NEWNET).stage(|| "joining the run's network namespace".into())?;
            namespaces::unshare_all_but_network()
        }
        None => namespaces::unshare_all(),
    }
    .stage(|| "unsharing namespaces".into())?;
    // Sources must be opened in the new mount namespace (binds from another one fail), and
    // before becoming root inside, which is nobody on the host.
    let plan = RootPlan::open(config)?;
    write_frame(ctl, &FromInit::Unshared).stage(|| "reporting the unshare".into())?;
    match read_frame::<ToInit>(ctl) {
        Ok(Some(ToInit::Go)) => {}
        _ => return Ok(()), // killed or abandoned before the start: nothing to clean up
    }
    namespaces::become_root_inside().stage(|| "becoming root in the namespace".into())?;
    // The supervisor moved us into the run's cgroup before `Go`: a cgroup namespace now
    // makes that cgroup the root of what the agent sees in /proc/self/cgroup.
    namespaces::unshare_cgroup().stage(|| "unsharing the cgroup namespace".into())?;
    if !prepared_network {
        network::bring_up_loopback().stage(|| "bringing up the loopback interface".into())?;
    }
    let bridged = loopback_bridge::bind(&config.bridges).stage(|| "listening on the bridged loopback ports".into())?;

    // SAFETY: the init is single-threaded (it runs before any thread is started).
    match unsafe { fork() }.stage(|| "forking PID 1".into())? {
        ForkResult::Child => {
            drop((lifeline_write, bridged));
            let ends = Pid1Ends { events, lifeline: lifeline_read, outputs_target };
            pid1(ctl, config, plan, ends)
        }
        ForkResult::Parent { child } => {
            drop((plan, events, lifeline_read, outputs_target));
            if !bridged.is_empty()
                && let Err(e) = loopback_bridge::start(bridged)
            {
                let _ = kill(child, Signal::SIGKILL); // ESRCH: already dead
                let _ = reap(child); // ECHILD: already reaped
                return Err(e).stage(|| "starting the loopback bridge".into());
            }
            let watched = watch(ctl, child);
            drop(lifeline_write);
            watched
        }
    }
}

/// The fds PID 1 takes over from the init.
struct Pid1Ends {
    events: OwnedFd,
    /// Read end of the lifeline pipe (EOF: the init is gone).
    lifeline: OwnedFd,
    /// The host directory `/outputs` is copied into, if any.
    outputs_target: Option<OwnedFd>,
}

/// The init after the fork: wait for PID 1, killing it on the supervisor's request.
fn watch(ctl: &UnixStream, pid1: Pid) -> Result<(), StepError> {
    let pidfd = pidfd_open(pid1).stage(|| "opening a pidfd for PID 1".into())?;
    loop {
        let mut fds = [PollFd::new(ctl.as_fd(), PollFlags::POLLIN), PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).stage(|| "waiting for PID 1".into()),
            Ok(_) => {}
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        if ready(&fds[1]) {
            break;
        }
        if ready(&fds[0]) && !matches!(read_frame::<ToInit>(ctl), Ok(Some(ToInit::Go))) {
            // Kill, EOF or garbage: the supervisor wants the sandbox gone.
            let _ = kill(pid1, Signal::SIGKILL); // ESRCH: already dying
            break;
        }
    }
    reap(pid1).stage(|| "reaping PID 1".into())?;
    Ok(())
}

/// PID 1 of the new PID namespace. Never returns.
fn pid1(ctl: &UnixStream, config: &InitConfig, plan: RootPlan, ends: Pid1Ends) -> ! {
    let Pid1Ends { events, lifeline, outputs_target } = ends;
    let result = (|| {
        prctl::set_pdeathsig(Signal::SIGKILL).stage(|| "setting the parent-death signal".into())?;
        if init_is_gone(&lifeline) {
            // SAFETY: _exit ends the process without running the parent's atexit handlers.
            unsafe { libc::_exit(1) };
        }
        drop(lifeline);
        plan.build()?;
        sethostname("agentd").stage(|| "setting the hostname".into())?;
        let status = start_agent(ctl, config, events.as_raw_fd())?;
        if let Some(target) = outputs_target {
            let collected = collect_outputs(&target, config.outputs_bytes)?;
            write_frame(ctl, &FromInit::Outputs(collected)).stage(|| "reporting the outputs".into())?;
        }
        Ok(status)
    })();
    let code = match result {
        Ok(status) => match write_frame(ctl, &FromInit::Exited(status)) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(e) => {
            report_failure(ctl, e);
            1
        }
    };
    // SAFETY: see above; leaving PID 1 kills every process left in the namespace.
    unsafe { libc::_exit(code) }
}

fn init_is_gone(lifeline: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(lifeline.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0].revents().is_some_and(|r| !r.is_empty()),
        Err(_) => true,
    }
}

/// Forks and execs the agent, then reaps every child until the agent itself exits.
fn start_agent(ctl: &UnixStream, config: &InitConfig, events: RawFd) -> Result<AgentStatus, StepError> {
    // SAFETY: PID 1 is single-threaded.
    let agent = match unsafe { fork() }.stage(|| "forking the agent".into())? {
        ForkResult::Child => {
            let e = agent::exec(config, events);
            report_failure(ctl, e);
            // SAFETY: see pid1(); 127 is the shell's "could not execute".
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => child,
    };
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == agent => {
                return Ok(AgentStatus::Code(code));
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == agent => {
                return Ok(AgentStatus::Signal(signal as i32));
            }
            Ok(_) | Err(Errno::EINTR) => {} // a reaped orphan, or a stop we did not ask for
            Err(e) => return Err(e).stage(|| "waiting for the agent".into()),
        }
    }
}

/// Kills every process the agent left behind (so nothing can change `/outputs` any more),
/// reaps them, then copies `/outputs` out.
fn collect_outputs(target: &OwnedFd, max_bytes: u64) -> Result<Collected, StepError> {
    // -1 from PID 1: every other process of this PID namespace, and only those.
    match kill(Pid::from_raw(-1), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => return Err(e).stage(|| "killing the agent's leftover processes".into()),
    }
    loop {
        match waitpid(None, None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => break,
            Err(e) => return Err(e).stage(|| "reaping the agent's leftover processes".into()),
        }
    }
    Ok(output_files::collect(target, max_bytes))
}

fn reap(pid: Pid) -> nix::Result<()> {
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => return Ok(()),
            Ok(_) => continue,
            Err(e) => return Err(e),
        }
    }
}

pub(crate) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a fresh fd we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
