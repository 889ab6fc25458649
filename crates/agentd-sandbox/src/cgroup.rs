//! Per-run cgroups: memory, pids and CPU caps, and the accounting that ends up in
//! `RunOutcome` (peak memory, CPU time, OOM kills). cgroupfs is plain files, so this module
//! writes them directly (no D-Bus, no library).
//!
//! `CgroupHost::detect` runs once in `Sandbox::new` and finds the directories run cgroups
//! are created in: on v1, the worker's own cgroup in each of the memory, pids, cpu and
//! cpuacct hierarchies; on v2, the worker's own cgroup, after moving the worker into a leaf
//! (`agentd-supervisor`) so that its parent may delegate controllers to children (the
//! "no internal processes" rule). Nesting under our own cgroup keeps runs inside whatever
//! the operator gave the worker, and works inside containers.
//!
//! `RunCgroup` lives for one run: the supervisor creates it, writes the caps, moves the
//! init into it before the agent exists (everything the agent forks inherits it), reads
//! the accounting at the end and removes it, killing whatever is left first. If the run
//! future is dropped, `Drop` hands the removal to a short-lived thread.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cgroup_fs::{self, Mounts};
use crate::error::SandboxError;
use crate::spec::RunLimits;

/// The v2 leaf the worker moves itself into, so that its own cgroup can delegate.
const V2_SUPERVISOR_LEAF: &str = "agentd-supervisor";
/// CFS period for the CPU quota (the kernel default).
const CPU_PERIOD_US: u64 = 100_000;
/// How long removal keeps killing and retrying `rmdir` before giving up (and logging).
const REMOVE_PATIENCE: Duration = Duration::from_secs(5);

/// Where run cgroups are created on this host.
#[derive(Debug, Clone)]
pub(crate) enum CgroupHost {
    V1 { memory: Option<PathBuf>, pids: Option<PathBuf>, cpu: Option<PathBuf>, cpuacct: Option<PathBuf> },
    V2 { parent: PathBuf, controllers: Vec<String> },
}

/// Which caps a host's cgroups can enforce (for `missing_mechanisms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Coverage {
    pub memory: bool,
    pub pids: bool,
    pub cpu: bool,
}

impl CgroupHost {
    /// Finds usable cgroup parents, proving each by creating and removing a probe child.
    /// `Err` carries a reason for the log when the host offers nothing usable.
    pub(crate) fn detect(name_prefix: &str) -> Result<CgroupHost, String> {
        let mounts = Mounts::read().map_err(|e| format!("cannot read cgroup mounts: {e}"))?;
        let v1 = |controller: &str| {
            mounts.v1_dir(controller).filter(|dir| proves_writable(dir, &format!("{name_prefix}probe-{controller}")))
        };
        let (memory, pids) = (v1("memory"), v1("pids"));
        if memory.is_some() || pids.is_some() {
            return Ok(CgroupHost::V1 { memory, pids, cpu: v1("cpu"), cpuacct: v1("cpuacct") });
        }
        let own = mounts.v2_dir().ok_or("no cgroup v1 memory/pids hierarchy and no cgroup v2 mount")?;
        let parent = prepare_v2_parent(&own)?;
        let controllers = cgroup_fs::read_words(&parent.join("cgroup.subtree_control"));
        if !proves_writable(&parent, &format!("{name_prefix}probe")) {
            return Err(format!("cannot create cgroups under {}", parent.display()));
        }
        Ok(CgroupHost::V2 { parent, controllers })
    }

    pub(crate) fn coverage(&self) -> Coverage {
        match self {
            CgroupHost::V1 { memory, pids, cpu, .. } => {
                Coverage { memory: memory.is_some(), pids: pids.is_some(), cpu: cpu.is_some() }
            }
            CgroupHost::V2 { controllers, .. } => {
                let has = |c: &str| controllers.iter().any(|x| x == c);
                Coverage { memory: has("memory"), pids: has("pids"), cpu: has("cpu") }
            }
        }
    }

    /// The directories a run cgroup called `name` would occupy (one per v1 hierarchy).
    pub(crate) fn dirs_for(&self, name: &str) -> Vec<PathBuf> {
        match self {
            CgroupHost::V1 { memory, pids, cpu, cpuacct } => {
                [memory, pids, cpu, cpuacct].into_iter().flatten().map(|p| p.join(name)).collect()
            }
            CgroupHost::V2 { parent, .. } => vec![parent.join(name)],
        }
    }
}

