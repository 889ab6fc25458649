//! Starting processes from the supervisor, which is a multi-threaded tokio program: no work
//! happens between `fork` and `exec` except async-signal-safe fd fiddling in `pre_exec`.
//! Every fd we create is close-on-exec, so a concurrently spawned process never inherits
//! another run's pipes; the child clears that flag only on the fds meant for it.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Stdio;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use tokio::net::UnixStream;
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use crate::INIT_ARG;
use crate::agent::EVENTS_FD;
use crate::error::SandboxError;

/// The supervisor's ends of the program's pipes.
pub(crate) struct Pipes {
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    pub events: pipe::Receiver,
}

/// Spawns `<program> __sandbox-init <ctl fd> <events fd>` with piped stdio; returns the
/// child, its pipes and the supervisor's end of the control socket.
pub(crate) fn spawn_init(program: &Path) -> Result<(Child, Pipes, UnixStream), SandboxError> {
    let (events_read, events_write) = events_pipe()?;
    let (ctl, ctl_child) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| SandboxError::io("could not create the control socket", e))?;
    let inherited = [ctl_child.as_raw_fd(), events_write.as_raw_fd()];
    let mut command = Command::new(program);
    command.arg(INIT_ARG).args(inherited.map(|fd| fd.to_string())).env_clear();
    // SAFETY: the hook only calls fcntl, which is async-signal-safe.
    unsafe {
        command.pre_exec(move || inherited.into_iter().try_for_each(clear_cloexec));
    }
    let mut child = spawn(command, program)?;
    // Our copies must go, or EOF would never come on the events pipe and control socket.
    drop((ctl_child, events_write));
    let pipes = Pipes::take(&mut child, events_read)?;
    ctl.set_nonblocking(true).map_err(|e| SandboxError::io("could not set up the control socket", e))?;
    let ctl = UnixStream::from_std(ctl).map_err(|e| SandboxError::io("could not register the control socket", e))?;
    Ok((child, pipes, ctl))
}

/// Spawns `program` directly, without isolation, in its own process group, with the events
/// pipe on fd 3 and exactly `env`.
pub(crate) fn spawn_direct(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
) -> Result<(Child, Pipes), SandboxError> {
    let (events_read, events_write) = events_pipe()?;
    let events_fd = events_write.as_raw_fd();
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (OsStr::new(k), OsStr::new(v))))
        .current_dir(cwd)
        .process_group(0);
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
    let mut child = spawn(command, program)?;
    drop(events_write);
    let pipes = Pipes::take(&mut child, events_read)?;
    Ok((child, pipes))
}

fn spawn(mut command: Command, program: &Path) -> Result<Child, SandboxError> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| SandboxError::Spawn { program: program.to_path_buf(), source })
}

impl Pipes {
    fn take(child: &mut Child, events: OwnedFd) -> Result<Pipes, SandboxError> {
        let missing = || SandboxError::protocol("a stdio pipe of the child is missing");
        Ok(Pipes {
            stdin: child.stdin.take().ok_or_else(missing)?,
            stdout: child.stdout.take().ok_or_else(missing)?,
            stderr: child.stderr.take().ok_or_else(missing)?,
            events: pipe::Receiver::from_owned_fd(events)
                .map_err(|e| SandboxError::io("could not register the events pipe", e))?,
        })
    }
}

/// A close-on-exec pipe: (read end, write end).
fn events_pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::io("could not create the events pipe", io::Error::from(e)))
}

/// Runs in the forked child: lets `fd` survive `execve`.
fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd number, no memory involved; async-signal-safe.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
