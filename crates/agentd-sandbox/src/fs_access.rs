//! Landlock for the agent: a second, independent wall behind the mount namespace. Even if
//! an agent found a way to a host path (a mount bug, a leaked fd to a directory), the
//! kernel would still refuse it: the agent may read and execute the runtime dirs, `/etc`,
//! `/agent` and the extra mounts; read `/proc` and `/dev`; write only `/work`, `/tmp`,
//! `/outputs`, `/dev/shm` and the harmless devices. Nothing else, not even `/`'s listing.
//! ABI 6 also scopes signals and abstract unix sockets to the run's own processes. TCP
//! rights (`AccessNet`) are deliberately not handled: the network namespace is the wall,
//! and an agent with egress must connect to its proxy at `127.0.0.1:3128`.
//!
//! Best effort: on a kernel without Landlock (or with an older ABI) the ruleset is applied
//! as far as the kernel goes; `Sandbox::new` probes the ABI and reports what is missing.

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
    path_beneath_rules,
};

use crate::init_control::InitConfig;
use crate::mounts::RUNTIME_DIRS;
use crate::spec::{BUNDLE_MOUNT, OUTPUTS_MOUNT};
use crate::step::{Stage, StepError};

/// The newest ABI whose rights we ask for; older kernels get the subset they know.
const TARGET_ABI: ABI = ABI::V6;
/// Read-only beyond the runtime dirs and the extra mounts.
const READ_ONLY: &[&str] = &["/etc", "/proc", "/dev", BUNDLE_MOUNT];
/// Where the agent may create, change and delete files.
const WRITABLE: &[&str] =
    &["/work", "/tmp", OUTPUTS_MOUNT, "/dev/shm", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

/// Restricts the calling process (and all it will execute or fork) to the run's paths.
/// Runs in the agent after `no_new_privs`, inside the new root.
pub(crate) fn restrict(config: &InitConfig) -> Result<RulesetStatus, StepError> {
    let read_only: Vec<String> = RUNTIME_DIRS
        .iter()
        .chain(READ_ONLY)
        .map(|p| (*p).to_string())
        .chain(config.extra_ro_mounts.iter().map(|(_, inside)| inside.clone()))
        .collect();
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET_ABI))
        .and_then(|r| r.scope(Scope::from_all(TARGET_ABI)))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(&read_only, AccessFs::from_read(TARGET_ABI))))
        .and_then(|r| r.add_rules(path_beneath_rules(WRITABLE, AccessFs::from_all(TARGET_ABI))))
        .and_then(|r| r.restrict_self())
        .stage(|| "applying the landlock ruleset".into())?;
    Ok(status.ruleset)
}

/// The Landlock ABI of the running kernel (0: none), without creating anything.
pub(crate) fn kernel_abi() -> i64 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attr, size 0 and the VERSION flag the call only returns a number.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    abi.max(0)
}
