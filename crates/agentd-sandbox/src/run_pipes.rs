//! The four pipes of a run (stdin, stdout, stderr and the events pipe on fd 3), made by the
//! supervisor and handed to the program's side: to a sandbox init through the launcher
//! (`launcher_client.rs`), or to a directly spawned program (`unsandboxed.rs`).
//!
//! The supervisor is a multi-threaded tokio program: every fd made here is close-on-exec,
//! so a concurrently spawned process never inherits another run's pipes; whoever starts
//! the program clears that flag only on the fds meant for it (`clear_cloexec`).

use std::io;
use std::os::fd::{OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use tokio::net::unix::pipe;

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
pub(crate) fn create() -> Result<(OurEnds, ChildEnds), SandboxError> {
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
