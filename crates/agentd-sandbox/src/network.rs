//! The run's network: its own network namespace, holding only a loopback interface that
//! this module brings up, so the agent's processes can talk to each other over 127.0.0.1
//! while the host's loopback services (another namespace) and every outside address stay
//! unreachable: there is no other interface and no route.
//!
//! Creating a network namespace is the dearest step of a sandbox's start (about 0.5 ms,
//! more than all other namespaces together), so a root launcher makes them ahead of need,
//! while it is idle: `NetnsPool`. Each is used by one run only. Such a namespace belongs to
//! the host's user namespace, so even the sandbox's root has no capability in it. An
//! unprivileged launcher cannot make them; its inits unshare their own.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::stat::Mode;
use nix::unistd::Uid;

/// How many fresh network namespaces the launcher keeps ready: enough for a burst of runs
/// on a small worker; a run that finds the pool empty waits for one to be made.
const POOL_SIZE: usize = 4;

/// Fresh network namespaces (loopback up), made ahead of need by the launcher.
pub(crate) struct NetnsPool {
    /// The launcher's own network namespace, returned to after making each one.
    home: Option<OwnedFd>,
    ready: Vec<OwnedFd>,
}

impl NetnsPool {
    /// An empty pool; a disabled one when this process may not create network namespaces
    /// without a user namespace of its own (i.e. it is not root).
    pub(crate) fn new() -> NetnsPool {
        let home = match Uid::effective().is_root() {
            true => own_netns().map_err(|e| eprintln!("agentd sandbox launcher: no network namespace pool: {e}")).ok(),
            false => None,
        };
        NetnsPool { home, ready: Vec::with_capacity(POOL_SIZE) }
    }

    /// Whether the pool is enabled and not full.
    pub(crate) fn wants_more(&self) -> bool {
        self.home.is_some() && self.ready.len() < POOL_SIZE
    }

    /// Makes one namespace; on failure the pool stops for good (runs unshare their own).
    pub(crate) fn make_one(&mut self) {
        let Some(home) = &self.home else { return };
        match make(home) {
            Ok(netns) => self.ready.push(netns),
            Err(e) => {
                eprintln!("agentd sandbox launcher: could not prepare a network namespace, runs make their own: {e}");
                self.home = None;
                self.ready.clear();
            }
        }
    }

    /// A fresh namespace for one run: from the pool, or made now if it is empty (`None`
    /// when the pool is disabled).
    pub(crate) fn take(&mut self) -> Option<OwnedFd> {
        if self.ready.is_empty() {
            self.make_one();
        }
        self.ready.pop()
    }

    /// Every fd the pool holds (a forked init closes them all).
    pub(crate) fn fds(&self) -> impl Iterator<Item = &OwnedFd> {
        self.home.iter().chain(&self.ready)
    }
}

fn own_netns() -> nix::Result<OwnedFd> {
    open("/proc/thread-self/ns/net", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
}

/// A new network namespace with `lo` up; the caller is back in `home` afterwards.
fn make(home: &OwnedFd) -> io::Result<OwnedFd> {
    unshare(CloneFlags::CLONE_NEWNET)?;
    let made = bring_up_loopback().and_then(|()| own_netns().map_err(io::Error::from));
    // Back home whatever happened: the launcher's later children must not start in it.
    setns(home.as_fd(), CloneFlags::CLONE_NEWNET)?;
    made
}

/// Sets `lo` up (`SIOCSIFFLAGS`). Runs in the launcher (root on the host) for a pooled
/// namespace, or in an init that became root of the run's user namespace, which then owns
/// the network namespace (hence `CAP_NET_ADMIN` there).
pub(crate) fn bring_up_loopback() -> io::Result<()> {
    // SAFETY: socket() takes plain integers; the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: the ioctls read and write `request`, which lives across both calls.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