/// v2: our own cgroup may only hand controllers to children once it holds no process, so
/// the worker moves into a leaf first. Returns the dir run cgroups go in.
fn prepare_v2_parent(own: &Path) -> Result<PathBuf, String> {
    // Already done by an earlier `Sandbox::new` in this process.
    if own.file_name().is_some_and(|n| n == V2_SUPERVISOR_LEAF)
        && let Some(parent) = own.parent()
    {
        return Ok(parent.to_path_buf());
    }
    let wanted: Vec<String> = cgroup_fs::read_words(&own.join("cgroup.controllers"))
        .into_iter()
        .filter(|c| ["memory", "pids", "cpu"].contains(&c.as_str()))
        .collect();
    if wanted.is_empty() {
        return Err(format!("cgroup {} has no memory, pids or cpu controller delegated", own.display()));
    }
    let leaf = own.join(V2_SUPERVISOR_LEAF);
    let setup = || -> io::Result<()> {
        // A leaf left by an earlier process in this cgroup (killed before it could clean
        // up) serves as well as a new one.
        match cgroup_fs::make_dir(&leaf) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        fs::write(leaf.join("cgroup.procs"), "0")?;
        let enable: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
        fs::write(own.join("cgroup.subtree_control"), enable.join(" "))
    };
    setup().map_err(|e| {
        format!(
            "cannot delegate controllers below {} ({e}); give the worker its own cgroup \
             (systemd: Delegate=yes) so it can nest run cgroups",
            own.display()
        )
    })?;
    Ok(own.to_path_buf())
}

fn proves_writable(dir: &Path, probe: &str) -> bool {
    let path = dir.join(probe);
    cgroup_fs::make_dir(&path).is_ok() && fs::remove_dir(&path).is_ok()
}

/// The accounting of one run, read just before its cgroup is removed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    pub cpu: Duration,
    pub peak_memory_bytes: u64,
    pub oom_kills: u64,
}

/// One run's cgroup (a dir per v1 hierarchy, or one v2 dir). Removed on drop at the latest.
#[derive(Debug)]
pub(crate) struct RunCgroup {
    host: CgroupHost,
    name: String,
    removed: bool,
}

impl RunCgroup {
    /// Creates the run's cgroup and writes its caps.
    pub(crate) fn create(host: &CgroupHost, name: String, limits: &RunLimits) -> Result<RunCgroup, SandboxError> {
        let cgroup = RunCgroup { host: host.clone(), name, removed: false };
        for dir in host.dirs_for(&cgroup.name) {
            cgroup_fs::make_dir(&dir).map_err(|e| io_error("create", &dir, e))?;
        }
        cgroup.write_limits(limits)?;
        Ok(cgroup)
    }

