//! The launcher process (`<init_program> __sandbox-init --launcher <socket fd>`): forks one
//! sandbox init per request, reaps them, and spends idle time preparing network namespaces.
//! Single-threaded, so it may fork freely; it exits when the supervisor closes its end of
//! the socket. The protocol is described in `launcher_client.rs`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, fork, setsid};

use crate::fd_passing::{self, MAX_FDS};
use crate::init;
use crate::network::NetnsPool;

/// A forked init the launcher has yet to reap.
struct Forked {
    pid: Pid,
    pidfd: OwnedFd,
}

/// What the launcher woke up for.
struct Work {
    request: bool,
    /// Indexes (ascending) of the inits that have exited.
    ended: Vec<usize>,
}

/// Serves requests until EOF; returns the exit code.
pub(crate) fn serve(socket: OwnedFd) -> i32 {
    // Out of the worker's process group: a terminal's Ctrl-C is the worker's to handle
    // (the launcher ends when the worker closes the socket).
    let _ = setsid(); // fails only for a group leader, which it is not
    let mut forked: Vec<Forked> = Vec::new();
    let mut netns = NetnsPool::new();
    // Set when an init has ended: its run no longer needs the CPU.
    let mut replace_one = false;
    loop {
        // The pool is refilled while no run is starting (its CPU time would slow the start
        // down on a small host): fully when no init is alive, one per ended init otherwise.
        let idle_work = netns.wants_more() && (forked.is_empty() || replace_one);
        let timeout = if idle_work { PollTimeout::ZERO } else { PollTimeout::NONE };
        let work = match wait_for_work(&socket, &forked, timeout) {
            Ok(work) => work,
            Err(e) => {
                eprintln!("agentd sandbox launcher: waiting for requests: {e}");
                return 1;
            }
        };
        let any_ended = !work.ended.is_empty();
        let woken = work.request || any_ended;
        for index in work.ended.into_iter().rev() {
            let init = forked.swap_remove(index);
            // It has exited (its pidfd is readable): this returns at once.
            let _ = waitpid(init.pid, Some(WaitPidFlag::WNOHANG));
        }
        if any_ended {
            replace_one = true;
        } else if !woken && idle_work {
            netns.make_one();
            replace_one = false;
        }
        if !work.request {
            continue;
        }
        let mut byte = [0u8; 1];
        let fds = match fd_passing::recv(&socket, &mut byte) {
            Ok((0, _)) => return 0, // the supervisor is gone
            Ok((1, fds)) => fds,
            Ok(_) => continue,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) => continue,
            Err(e) => {
                eprintln!("agentd sandbox launcher: reading a request: {e}");
                return 1;
            }
        };
        let reply = match <[OwnedFd; MAX_FDS]>::try_from(fds) {
            Ok(fds) => {
                let run_netns = netns.take();
                fork_init(fds, run_netns, Inherited { socket: &socket, forked: &forked, netns: &netns })
            }
            Err(_) => Err(Errno::EINVAL), // the wrong fds are closed as they drop
        };
        let sent = match reply {
            Ok(init) => {
                let sent = fd_passing::send(&socket, &init.pid.as_raw().to_le_bytes(), &[init.pidfd.as_raw_fd()]);
                forked.push(init);
                sent
            }
            Err(errno) => fd_passing::send(&socket, &(-(errno as i32)).to_le_bytes(), &[]),
        };
        if let Err(e) = sent {
            // The supervisor is gone; its inits see EOF on their control sockets.
            eprintln!("agentd sandbox launcher: answering a request: {e}");
            return 1;
        }
    }
}

/// Blocks (at most `timeout`) until a request or an init's end.
fn wait_for_work(socket: &OwnedFd, forked: &[Forked], timeout: PollTimeout) -> nix::Result<Work> {
    let mut fds: Vec<PollFd> = std::iter::once(socket.as_fd())
        .chain(forked.iter().map(|init| init.pidfd.as_fd()))
        .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
        .collect();
    loop {
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
    let ended = fds.iter().skip(1).enumerate().filter(|(_, fd)| ready(fd)).map(|(index, _)| index).collect();
    Ok(Work { request: ready(&fds[0]), ended })
}

/// The launcher's fds that a forked init must not keep.
struct Inherited<'a> {
    socket: &'a OwnedFd,
    forked: &'a [Forked],
    netns: &'a NetnsPool,
}

/// Forks an init that takes over the run's fds (and network namespace, if one is ready);
/// the parent keeps a pidfd to reap it and to hand to the supervisor.
fn fork_init(fds: [OwnedFd; MAX_FDS], netns: Option<OwnedFd>, inherited: Inherited) -> nix::Result<Forked> {
    // SAFETY: the launcher is single-threaded.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let Inherited { socket, forked, netns: pool } = inherited;
            let launchers = std::iter::once(socket).chain(forked.iter().map(|init| &init.pidfd)).chain(pool.fds());
            for fd in launchers {
                // SAFETY: closing fds this process never uses again; it never returns into
                // the launcher's loop, where their owners would close them a second time.
                unsafe { libc::close(fd.as_raw_fd()) };
            }
            let code = run_init(fds, netns);
            // SAFETY: _exit ends the fork without running the launcher's exit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop((fds, netns));
            match init::pidfd_open(child) {
                Ok(pidfd) => Ok(Forked { pid: child, pidfd }),
                Err(e) => {
                    // Without a pidfd nobody could stop it: end it now.
                    let _ = kill(child, Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    Err(e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))
                }
            }
        }
    }
}

/// In the forked child: the run's pipes become stdio, then the init takes over.
fn run_init(fds: [OwnedFd; MAX_FDS], netns: Option<OwnedFd>) -> i32 {
    let [ctl, stdin, stdout, stderr, events] = fds;
    if let Err(e) = dup2_stdin(&stdin).and_then(|()| dup2_stdout(&stdout)).and_then(|()| dup2_stderr(&stderr)) {
        eprintln!("agentd sandbox init: taking over the run's stdio: {e}");
        return 2;
    }
    drop((stdin, stdout, stderr));
    init::serve_run(ctl, events, netns)
}
