//! Dropping privileges in the agent process just before `execve`: the capability bounding
//! set, the agent's uid/gid, every capability set, and `no_new_privs` so nothing the
//! program executes can regain them. Landlock and seccomp follow in `agent.rs`.

use std::io;

use nix::sys::prctl;
use nix::unistd::{Gid, Uid, setresgid, setresuid};

use crate::step::{Stage, StepError};

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets as two 32-bit words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// Capability numbers to drop from the bounding set; the kernel stops at its last one.
const MAX_CAPABILITY: libc::c_ulong = 63;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Becomes `uid:gid` with no capabilities at all and `no_new_privs` set.
pub(crate) fn drop_to(uid: u32, gid: u32) -> Result<(), StepError> {
    drop_bounding_set().stage(|| "dropping the capability bounding set".into())?;
    let (gid, uid) = (Gid::from_raw(gid), Uid::from_raw(uid));
    setresgid(gid, gid, gid).stage(|| format!("setresgid {gid}"))?;
    setresuid(uid, uid, uid).stage(|| format!("setresuid {uid}"))?;
    clear_capabilities().stage(|| "clearing capabilities".into())?;
    prctl::set_no_new_privs().stage(|| "setting no_new_privs".into())
}

/// Needs `CAP_SETPCAP`, so it runs before the uid change.
fn drop_bounding_set() -> io::Result<()> {
    for cap in 0..=MAX_CAPABILITY {
        // SAFETY: PR_CAPBSET_DROP takes a capability number and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL) {
                break; // past the kernel's last capability
            }
            return Err(err);
        }
    }
    Ok(())
}

/// Clears the effective, permitted, inheritable and ambient sets. Needed when the agent
/// stays uid 0 inside (single-id mapping); a no-op after a change to a non-zero uid.
fn clear_capabilities() -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    let rc = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let data = [CapData::default(); 2];
    // SAFETY: header and data are valid for the duration of the call and laid out as the
    // kernel's `__user_cap_header_struct` and two `__user_cap_data_struct`s (version 3).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
