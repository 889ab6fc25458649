//! Resource limits of the agent process, set just before it drops privileges. They are
//! defence in depth behind the run's cgroup (which is the real cap on memory, processes
//! and CPU): each applies per process (`RLIMIT_NPROC`: per uid of the run's own user
//! namespace), survives `execve`, and cannot be raised again without capabilities.

use nix::sys::resource::{Resource, setrlimit};
use serde::{Deserialize, Serialize};

use crate::step::{Stage, StepError};

/// Open files per process: plenty for runtimes, a bound on kernel memory pinned by fds.
const MAX_OPEN_FILES: u64 = 4096;

/// The agent's rlimits, computed by the supervisor from the run's limits.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct AgentRlimits {
    /// Processes (threads included) of the agent's uid in the run's user namespace.
    pub processes: u64,
    /// CPU seconds of any one process; SIGXCPU at this, SIGKILL a second later.
    pub cpu_seconds: u64,
    /// Largest file a process may write (SIGXFSZ beyond; the tmpfs caps bite first).
    pub file_bytes: u64,
}

impl AgentRlimits {
    /// CPU: the wall timeout on every core, plus one second. The wall timeout ends a run
    /// long before this; it only bounds a process that somehow outlives supervision.
    pub(crate) fn for_run(limits: &crate::spec::RunLimits) -> AgentRlimits {
        let cores = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
        AgentRlimits {
            processes: limits.max_pids,
            cpu_seconds: limits.wall_timeout.as_secs().saturating_add(1).saturating_mul(cores).saturating_add(1),
            file_bytes: limits.work_bytes.max(limits.tmp_bytes).max(limits.outputs_bytes).saturating_add(1),
        }
    }

    /// Sets every limit, soft = hard, so the agent cannot raise them.
    pub(crate) fn apply(self) -> Result<(), StepError> {
        for (resource, value) in [
            (Resource::RLIMIT_CORE, 0),
            (Resource::RLIMIT_NOFILE, MAX_OPEN_FILES),
            (Resource::RLIMIT_NPROC, self.processes),
            (Resource::RLIMIT_FSIZE, self.file_bytes),
        ] {
            setrlimit(resource, value, value).stage(|| format!("setting {resource:?}"))?;
        }
        setrlimit(Resource::RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds.saturating_add(1))
            .stage(|| "setting RLIMIT_CPU".into())
    }
}
