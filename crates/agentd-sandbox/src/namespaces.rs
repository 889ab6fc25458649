//! The namespaces of a run and the user-namespace id mapping.
//!
//! The init unshares user, mount, network, IPC, UTS and PID namespaces in one call; the
//! supervisor (outside, with the privileges the init lacks) then writes its id maps.
//! As root the sandbox maps a whole range to unused host ids (inside 0 → host
//! `HOST_ID_BASE`), so even the sandbox's root is nobody on the host and the agent runs as
//! inside uid 1000. Without root only one id can be mapped (`0 <euid> 1`): the agent then
//! runs as inside uid 0 with every capability dropped.

use std::fs;

use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid, setresgid, setresuid};

use crate::error::SandboxError;

/// First host uid/gid of the range mapped into sandboxes when running as root.
pub const HOST_ID_BASE: u32 = 1_000_000;
/// Number of ids mapped from `HOST_ID_BASE` (inside 0..65536).
pub const HOST_ID_COUNT: u32 = 65_536;
/// The agent's uid and gid inside the sandbox when a range is mapped.
pub const AGENT_ID: u32 = 1000;

/// How ids inside the sandbox map to host ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdMapping {
    /// Root supervisor: inside `0..HOST_ID_COUNT` → host `HOST_ID_BASE..`.
    Range,
    /// Unprivileged supervisor: inside 0 → the supervisor's own uid/gid, nothing else.
    Single { uid: u32, gid: u32 },
}

impl IdMapping {
    /// The mapping this process can set up.
    pub(crate) fn for_current_process() -> IdMapping {
        if Uid::effective().is_root() {
            IdMapping::Range
        } else {
            IdMapping::Single { uid: Uid::effective().as_raw(), gid: Gid::effective().as_raw() }
        }
    }

    /// The (uid, gid) inside the sandbox the program runs as.
    pub(crate) fn agent_ids(self) -> (u32, u32) {
        match self {
            IdMapping::Range => (AGENT_ID, AGENT_ID),
            IdMapping::Single { .. } => (0, 0),
        }
    }

    /// Writes `setgroups` (deny), `uid_map` and `gid_map` of the process `pid`, which must
    /// have just unshared its user namespace.
    pub(crate) fn write_maps(self, pid: u32) -> Result<(), SandboxError> {
        let (uid_map, gid_map) = match self {
            IdMapping::Range => {
                let line = format!("0 {HOST_ID_BASE} {HOST_ID_COUNT}\n");
                (line.clone(), line)
            }
            IdMapping::Single { uid, gid } => (format!("0 {uid} 1\n"), format!("0 {gid} 1\n")),
        };
        let write = |file: &str, content: &str| {
            let path = format!("/proc/{pid}/{file}");
            fs::write(&path, content).map_err(|e| SandboxError::io(format!("could not write {path}"), e))
        };
        write("setgroups", "deny")?;
        write("uid_map", &uid_map)?;
        write("gid_map", &gid_map)
    }
}

/// The namespaces every run gets besides its network namespace.
const RUN_NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWUSER
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWPID);

/// Moves the calling process into new user, mount, network, IPC, UTS namespaces; its next
/// child becomes PID 1 of a new PID namespace.
pub(crate) fn unshare_all() -> nix::Result<()> {
    unshare(RUN_NAMESPACES | CloneFlags::CLONE_NEWNET)
}

/// `unshare_all` for a process that has already joined a fresh network namespace.
pub(crate) fn unshare_all_but_network() -> nix::Result<()> {
    unshare(RUN_NAMESPACES)
}

/// A cgroup namespace rooted at the caller's current cgroups (kernels without cgroup
/// namespaces are left as they are: the agent then sees its cgroup path, nothing more).
pub(crate) fn unshare_cgroup() -> nix::Result<()> {
    if !std::path::Path::new("/proc/self/ns/cgroup").exists() {
        return Ok(());
    }
    unshare(CloneFlags::CLONE_NEWCGROUP)
}

/// After the maps are written: become uid/gid 0 inside, so that files created in the new
/// root have mapped owners (the host uid the init started with is unmapped there).
pub(crate) fn become_root_inside() -> nix::Result<()> {
    let root_gid = Gid::from_raw(0);
    let root_uid = Uid::from_raw(0);
    setresgid(root_gid, root_gid, root_gid)?;
    setresuid(root_uid, root_uid, root_uid)
}
