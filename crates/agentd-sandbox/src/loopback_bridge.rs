//! The run's end of its ways out: inside the run's network namespace, which has only `lo`,
//! listeners on loopback ports whose every TCP connection is carried, byte for byte, to a
//! Unix socket in the run's scratch dir that the supervisor serves on the host. Two use
//! it: egress (`127.0.0.1:3128` → `egress.sock`, the run's HTTP proxy, `egress_proxy.rs`)
//! and the host forward (a port the worker chooses → `forward.sock`, carried on to one
//! address, `host_forward.rs`). A Unix socket is reached by path, which crosses network
//! namespaces; no interface or route to the outside exists.
//!
//! The bridge is one small process of the run forked by the init, running as the sandbox's
//! root (invisible to the agent with `hidepid=2` and not signalable by it when the agent
//! runs as uid 1000). It enforces nothing: the host side decides, so an agent that reached
//! a socket some other way, or took the bridge's place, would gain nothing.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;
use tokio::sync::Semaphore;

use crate::error::SandboxError;
use crate::namespaces::{HOST_ID_BASE, IdMapping};

/// Connections one bridged port carries at once; further clients wait in the listen
/// backlog. The host side of each socket holds the same bound.
pub(crate) const MAX_CONNECTIONS: usize = 64;

/// One bridged port: connections to `127.0.0.1:port` in the run go to `socket`, a name in
/// the run's scratch dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bridge {
    pub port: u16,
    pub socket: String,
}

/// A bound port, and the socket its connections go to.
pub(crate) struct Listening {
    listener: TcpListener,
    socket: String,
}

/// Binds every bridged port. Runs in the init once `lo` is up, before the agent exists, so
/// no process of the run can take a port first.
/// Binds the host end of a bridge, `name` in `run_dir`, usable by the sandbox's root only
/// (the bridge's host uid); `what` names it in errors ("egress proxy", "host forward").
pub(crate) fn bind_host_socket(
    run_dir: &Path,
    name: &str,
    mapping: IdMapping,
    what: &str,
) -> Result<tokio::net::UnixListener, SandboxError> {
    let path = run_dir.join(name);
    let failed = |action: &str| {
        let action = format!("could not {action} the {what} socket {}", path.display());
        move |e| SandboxError::io(action, e)
    };
    let listener = tokio::net::UnixListener::bind(&path).map_err(failed("bind"))?;
    if mapping == IdMapping::Range {
        let id = Some(HOST_ID_BASE);
        std::os::unix::fs::chown(&path, id, id).map_err(failed("hand over"))?;
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(failed("restrict"))?;
    Ok(listener)
}

pub(crate) fn bind(bridges: &[Bridge]) -> io::Result<Vec<Listening>> {
    bridges
        .iter()
        .map(|bridge| {
            let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, bridge.port)))?;
            Ok(Listening { listener, socket: bridge.socket.clone() })
        })
        .collect()
}

/// Starts the bridge as a process of the run's PID namespace, reparented to PID 1. Called by
/// the init (single-threaded) right after it forked PID 1.
///
/// A process, not a thread: after `unshare(CLONE_NEWPID)` the init may not create threads
/// (`EINVAL`), its children land in the new namespace. Forked twice, so that PID 1 is its
/// parent: a zombie whose parent is outside the namespace would hold PID 1's exit until the
/// init reaped it, while the init waits for PID 1. It dies with the namespace.
pub(crate) fn start(listening: Vec<Listening>) -> io::Result<()> {
    // SAFETY: the init is single-threaded; the child only closes fds and forks again.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let fds: Vec<RawFd> = listening.iter().map(|l| l.listener.as_raw_fd()).collect();
            keep_only(&fds);
            // SAFETY: as above; the intermediate process exits at once.
            let code = match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    run(listening);
                    1
                }
                Ok(ForkResult::Parent { .. }) => 0,
                Err(_) => 1,
            };
            // SAFETY: _exit skips the destructors of fds this copy of the init does not own.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Ok(status) => return Err(io::Error::other(format!("the bridge did not start ({status:?})"))),
                Err(e) => return Err(e.into()),
            }
        },
    }
}

/// Closes every fd above stderr but `keep`: the control socket and lifeline are the init's.
fn keep_only(keep: &[RawFd]) {
    let close = |first: RawFd, last: RawFd| {
        if first <= last {
            // SAFETY: close_range takes plain numbers; nothing in this process uses these fds
            // again (it only runs the bridge, then calls _exit).
            unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, last as libc::c_uint, 0) };
        }
    };
    let mut kept: Vec<RawFd> = keep.to_vec();
    kept.sort_unstable();
    let mut next = 3;
    for fd in kept {
        close(next, fd - 1);
        next = fd + 1;
    }
    close(next, RawFd::MAX);
}

fn run(listening: Vec<Listening>) {
    if listening.iter().any(|l| l.listener.set_nonblocking(true).is_err()) {
        return;
    }
    // One thread, no blocking pool: this process is never forked from.
    if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_io().build() {
        runtime.block_on(async {
            let mut ports = tokio::task::JoinSet::new();
            for port in listening {
                ports.spawn(serve(port));
            }
            while ports.join_next().await.is_some() {}
        });
    }
}

async fn serve(port: Listening) {
    let Ok(listener) = tokio::net::TcpListener::from_std(port.listener) else { return };
    // Bounds the init's fds; further clients wait in the listen backlog.
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let socket = Arc::new(port.socket);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Ok((mut client, _)) = listener.accept().await else { continue };
        let socket = socket.clone();
        tokio::spawn(async move {
            // Relative on purpose: the cwd inherited from the init is the run's scratch dir,
            // which stays reachable after PID 1's pivot_root replaced this process's root
            // (pivot_root moves only a cwd that is the old root itself); the name is short.
            if let Ok(mut host) = UnixStream::connect(socket.as_str()).await {
                // Either side closing or failing ends the connection; nothing to report.
                let _ = tokio::io::copy_bidirectional(&mut client, &mut host).await;
            }
            drop(slot);
        });
    }
}
