//! What a run is (`RunSpec`, `RunLimits`) and what comes out of it (`OutputLine`,
//! `RunOutcome`). These are the types the worker codes against; they carry no tenant or
//! invocation notion, only a program, its inputs and its limits.

use std::path::PathBuf;
use std::time::Duration;

use crate::egress::Egress;
use crate::egress_proxy::PROXY_PORT;
use crate::error::SandboxError;
use crate::host_forward::HostForward;
use crate::mounts::MAX_COPIED_FILE_BYTES;

/// The path where the bundle is mounted inside the sandbox.
pub const BUNDLE_MOUNT: &str = "/agent";
/// The writable, size-capped directory for artifacts inside the sandbox.
pub const OUTPUTS_MOUNT: &str = "/outputs";
/// Below this a runtime cannot even start; smaller caps are a spec error.
const MIN_MEMORY_BYTES: u64 = 4 << 20;

/// One program to run, with everything it may see.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Absolute path as seen inside the sandbox, e.g. `/usr/bin/python3` or `/agent/run.sh`.
    pub program: String,
    /// Arguments after `argv[0]` (which is `program`).
    pub args: Vec<String>,
    /// The complete environment; nothing is inherited from the host.
    pub env: Vec<(String, String)>,
    /// Host directory mounted read-only at `/agent`. It must be readable by others (`o+rx`):
    /// the agent runs as an unprivileged uid that owns nothing on the host.
    pub bundle_dir: PathBuf,
    /// Extra read-only mounts: (host path, absolute path inside the sandbox). A directory
    /// is mounted (its host path does not show in the run's mount table); a regular file is
    /// copied in, at most 1 MiB over all such files.
    pub extra_ro_mounts: Vec<(PathBuf, String)>,
    /// Written to the program's stdin, which is then closed.
    pub stdin: Vec<u8>,
    pub limits: RunLimits,
    /// Network access beyond the run's own loopback: none, or HTTP(S) to listed hosts
    /// through a proxy (`HTTP_PROXY` and friends are then added to `env`).
    pub egress: Egress,
    /// A service of the host the run reaches on its own loopback (`127.0.0.1:<port>`),
    /// whatever `egress` says: each connection is carried to the forward's target.
    pub host_forward: Option<HostForward>,
    /// An empty host directory the caller created: when the program ends by itself (exit
    /// or signal, not a kill by timeout, cancellation or output cap), the regular files
    /// under `/outputs` are copied into it and listed in `RunOutcome::outputs`. Symlinks and
    /// special files are skipped; at most 1000 entries, 16 levels and `outputs_bytes`.
    pub collect_outputs: Option<PathBuf>,
}

/// Limits of one run.
#[derive(Debug, Clone)]
pub struct RunLimits {
    pub wall_timeout: Duration,
    /// stdout + stderr + events together; exceeding it kills the run (`Termination::OutputLimit`).
    pub max_output_bytes: u64,
    /// Longer lines are split so that no delivered line exceeds this many bytes (at least 4).
    pub max_line_bytes: usize,
    /// Size cap of `/tmp` (tmpfs).
    pub tmp_bytes: u64,
    /// Size cap of `/work` (tmpfs).
    pub work_bytes: u64,
    /// Size cap of `/outputs` (tmpfs, owned by the agent), where artifacts are written.
    pub outputs_bytes: u64,
    /// Memory cap of the whole run (cgroup `memory.max` / `memory.limit_in_bytes`, swap
    /// included where the host accounts it). Files in the run's tmpfs mounts count too.
    /// Exceeding it OOM-kills a process of the run: `Termination::MemoryLimit`.
    pub memory_bytes: u64,
    /// Most processes and threads alive at once in the run (cgroup `pids.max`, and
    /// `RLIMIT_NPROC` as a backstop). `fork` fails with `EAGAIN` beyond it.
    pub max_pids: u64,
    /// CPU bandwidth: milliseconds of CPU time per second of wall time (1000 = one core).
    /// `None`: no quota beyond what the host gives the worker.
    pub cpu_millis_per_sec: Option<u64>,
}

impl Default for RunLimits {
    /// Roomy limits for a typical agent; the worker narrows them per tenant and manifest.
    fn default() -> Self {
        RunLimits {
            wall_timeout: Duration::from_secs(60),
            max_output_bytes: 16 << 20,
            max_line_bytes: 64 << 10,
            tmp_bytes: 64 << 20,
            work_bytes: 256 << 20,
            outputs_bytes: 64 << 20,
            memory_bytes: 512 << 20,
            max_pids: 256,
            cpu_millis_per_sec: None,
        }
    }
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
    /// fd 3: JSON Lines written by the agent, delivered verbatim (not parsed here).
    Events,
}

/// One line of output, UTF-8 (lossy), without its trailing newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: Stream,
    pub line: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The program exited with this code.
    Exited(i32),
    /// The program was killed by this signal (not by the supervisor).
    Signaled(i32),
    /// The wall timeout expired; the process tree was killed.
    TimedOut,
    /// The cancellation token fired; the process tree was killed.
    Cancelled,
    /// More than `max_output_bytes` were written; the process tree was killed.
    OutputLimit,
    /// The run hit `memory_bytes`: the kernel OOM-killed one of its processes and the
    /// program then failed (non-zero exit or death by signal).
    MemoryLimit,
}

