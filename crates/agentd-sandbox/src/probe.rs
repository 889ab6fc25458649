//! What the host supports, checked once in `Sandbox::new`: the namespaces a run needs
//! (missing ones are an error), and the hardening this version does not apply yet (logged).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::unistd::Uid;

use crate::error::SandboxError;
use crate::sandbox::SandboxSettings;

const NAMESPACES: &[&str] = &["user", "mnt", "pid", "net", "ipc", "uts"];
/// Mechanisms of DESIGN.md §6 that this version does not apply yet.
const NOT_YET_APPLIED: &[&str] = &["seccomp filter", "landlock", "cgroup limits", "rlimits"];

pub(crate) fn check_host(settings: &SandboxSettings) -> Result<(), SandboxError> {
    let unsupported = |reason: String| SandboxError::Unsupported { reason };
    if !settings.init_program.is_file() {
        return Err(unsupported(format!(
            "init program {} is not a file",
            settings.init_program.display()
        )));
    }
    fs::create_dir_all(&settings.scratch_dir).map_err(|e| {
        SandboxError::io(
            format!(
                "could not create scratch dir {}",
                settings.scratch_dir.display()
            ),
            e,
        )
    })?;
    for ns in NAMESPACES {
        if !Path::new("/proc/self/ns").join(ns).exists() {
            return Err(unsupported(format!("the kernel has no {ns} namespaces")));
        }
    }
    if read_number("/proc/sys/user/max_user_namespaces") == Some(0) {
        return Err(unsupported(
            "user namespaces are disabled (sysctl user.max_user_namespaces = 0)".into(),
        ));
    }
    if !Uid::effective().is_root() {
        if read_number("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
            return Err(unsupported(
                "unprivileged user namespaces are disabled \
                 (sysctl kernel.unprivileged_userns_clone = 0); run as root or enable them"
                    .into(),
            ));
        }
        if read_number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
            tracing::warn!(
                "AppArmor restricts unprivileged user namespaces; sandbox setup may fail"
            );
        }
        tracing::warn!(
            "not running as root: the agent runs as uid 0 inside its sandbox, \
             without capabilities, mapped to this user's uid"
        );
    }
    for mechanism in NOT_YET_APPLIED {
        tracing::warn!(mechanism, "sandbox mechanism not applied by this version");
    }
    Ok(())
}

/// The agent runs as an unprivileged uid that owns nothing on the host: the bundle must be
/// readable and traversable by others, or the program cannot even be opened.
pub(crate) fn check_readable_by_others(dir: &Path) -> Result<(), SandboxError> {
    let mode = fs::metadata(dir)
        .map_err(|e| SandboxError::io(format!("could not inspect {}", dir.display()), e))?
        .permissions()
        .mode();
    if mode & 0o005 != 0o005 {
        return Err(SandboxError::InvalidSpec {
            reason: format!(
                "bundle_dir {} has mode {:o}; the sandboxed agent needs o+rx on it (e.g. 0755)",
                dir.display(),
                mode & 0o7777
            ),
        });
    }
    Ok(())
}

fn read_number(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}