    fn write_limits(&self, limits: &RunLimits) -> Result<(), SandboxError> {
        let memory = limits.memory_bytes.to_string();
        let cpu_quota = limits.cpu_millis_per_sec.map(|ms| ms.saturating_mul(CPU_PERIOD_US / 1000));
        match &self.host {
            CgroupHost::V1 { memory: mem, pids, cpu, .. } => {
                if let Some(dir) = mem.as_ref().map(|d| d.join(&self.name)) {
                    write(&dir, "memory.limit_in_bytes", &memory)?;
                    // Without swap accounting the file is absent and swap is the host's call.
                    write_if_present(&dir, "memory.memsw.limit_in_bytes", &memory)?;
                }
                if let Some(dir) = pids.as_ref().map(|d| d.join(&self.name)) {
                    write(&dir, "pids.max", &limits.max_pids.to_string())?;
                }
                if let (Some(dir), Some(quota)) = (cpu.as_ref().map(|d| d.join(&self.name)), cpu_quota) {
                    write(&dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                    write(&dir, "cpu.cfs_quota_us", &quota.to_string())?;
                }
            }
            CgroupHost::V2 { parent, .. } => {
                let dir = parent.join(&self.name);
                let coverage = self.host.coverage();
                if coverage.memory {
                    write(&dir, "memory.max", &memory)?;
                    write_if_present(&dir, "memory.swap.max", "0")?;
                    // One OOM kill takes the whole run down: a clear end, no half-dead agent.
                    write_if_present(&dir, "memory.oom.group", "1")?;
                }
                if coverage.pids {
                    write(&dir, "pids.max", &limits.max_pids.to_string())?;
                }
                if let (true, Some(quota)) = (coverage.cpu, cpu_quota) {
                    write(&dir, "cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
                }
            }
        }
        Ok(())
    }

    /// The files the init writes `0` into to move itself into the cgroup. Moving oneself,
    /// one thread at a time (v1 `tasks`), skips the kernel's global threadgroup lock, whose
    /// RCU grace period made a supervisor-side `cgroup.procs` write cost milliseconds per
    /// hierarchy. v2 has no per-thread file outside threaded mode: `cgroup.procs` it is.
    pub(crate) fn self_attach_files(&self) -> Vec<PathBuf> {
        let file = match self.host {
            CgroupHost::V1 { .. } => "tasks",
            CgroupHost::V2 { .. } => "cgroup.procs",
        };
        self.host.dirs_for(&self.name).into_iter().map(|dir| dir.join(file)).collect()
    }

    /// Peak memory, CPU time and OOM kills so far; missing files read as zero.
    pub(crate) fn usage(&self) -> Usage {
        let num = |dir: &Path, file: &str| cgroup_fs::read_u64(&dir.join(file)).unwrap_or(0);
        match &self.host {
            CgroupHost::V1 { memory, cpuacct, .. } => {
                let mem = memory.as_ref().map(|d| d.join(&self.name));
                let acct = cpuacct.as_ref().map(|d| d.join(&self.name));
                Usage {
                    cpu: Duration::from_nanos(acct.map(|d| num(&d, "cpuacct.usage")).unwrap_or(0)),
                    peak_memory_bytes: mem.as_ref().map(|d| num(d, "memory.max_usage_in_bytes")).unwrap_or(0),
                    oom_kills: mem.map(|d| cgroup_fs::read_key(&d.join("memory.oom_control"), "oom_kill")).unwrap_or(0),
                }
            }
            CgroupHost::V2 { parent, .. } => {
                let dir = parent.join(&self.name);
                Usage {
                    cpu: Duration::from_micros(cgroup_fs::read_key(&dir.join("cpu.stat"), "usage_usec")),
                    peak_memory_bytes: num(&dir, "memory.peak"),
                    oom_kills: cgroup_fs::read_key(&dir.join("memory.events"), "oom_kill"),
                }
            }
        }
    }

    /// Kills anything left in the cgroup and removes its dirs. Normally nothing is left:
    /// the init returns only after the kernel tore the run's PID namespace down.
    pub(crate) fn remove(mut self) -> Result<(), SandboxError> {
        self.removed = true;
        remove_dirs(&self.host.dirs_for(&self.name))
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // The run future was dropped mid-run: the init was just SIGKILLed and the sandbox is
        // still dying. Waiting for it must not block the runtime thread dropping us.
        let dirs = self.host.dirs_for(&self.name);
        let spawned = std::thread::Builder::new().name("agentd-cgroup-cleanup".into()).spawn(move || {
            if let Err(e) = remove_dirs(&dirs) {
                tracing::warn!(error = %e, "could not remove a dropped run's cgroup");
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the cgroup cleanup thread");
        }
    }
}

/// What removing the cgroups of a `Sandbox` whose process is gone did.
#[derive(Debug, Default)]
pub(crate) struct LeftoverCgroups {
    pub removed: usize,
    /// Pids found in them and killed: processes that escaped their run's PID namespace.
    pub killed: BTreeSet<i32>,
    /// The dirs that could not be removed, and why.
    pub kept: Vec<String>,
}

/// Removes every cgroup dir `<parent>/<name prefix>…` of each `<parent>/<name prefix>` in
/// `prefixes`, killing what is still in it first.
pub(crate) fn remove_leftovers(prefixes: &[PathBuf]) -> LeftoverCgroups {
    let mut leftovers = LeftoverCgroups::default();
    for prefix in prefixes {
        let (Some(parent), Some(name)) = (prefix.parent(), prefix.file_name().and_then(|n| n.to_str())) else {
            continue;
        };
        // A parent that is gone took its children along (systemd removes a stopped unit's tree).
        let Ok(entries) = fs::read_dir(parent) else { continue };
        let dirs: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| entry.file_name().to_str().is_some_and(|n| n.starts_with(name)))
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect();
        for dir in dirs {
            leftovers.killed.extend(cgroup_fs::members(&dir));
            match remove_dirs(std::slice::from_ref(&dir)) {
                Ok(()) => leftovers.removed += 1,
                Err(e) => {
                    let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
                    leftovers.kept.push(format!("{e}{cause}"));
                }
            }
        }
    }
    leftovers
}

/// Whether `path` is inside one of this host's cgroup filesystems.
pub(crate) fn is_cgroup_path(path: &Path) -> bool {
    Mounts::read().is_ok_and(|mounts| mounts.contains(path))
}

fn remove_dirs(dirs: &[PathBuf]) -> Result<(), SandboxError> {
    let deadline = Instant::now() + REMOVE_PATIENCE;
    for dir in dirs {
        loop {
            cgroup_fs::kill_members(dir);
            match fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                // EBUSY: members are still exiting (or a zombie awaits its reaper).
                Err(e) if Instant::now() < deadline => {
                    tracing::trace!(error = %e, dir = %dir.display(), "cgroup still busy");
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(io_error("remove", dir, e)),
            }
        }
    }
    Ok(())
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), SandboxError> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(|e| io_error(&format!("write {value:?} to"), &path, e))
}

fn write_if_present(dir: &Path, file: &str, value: &str) -> Result<(), SandboxError> {
    if dir.join(file).exists() { write(dir, file, value) } else { Ok(()) }
}

fn io_error(action: &str, path: &Path, e: io::Error) -> SandboxError {
    SandboxError::io(format!("could not {action} cgroup {}", path.display()), e)
}