/// The result of a run that could be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub termination: Termination,
    /// From the start of `run` until the process tree was gone.
    pub wall: Duration,
    /// From the start of `run` until the program was let go (its namespaces, mounts and
    /// limits in place): what the sandbox costs before the agent's first instruction.
    pub spawn: Duration,
    /// Bytes read from stdout, stderr and events together.
    pub output_bytes: u64,
    /// CPU time (user + system) used by every process of the run, from the run's cgroup
    /// (`cpuacct.usage` / `cpu.stat`); zero when the host has no CPU accounting for us.
    pub cpu: Duration,
    /// Highest memory use of the run (`memory.max_usage_in_bytes` / `memory.peak`), tmpfs
    /// files included; zero when the host has no memory cgroup for us.
    pub peak_memory_bytes: u64,
    /// The files copied out of `/outputs` (`RunSpec::collect_outputs`); empty otherwise.
    pub outputs: Vec<OutputFile>,
    /// Requests the egress proxy refused, as `host:port: reason`, each once (at most 20).
    pub egress_refusals: Vec<String>,
}

/// One file copied out of a run's `/outputs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Its path under `/outputs`, relative, with `/` between components (`sub/data.json`).
    pub name: String,
    pub size: u64,
    /// Where it is on the host: `collect_outputs` joined with `name`.
    pub path: PathBuf,
}

impl RunSpec {
    /// Rejects a spec the sandbox cannot run, with a message that says what to fix.
    pub(crate) fn validate(&self) -> Result<(), SandboxError> {
        let invalid = |reason: String| Err(SandboxError::InvalidSpec { reason });
        if !is_clean_absolute(&self.program) {
            return invalid(format!("program {:?} must be an absolute path inside the sandbox", self.program));
        }
        for (host, inside) in &self.extra_ro_mounts {
            if !is_clean_absolute(inside) || inside == "/" {
                return invalid(format!(
                    "mount target {inside:?} must be an absolute path without `.` or `..`, other than /"
                ));
            }
            if !host.is_absolute() {
                return invalid(format!("mount source {} must be absolute", host.display()));
            }
        }
        let copied: u64 = self
            .extra_ro_mounts
            .iter()
            .filter_map(|(host, _)| std::fs::metadata(host).ok().filter(|meta| meta.is_file()))
            .map(|meta| meta.len())
            .sum();
        if copied > MAX_COPIED_FILE_BYTES {
            return invalid(format!(
                "extra mounts of files are copied into the run, at most {MAX_COPIED_FILE_BYTES} bytes in all \
                 ({copied} given); mount their directory instead"
            ));
        }
        if self.collect_outputs.as_ref().is_some_and(|dir| !dir.is_absolute()) {
            return invalid("collect_outputs must be an absolute path".into());
        }
        if let Egress::AllowHosts(hosts) = &self.egress
            && hosts.iter().any(|h| h.is_empty() || h.contains(['/', ' ', '\0']))
        {
            return invalid(format!("egress hosts must be bare host names, got {hosts:?}"));
        }
        if let Some(forward) = &self.host_forward
            && (forward.port == 0 || (forward.port == PROXY_PORT && self.egress != Egress::Denied))
        {
            return invalid(format!(
                "host_forward port {} must be a port of its own (not 0, not the egress proxy's {PROXY_PORT})",
                forward.port
            ));
        }
        if !self.bundle_dir.is_dir() {
            return invalid(format!("bundle_dir {} is not a directory", self.bundle_dir.display()));
        }
        if self.limits.memory_bytes < MIN_MEMORY_BYTES {
            return invalid(format!("memory_bytes must be at least {MIN_MEMORY_BYTES} (4 MiB)"));
        }
        if self.limits.max_pids == 0 {
            return invalid("max_pids must be at least 1".into());
        }
        if self.limits.cpu_millis_per_sec == Some(0) {
            return invalid("cpu_millis_per_sec must be at least 1 (or None for no quota)".into());
        }
        if self.limits.max_line_bytes < 4 {
            return invalid("max_line_bytes must be at least 4 (one UTF-8 character)".into());
        }
        let has_nul = |s: &str| s.contains('\0');
        if self.args.iter().any(|a| has_nul(a))
            || self.env.iter().any(|(k, v)| has_nul(k) || has_nul(v) || k.contains('=') || k.is_empty())
        {
            return invalid("args and env must not contain NUL; env names need no `=`".into());
        }
        Ok(())
    }
}

/// True for `/a/b` style paths: absolute, no `.`/`..` components, no NUL.
pub(crate) fn is_clean_absolute(path: &str) -> bool {
    path.starts_with('/') && !path.contains('\0') && path.split('/').all(|part| part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_absolute_paths_are_accepted_and_relative_or_dotted_ones_rejected() {
        assert!(is_clean_absolute("/usr/bin/python3"));
        assert!(is_clean_absolute("/agent"));
        assert!(!is_clean_absolute("agent/run.sh"));
        assert!(!is_clean_absolute("/agent/../etc/shadow"));
        assert!(!is_clean_absolute("/agent/./run.sh"));
    }
}
