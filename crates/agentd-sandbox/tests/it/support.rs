//! What every sandbox test needs: a scratch dir, a bundle dir, a `Sandbox` whose init
//! program is this test binary, a runtime, and helpers to run a spec and look at the host's
//! processes afterwards.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentd_sandbox::{
    Egress, EgressSettings, OutputLine, RunLimits, RunOutcome, RunSpec, Sandbox, SandboxError, SandboxSettings, Stream,
};
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

pub struct TestEnv {
    pub sandbox: Sandbox,
    pub bundle: TempDir,
    pub scratch: TempDir,
    pub rt: Runtime,
    /// Every path under the scratch dir once the sandbox was made, before any run.
    before_runs: Vec<PathBuf>,
}

/// What a run produced.
pub struct Run {
    pub outcome: RunOutcome,
    pub lines: Vec<OutputLine>,
}

impl Run {
    pub fn stream(&self, stream: Stream) -> Vec<&str> {
        self.lines.iter().filter(|l| l.stream == stream).map(|l| l.line.as_str()).collect()
    }

    pub fn stdout(&self) -> Vec<&str> {
        self.stream(Stream::Stdout)
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv::with_egress(EgressSettings::default())
    }

    /// A sandbox whose egress proxy has these operator settings.
    pub fn with_egress(egress: EgressSettings) -> TestEnv {
        TestEnv::with(tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), egress)
    }

    /// A sandbox on this scratch dir, running bundles from this dir.
    pub fn in_dirs(scratch: TempDir, bundle: TempDir) -> TestEnv {
        TestEnv::with(scratch, bundle, EgressSettings::default())
    }

    fn with(scratch: TempDir, bundle: TempDir, egress: EgressSettings) -> TestEnv {
        fs::set_permissions(bundle.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let sandbox = Sandbox::new(SandboxSettings {
            init_program: std::env::current_exe().unwrap(),
            scratch_dir: scratch.path().to_path_buf(),
            egress,
        })
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let before_runs = tree(scratch.path());
        TestEnv { sandbox, bundle, scratch, rt, before_runs }
    }

    /// Writes an executable `/agent/<name>`.
    pub fn script(&self, name: &str, body: &str) -> String {
        let path = self.bundle.path().join(name);
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        format!("/agent/{name}")
    }

    /// A spec with roomy limits and a plain PATH.
    pub fn spec(&self, program: &str, args: &[&str]) -> RunSpec {
        spec(self.bundle.path(), program, args)
    }

    pub fn run(&self, spec: RunSpec) -> Result<Run, SandboxError> {
        self.run_with(spec, CancellationToken::new())
    }

    pub fn run_with(&self, spec: RunSpec, cancel: CancellationToken) -> Result<Run, SandboxError> {
        self.rt.block_on(collect(|tx| self.sandbox.run(spec, tx, cancel)))
    }

    pub fn run_unsandboxed(&self, spec: RunSpec) -> Result<Run, SandboxError> {
        self.rt.block_on(collect(|tx| agentd_sandbox::run_unsandboxed(spec, tx, CancellationToken::new())))
    }

    /// Runs a `/bin/sh` script from the bundle and expects it to exit 0.
    pub fn sh(&self, body: &str) -> Run {
        let program = self.script("run.sh", &format!("#!/bin/sh\n{body}\n"));
        let run = self.run(self.spec(&program, &[])).unwrap();
        assert_eq!(run.outcome.termination, agentd_sandbox::Termination::Exited(0), "{:?}", run.lines);
        run
    }

    /// Runs a `/bin/sh` script from the bundle, whatever its ending.
    pub fn sh_any(&self, body: &str, limits: impl FnOnce(&mut RunLimits)) -> Run {
        let program = self.script("run.sh", &format!("#!/bin/sh\n{body}\n"));
        let mut spec = self.spec(&program, &[]);
        limits(&mut spec.limits);
        self.run(spec).unwrap()
    }

    /// Runs `python3 -c code` with adjusted limits, whatever its ending.
    pub fn python(&self, code: &str, limits: impl FnOnce(&mut RunLimits)) -> Run {
        let mut spec = self.spec("/usr/bin/python3", &["-c", code]);
        limits(&mut spec.limits);
        self.run(spec).unwrap()
    }

    /// After a hostile run: nothing of it is left (scratch entries, cgroups) and the
    /// sandbox still runs a program normally.
    pub fn assert_contained_and_healthy(&self) {
        self.assert_runs_left_nothing();
        let run = self.sh("echo healthy");
        assert_eq!(run.stdout(), ["healthy"]);
        self.assert_runs_left_nothing();
    }

    /// The cgroup dirs of this environment's runs that exist now, found independently of
    /// the sandbox: every dir named `agentd-<scratch dir name>-*` next to our own cgroups.
    pub fn run_cgroups(&self) -> Vec<PathBuf> {
        run_cgroups_of(self.scratch.path())
    }

    /// The scratch dir holds what it held before the first run, and no cgroup of this
    /// environment's runs is left.
    pub fn assert_runs_left_nothing(&self) {
        assert_eq!(tree(self.scratch.path()), self.before_runs, "runs left files in the scratch dir");
        assert_eq!(self.run_cgroups(), Vec::<PathBuf>::new(), "run cgroups left behind");
    }
}

