//! The init program's probe mode (`<init_program> __sandbox-init --probe`), which
//! `Sandbox::new` runs once (`host_probe.rs`): in a process of its own, it tries what runs
//! will need and prints what worked, then exits, taking whatever it set up along.
//!
//! It unshares the run namespaces (an error ends the probe: no run could start), mounts
//! an overlay of two empty directories the supervisor made in its cwd, as the runs'
//! `mounts.rs` does with the bundle, and installs the agent's seccomp filter for real
//! (container runtimes and old kernels may refuse either).

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use crate::namespaces::{self, IdMapping};
use crate::{mounts, seccomp};

/// `<init_program> __sandbox-init --probe`, run in a directory holding `PROBE_DIRS`.
pub(crate) const PROBE_ARG: &str = "--probe";
/// What the init prints when the probe succeeded (a program that merely exits 0 is no init).
pub(crate) const PROBE_ANSWER: &str = "agentd-sandbox-init: namespaces ok";
/// The line saying that a user namespace's root may mount overlays.
pub(crate) const OVERLAY_OK: &str = "overlay ok";
/// The line saying that the seccomp filter installed.
pub(crate) const SECCOMP_OK: &str = "seccomp ok";
/// The empty directories the supervisor makes for the probe: the overlay's two layers and
/// its mountpoint.
pub(crate) const PROBE_DIRS: [&str; 3] = ["layer", "empty", "mountpoint"];

/// Runs the probe; an `Err` is the reason the namespaces could not be made.
pub(crate) fn run() -> Result<(), String> {
    // Taken before the unshare, after which they read as the overflow id.
    let (uid, gid) = (Uid::effective().as_raw(), Gid::effective().as_raw());
    namespaces::unshare_all().map_err(|e| format!("cannot create namespaces: {e}"))?;
    println!("{PROBE_ANSWER}");
    match overlay(IdMapping::Single { uid, gid }) {
        Ok(()) => println!("{OVERLAY_OK}"),
        Err(e) => println!("overlay cannot be mounted in a user namespace: {e}"),
    }
    // Last: nothing else runs under the filter.
    match nix::sys::prctl::set_no_new_privs()
        .map_err(|e| e.to_string())
        .and_then(|()| seccomp::compile())
        .and_then(|programs| seccomp::install(&programs).map_err(|e| e.to_string()))
    {
        Ok(()) => println!("{SECCOMP_OK}"),
        Err(e) => println!("seccomp filter cannot be installed: {e}"),
    }
    Ok(())
}

/// Maps this process's own ids (overlayfs wants a mounter with mapped ids), then mounts the
/// overlay the way a run's PID 1 mounts the bundle's.
fn overlay(own: IdMapping) -> Result<(), String> {
    own.write_maps(std::process::id()).map_err(|e| {
        let cause = std::error::Error::source(&e).map(|cause| format!(": {cause}")).unwrap_or_default();
        format!("{e}{cause}")
    })?;
    let [layer, empty, mountpoint] = PROBE_DIRS;
    let open_dir = |name: &str| -> Result<OwnedFd, String> {
        open(name, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| format!("opening {name}: {e}"))
    };
    mounts::mount_overlay(&open_dir(layer)?, &open_dir(empty)?, Path::new(mountpoint)).map_err(|e| e.to_string())
}
