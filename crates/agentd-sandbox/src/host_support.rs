//! What this host gives the sandbox beyond namespaces, found once per `Sandbox`: the cgroup
//! parents for run cgroups, the compiled seccomp program, the Landlock ABI, and the list of
//! missing mechanisms that `Sandbox::missing_mechanisms` reports and `new` logs.

use std::path::Path;

use crate::cgroup::{CgroupHost, RunCgroup};
use crate::error::SandboxError;
use crate::fs_access;
use crate::host_probe::ProbeReport;
use crate::namespaces::IdMapping;
use crate::sandbox::SandboxSettings;
use crate::seccomp;
use crate::spec::RunLimits;

/// Landlock ABI from which every right we ask for (and signal scoping) is enforced.
const FULL_LANDLOCK_ABI: i64 = 6;

#[derive(Debug)]
pub(crate) struct HostSupport {
    cgroups: Option<CgroupHost>,
    /// Run cgroups are called `<prefix><instance id>-<run dir name>`: the scratch dir's name
    /// tells whose they are, the instance id which `Sandbox`'s (see `instance.rs`).
    pub cgroup_prefix: String,
    pub seccomp: Vec<seccomp::Program>,
    pub landlock_abi: i64,
    /// Overlays mount in a user namespace: runs serve their bundle and extra mounts through
    /// them, so that their host paths do not show in the run's mount table.
    pub hide_mount_sources: bool,
    pub missing: Vec<String>,
}

impl HostSupport {
    /// `instance_id` names the cgroups made to prove a hierarchy writable, so that those a
    /// killed process left behind are found with its run cgroups.
    pub(crate) fn probe(
        settings: &SandboxSettings,
        mapping: IdMapping,
        report: ProbeReport,
        instance_id: &str,
    ) -> Result<HostSupport, SandboxError> {
        let mut missing = Vec::new();
        let cgroup_prefix = cgroup_prefix(&settings.scratch_dir);
        let cgroups = match CgroupHost::detect(&format!("{cgroup_prefix}{instance_id}-")) {
            Ok(host) => Some(host),
            Err(reason) => {
                tracing::warn!(%reason, "no usable cgroups: runs get no memory, pids or CPU caps");
                None
            }
        };
        let coverage = cgroups.as_ref().map(CgroupHost::coverage).unwrap_or_default();
        for (has, controller) in [(coverage.memory, "memory"), (coverage.pids, "pids"), (coverage.cpu, "cpu")] {
            if !has {
                missing
                    .push(format!("cgroup {controller} controller (no writable {controller} cgroup to nest runs in)"));
            }
        }
        let seccomp = match report.seccomp.and_then(|()| seccomp::compile()) {
            Ok(programs) => programs,
            Err(reason) => {
                missing.push(format!("seccomp filter ({reason})"));
                Vec::new()
            }
        };
        let hide_mount_sources = match report.overlay {
            Ok(()) => true,
            Err(reason) => {
                missing.push(format!(
                    "overlayfs in user namespaces ({reason}); without it a run's /proc/self/mountinfo \
                     shows the host paths of its bundle and extra mounts when they are too big to copy"
                ));
                false
            }
        };
        let landlock_abi = fs_access::kernel_abi();
        if landlock_abi == 0 {
            missing.push("landlock (kernel without Landlock, or not enabled at boot via lsm=)".into());
        } else if landlock_abi < FULL_LANDLOCK_ABI {
            tracing::info!(landlock_abi, "Landlock is partial on this kernel (ABI {FULL_LANDLOCK_ABI}+ is complete)");
        }
        if !Path::new("/proc/self/ns/cgroup").exists() {
            missing.push("cgroup namespace".into());
        }
        if let IdMapping::Single { uid, .. } = mapping {
            missing.push(format!(
                "root supervisor: without root the agent runs as this worker's own uid {uid} on \
                 the host (inside uid 0, no capabilities); run the worker as root for a separate id range"
            ));
        }
        for mechanism in &missing {
            tracing::warn!(mechanism = %mechanism, "sandbox mechanism missing on this host");
        }
        tracing::info!(
            cgroups = ?cgroups,
            seccomp = !seccomp.is_empty(),
            landlock_abi,
            hide_mount_sources,
            "sandbox mechanisms enforced"
        );
        Ok(HostSupport { cgroups, cgroup_prefix, seccomp, landlock_abi, hide_mount_sources, missing })
    }

    /// Nothing available (unit tests of the supervisor's types).
    #[cfg(test)]
    pub(crate) fn none() -> HostSupport {
        HostSupport {
            cgroups: None,
            cgroup_prefix: String::new(),
            seccomp: Vec::new(),
            landlock_abi: 0,
            hide_mount_sources: false,
            missing: Vec::new(),
        }
    }

    /// Creates the run cgroup `name`, if cgroups are usable.
    pub(crate) fn run_cgroup(&self, name: String, limits: &RunLimits) -> Result<Option<RunCgroup>, SandboxError> {
        let Some(host) = &self.cgroups else { return Ok(None) };
        RunCgroup::create(host, name, limits).map(Some)
    }

    /// Where the cgroups named `<name prefix>…` are made: `<parent>/<name prefix>` for each
    /// parent (one per v1 hierarchy); empty without usable cgroups.
    pub(crate) fn cgroup_prefixes(&self, name_prefix: &str) -> Vec<std::path::PathBuf> {
        self.cgroups.as_ref().map(|host| host.dirs_for(name_prefix)).unwrap_or_default()
    }
}

/// `agentd-<scratch dir name>-`, reduced to characters safe in a cgroup name.
pub(crate) fn cgroup_prefix(scratch_dir: &Path) -> String {
    let name = scratch_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let safe: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').take(32).collect();
    format!("agentd-{safe}-")
}