/// Every path under `dir`, sorted.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().map(|e| e.unwrap()) {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            }
            found.push(entry.path());
        }
    }
    found.sort();
    found
}

/// The cgroup dirs of runs of sandboxes on `scratch`: every dir named
/// `agentd-<scratch dir name>-*` next to our own cgroups.
pub fn run_cgroups_of(scratch: &Path) -> Vec<PathBuf> {
    // The sandbox's naming rule:
    // `agentd-<scratch dir name, [A-Za-z0-9_-] only>-<instance id>-<run dir name>`.
    let name = scratch.file_name().unwrap().to_string_lossy().into_owned();
    let safe: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || "_-".contains(*c)).take(32).collect();
    let prefix = format!("agentd-{safe}-");
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut found = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let roots: Vec<String> = if controllers.is_empty() {
            vec!["/sys/fs/cgroup".into(), "/sys/fs/cgroup/unified".into()]
        } else {
            controllers.split(',').map(|c| format!("/sys/fs/cgroup/{c}")).collect()
        };
        for root in roots {
            // On v2 the worker sits in a leaf; runs are its siblings.
            let path = path.trim_end_matches("/agentd-supervisor");
            let Ok(entries) = fs::read_dir(format!("{root}{path}")) else { continue };
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    found.push(entry.path());
                }
            }
        }
    }
    found
}

/// A spec running `program` from `bundle`, with roomy limits and a plain PATH.
pub fn spec(bundle: &Path, program: &str, args: &[&str]) -> RunSpec {
    RunSpec {
        program: program.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![("PATH".into(), PATH.into())],
        bundle_dir: bundle.to_path_buf(),
        extra_ro_mounts: Vec::new(),
        stdin: Vec::new(),
        limits: RunLimits {
            wall_timeout: Duration::from_secs(20),
            max_output_bytes: 1 << 20,
            max_line_bytes: 4096,
            tmp_bytes: 1 << 20,
            work_bytes: 1 << 20,
            outputs_bytes: 1 << 20,
            memory_bytes: 256 << 20,
            max_pids: 64,
            cpu_millis_per_sec: None,
        },
        egress: Egress::Denied,
        host_forward: None,
        collect_outputs: None,
    }
}

async fn collect<F, Fut>(start: F) -> Result<Run, SandboxError>
where
    F: FnOnce(mpsc::Sender<OutputLine>) -> Fut,
    Fut: Future<Output = Result<RunOutcome, SandboxError>>,
{
    let (tx, mut rx) = mpsc::channel(64);
    let gather = async {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        lines
    };
    let (outcome, lines) = tokio::join!(start(tx), gather);
    Ok(Run { outcome: outcome?, lines })
}

/// Host pids whose command line contains `marker` (arguments joined by spaces).
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push(pid);
        }
    }
    found
}

/// Polls until `cond` holds or `within` passes; returns whether it held.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
