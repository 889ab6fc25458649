//! The run's end of egress: inside the run's network namespace, which has only `lo`, a
//! listener on `127.0.0.1:3128` whose every TCP connection is carried, byte for byte, to
//! the run's proxy socket on the host (`egress_proxy.rs`). A Unix socket is reached by
//! path, which crosses network namespaces; no interface or route to the outside exists.
//!
//! The bridge is a small process of the run forked by the init, running as the sandbox's
//! root (invisible to the agent with `hidepid=2` and not signalable by it when the agent
//! runs as uid 1000). It enforces nothing: the proxy decides on the host, so an agent that
//! reached the socket some other way, or took the bridge's place, would gain nothing.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

use tokio::net::UnixStream;
use tokio::sync::Semaphore;

use crate::egress_proxy::MAX_CONNECTIONS;

/// The port the proxy listens on inside every run that may reach the outside.
pub(crate) const PROXY_PORT: u16 = 3128;
/// The proxy socket's name in the run's scratch dir.
pub(crate) const SOCKET_NAME: &str = "egress.sock";

/// The variables that point HTTP clients at the proxy; the loopback stays direct.
pub(crate) fn proxy_env() -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{PROXY_PORT}");
    let mut env: Vec<(String, String)> = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]
        .into_iter()
        .map(|name| (name.to_owned(), url.clone()))
        .collect();
    for name in ["NO_PROXY", "no_proxy"] {
        env.push((name.to_owned(), "localhost,127.0.0.1,::1".to_owned()));
    }
    env
}

/// Binds the proxy port. Runs in the init once `lo` is up, before the agent exists, so no
/// process of the run can take the port first.
pub(crate) fn bind() -> io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, PROXY_PORT)))
}

/// Starts the bridge as a process of the run's PID namespace, reparented to PID 1. Called by
/// the init (single-threaded) right after it forked PID 1.
///
/// A process, not a thread: after `unshare(CLONE_NEWPID)` the init may not create threads
/// (`EINVAL`), its children land in the new namespace. Forked twice, so that PID 1 is its
/// parent: a zombie whose parent is outside the namespace would hold PID 1's exit until the
/// init reaped it, while the init waits for PID 1. It dies with the namespace.
pub(crate) fn start(listener: TcpListener) -> io::Result<()> {
    // SAFETY: the init is single-threaded; the child only closes fds and forks again.
    match unsafe { fork() }? {
        ForkResult::Child => {
            keep_only(listener.as_raw_fd());
            // SAFETY: as above; the intermediate process exits at once.
            let code = match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    run(listener);
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
fn keep_only(keep: RawFd) {
    let close = |first: RawFd, last: RawFd| {
        if first <= last {
            // SAFETY: close_range takes plain numbers; nothing in this process uses these fds
            // again (it only runs the bridge, then calls _exit).
            unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, last as libc::c_uint, 0) };
        }
    };
    close(3, keep - 1);
    close(keep + 1, RawFd::MAX);
}

fn run(listener: TcpListener) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    // One thread, no blocking pool: this process is never forked from.
    if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_io().build() {
        runtime.block_on(serve(listener));
    }
}

async fn serve(listener: TcpListener) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    // Bounds the init's fds; further clients wait in the listen backlog.
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Ok((mut client, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            // Relative on purpose: the cwd inherited from the init is the run's scratch dir,
            // which stays reachable after PID 1's pivot_root replaced this process's root
            // (pivot_root moves only a cwd that is the old root itself); the name is short.
            if let Ok(mut proxy) = UnixStream::connect(SOCKET_NAME).await {
                // Either side closing or failing ends the connection; nothing to report.
                let _ = tokio::io::copy_bidirectional(&mut client, &mut proxy).await;
            }
            drop(slot);
        });
    }
}
