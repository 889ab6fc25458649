//! The supervisor's side of the launcher: a small single-threaded process, started from the
//! init program on the first run of a `Sandbox`, that forks one sandbox init per run.
//!
//! Forking the launcher costs a fraction of what starting the init program for every run
//! cost: the fork of the supervisor's large multi-threaded address space, the `execve`, and
//! the loading and relocation of a 100 MB binary were about 2 ms of every sandboxed run.
//!
//! Protocol, on a Unix stream socket: the request is one byte with the run's five fds
//! attached (control socket, stdin, stdout, stderr, events); the reply is the init's pid
//! as an `i32` with a pidfd for it attached, or a negative errno without fd. The supervisor
//! holds the pidfd: it signals the init and learns of its end without being its parent (the
//! launcher reaps it). One request is in flight at a time.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::UnixStream;

use crate::INIT_ARG;
use crate::error::SandboxError;
use crate::fd_passing;
use crate::run_pipes::{self, Pipes};

/// `<init_program> __sandbox-init --launcher <socket fd>` serves launch requests.
pub(crate) const LAUNCHER_ARG: &str = "--launcher";

/// Starts sandbox inits through a launcher process, started on first use and replaced
/// when it has died.
#[derive(Debug)]
pub(crate) struct Launcher {
    program: PathBuf,
    connection: tokio::sync::Mutex<Option<Connection>>,
}

#[derive(Debug)]
struct Connection {
    socket: UnixStream,
    process: Child,
}

impl Launcher {
    pub(crate) fn new(program: &Path) -> Launcher {
        Launcher { program: program.to_path_buf(), connection: tokio::sync::Mutex::new(None) }
    }

    /// The launcher's pid, while one is running and not busy with a request.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.connection.try_lock().ok()?.as_ref().map(|connection| connection.process.id())
    }

    /// Starts an init with fresh pipes; returns it, the supervisor's pipe ends and the
    /// supervisor's end of the control socket.
    pub(crate) async fn launch(&self) -> Result<(InitProcess, Pipes, UnixStream), SandboxError> {
        let (ours, theirs) = run_pipes::create()?;
        let (ctl, ctl_theirs) =
            StdUnixStream::pair().map_err(|e| SandboxError::io("could not create the control socket", e))?;
        let fds = [
            ctl_theirs.as_raw_fd(),
            theirs.stdin.as_raw_fd(),
            theirs.stdout.as_raw_fd(),
            theirs.stderr.as_raw_fd(),
            theirs.events.as_raw_fd(),
        ];
        let mut slot = self.connection.lock().await;
        // Taken out while the request is in flight: if this future is dropped halfway, the
        // half-read connection goes with it and the next run starts a new launcher.
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => Connection::start(&self.program)?,
        };
        if !connection.is_running() {
            tracing::warn!("the sandbox launcher exited; starting a new one");
            connection = Connection::start(&self.program)?;
        }
        // A broken exchange drops the connection (and kills its launcher): the next run
        // starts afresh rather than retrying fds a half-served request may hold. A launcher
        // that answered with an error (it could not fork) stays.
        let reply = match connection.request(&fds).await {
            Ok(reply) => {
                *slot = Some(connection);
                reply
            }
            Err(e) => return Err(SandboxError::io("the sandbox launcher failed", e)),
        };
        drop(slot);
        let (pid, pidfd) = reply.map_err(|e| SandboxError::io("the sandbox launcher could not fork an init", e))?;
        // Our copies of the init's ends must go, or EOF would never come on the pipes.
        drop((theirs, ctl_theirs));
        let init = InitProcess::new(pid, pidfd)?;
        let pipes = ours.register()?;
        ctl.set_nonblocking(true).map_err(|e| SandboxError::io("could not set up the control socket", e))?;
        let ctl =
            UnixStream::from_std(ctl).map_err(|e| SandboxError::io("could not register the control socket", e))?;
        Ok((init, pipes, ctl))
    }
}

