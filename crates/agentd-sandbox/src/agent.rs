//! The last steps of the agent process, forked by the sandbox's PID 1: wire exactly fds
//! 0–3, reset signal handling inherited from the init, set rlimits, drop privileges, apply
//! landlock, install the seccomp filter, `execve` the program with exactly the run's
//! environment, in `/work`.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::{chdir, execve};

use crate::init_control::InitConfig;
use crate::step::{Stage, StepError};
use crate::{fs_access, privileges, seccomp};

/// The fd the agent reads its events pipe from (`AGENTD_EVENTS_FD=3`).
pub(crate) const EVENTS_FD: RawFd = 3;

/// Replaces the calling process with the program; returns only on failure.
pub(crate) fn exec(config: &InitConfig, events: RawFd) -> StepError {
    match prepare_and_exec(config, events) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn prepare_and_exec(config: &InitConfig, events: RawFd) -> Result<std::convert::Infallible, StepError> {
    let cstring = |s: &str| CString::new(s).stage(|| format!("preparing {s:?}"));
    let program = cstring(&config.program)?;
    let mut argv = vec![program.clone()];
    for arg in &config.args {
        argv.push(cstring(arg)?);
    }
    let envp = config.env.iter().map(|(k, v)| cstring(&format!("{k}={v}"))).collect::<Result<Vec<_>, _>>()?;

    chdir("/work").stage(|| "entering /work".into())?;
    wire_fds(events).stage(|| "wiring fds".into())?;
    reset_signals().stage(|| "resetting signals".into())?;
    config.rlimits.apply()?;
    privileges::drop_to(config.agent_uid, config.agent_gid)?;
    if config.landlock {
        // Best effort by design: what this kernel enforces was reported by Sandbox::new.
        fs_access::restrict(config)?;
    }
    // Last: after this, only execve itself is still needed.
    seccomp::install(&config.seccomp).stage(|| "installing the seccomp filter".into())?;
    execve(&program, &argv, &envp).stage(|| format!("execve {}", config.program))
}

/// Puts the events pipe on fd 3 and marks every fd above it close-on-exec, so the program
/// gets 0, 1, 2 and 3 only (the control socket stays usable until `execve` succeeds).
fn wire_fds(events: RawFd) -> io::Result<()> {
    // SAFETY: plain fd syscalls on fds this process owns; no memory is passed.
    unsafe {
        if events == EVENTS_FD {
            if libc::fcntl(EVENTS_FD, libc::F_SETFD, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
        } else if libc::dup2(events, EVENTS_FD) != EVENTS_FD {
            return Err(io::Error::last_os_error());
        }
        let first = (EVENTS_FD + 1) as libc::c_uint;
        let rc = libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC);
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The init is a Rust program, which ignores SIGPIPE; ignored dispositions survive `execve`,
/// so restore the defaults and an empty signal mask for the program.
fn reset_signals() -> nix::Result<()> {
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no handler code.
        unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) }?;
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}
