//! The pipes of a run, and starting a program directly. The supervisor
//! is a multi-threaded tokio program: no work happens between `fork` and `exec` except
//! async-signal-safe fd fiddling in `pre_exec`. Every fd we create is close-on-exec, so a
//! concurrently spawned process never inherits another run's pipes; the child clears that
//! flag only on the fds meant for it. (Sandbox inits are forked by the launcher instead.)

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Stdio;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

use crate::agent::EVENTS_FD;
use crate::error::SandboxError;

/// The supervisor's ends of the program's pipes.
pub(crate) struct Pipes {
    pub stdin: pipe::Sender,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
    pub events: pipe::Receiver,
}

/// The supervisor's ends of a run's pipes, not yet registered with the runtime.
pub(crate) struct OurEnds {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    events: OwnedFd,
}

/// The program's ends: all close-on-exec.
pub(crate) struct ChildEnds {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub events: OwnedFd,
}

/// Fresh pipes for stdin, stdout, stderr and events.
pub(crate) fn run_pipes() -> Result<(OurEnds, ChildEnds), SandboxError> {
    let (stdin_child, stdin) = close_on_exec_pipe()?;
    let (stdout, stdout_child) = close_on_exec_pipe()?;
    let (stderr, stderr_child) = close_on_exec_pipe()?;
    let (events, events_child) = close_on_exec_pipe()?;
    Ok((
        OurEnds { stdin, stdout, stderr, events },
        ChildEnds { stdin: stdin_child, stdout: stdout_child, stderr: stderr_child, events: events_child },
    ))
}

impl OurEnds {
    /// Registers the ends with the runtime (non-blocking from here on).
    pub(crate) fn register(self) -> Result<Pipes, SandboxError> {
        let register = |e| SandboxError::io("could not register a pipe of the run", e);
        Ok(Pipes {
            stdin: pipe::Sender::from_owned_fd(self.stdin).map_err(register)?,
            stdout: pipe::Receiver::from_owned_fd(self.stdout).map_err(register)?,
            stderr: pipe::Receiver::from_owned_fd(self.stderr).map_err(register)?,
            events: pipe::Receiver::from_owned_fd(self.events).map_err(register)?,
        })
    }
}

/// Spawns `program` directly, without isolation, in its own process group, with the events
/// pipe on fd 3 and exactly `env`.
pub(crate) fn spawn_direct(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
) -> Result<(Child, Pipes), SandboxError> {
    let (ours, theirs) = run_pipes()?;
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
                clear_cloexec(EVENTS_FD)
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

/// A close-on-exec pipe: (read end, write end).
fn close_on_exec_pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::io("could not create a pipe", io::Error::from(e)))
}

/// Runs in the forked child: lets `fd` survive `execve`.
pub(crate) fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd number, no memory involved; async-signal-safe.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