impl Connection {
    fn start(program: &Path) -> Result<Connection, SandboxError> {
        let (ours, theirs) =
            StdUnixStream::pair().map_err(|e| SandboxError::io("could not create the launcher socket", e))?;
        let fd = theirs.as_raw_fd();
        let mut command = Command::new(program);
        command
            .args([INIT_ARG, LAUNCHER_ARG, &fd.to_string()])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: the hook only calls fcntl, which is async-signal-safe.
        unsafe {
            command.pre_exec(move || run_pipes::clear_cloexec(fd));
        }
        let process =
            command.spawn().map_err(|source| SandboxError::Spawn { program: program.to_path_buf(), source })?;
        drop(theirs);
        let register = |e| SandboxError::io("could not register the launcher socket", e);
        ours.set_nonblocking(true).map_err(register)?;
        let socket = UnixStream::from_std(ours).map_err(register)?;
        Ok(Connection { socket, process })
    }

    fn is_running(&mut self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
    }

    /// Sends the init's fds (ctl, stdin, stdout, stderr, events); returns its pid and pidfd.
    /// The outer error is a broken exchange; the inner one the launcher's answer.
    async fn request(&mut self, fds: &[RawFd; fd_passing::MAX_FDS]) -> io::Result<io::Result<(u32, OwnedFd)>> {
        self.socket.async_io(Interest::WRITABLE, || fd_passing::send(&self.socket, &[1], fds)).await?;
        let mut reply = [0u8; 4];
        let (n, mut fds) =
            self.socket.async_io(Interest::READABLE, || fd_passing::recv(&self.socket, &mut reply)).await?;
        let code = i32::from_le_bytes(reply);
        match (n, fds.pop()) {
            (4, Some(pidfd)) if code > 0 && fds.is_empty() => Ok(Ok((code.unsigned_abs(), pidfd))),
            (4, None) if code < 0 => Ok(Err(io::Error::from_raw_os_error(-code))),
            (0, _) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the launcher closed its socket")),
            _ => Err(io::Error::other("malformed reply from the launcher")),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The launcher exits by itself on EOF; killing it makes the wait immediate. The
        // inits it forked live on (they are no longer its concern) and are reaped by
        // whoever adopts them.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A sandbox init the supervisor did not fork: known by pid and pidfd. Dropping it before
/// it ended SIGKILLs it.
#[derive(Debug)]
pub(crate) struct InitProcess {
    pid: u32,
    pidfd: AsyncFd<OwnedFd>,
    ended: bool,
}

impl InitProcess {
    fn new(pid: u32, pidfd: OwnedFd) -> Result<InitProcess, SandboxError> {
        // SAFETY: the `OwnedFd` stays open, and the same fd, for as long as the `AsyncFd` owns it.
        let pidfd = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
            .map_err(|e| SandboxError::io("could not register the init's pidfd", e.into_parts().1))?;
        Ok(InitProcess { pid, pidfd, ended: false })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves once the init has exited (a pidfd turns readable then, and stays so).
    pub(crate) async fn wait(&mut self) -> io::Result<()> {
        if !self.ended {
            let _ready = self.pidfd.readable().await?;
            self.ended = true;
        }
        Ok(())
    }

    /// Whether the init has exited, without waiting.
    pub(crate) fn has_ended(&mut self) -> bool {
        if !self.ended {
            let mut fds = [PollFd::new(self.pidfd.get_ref().as_fd(), PollFlags::POLLIN)];
            self.ended = matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0);
        }
        self.ended
    }

    /// SIGKILLs the init (through the pidfd: never another process that reused the pid).
    pub(crate) fn kill(&self) -> io::Result<()> {
        let fd: RawFd = self.pidfd.get_ref().as_raw_fd();
        // SAFETY: pidfd_send_signal takes an fd, a signal number and null info.
        let result = unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, fd, libc::SIGKILL, std::ptr::null::<libc::siginfo_t>(), 0)
        };
        match result {
            0 => Ok(()),
            _ => match io::Error::last_os_error() {
                e if e.raw_os_error() == Some(libc::ESRCH) => Ok(()), // already gone
                e => Err(e),
            },
        }
    }
}

impl Drop for InitProcess {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.kill();
        }
    }
}
