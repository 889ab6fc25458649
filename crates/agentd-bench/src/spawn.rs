//! Spawn overhead: the same program started three ways, alternated run by run so that any
//! drift of the machine (frequency, cache, other load) hits every mode alike:
//! - `Command`: `std::process::Command::status()`, the rawest baseline;
//! - `bare`: `run_unsandboxed`, with the sandbox's pipes, protocol and supervision;
//! - `sandboxed`: `Sandbox::run`, the real thing.
//!
//! `bare` vs `sandboxed` isolates what the namespaces, mounts and init cost; `Command` vs
//! `bare` shows what our supervision adds on top of a plain fork/exec.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentd_sandbox::{Egress, RunLimits, RunSpec, Sandbox, SandboxSettings, Termination};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::BenchError;
use super::stats::{Summary, ratio};

/// Warm-up rounds per program (every mode once per round), not measured.
const WARMUP_ROUNDS: usize = 3;

/// How one run is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Command,
    Bare,
    Sandboxed,
}

const MODES: [Mode; 3] = [Mode::Command, Mode::Bare, Mode::Sandboxed];

/// A program as the sandbox sees it; `Command` mode runs `path` on the host as is.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    pub label: &'static str,
    pub path: &'static str,
    pub args: &'static [&'static str],
}

const PROGRAMS: [Program; 2] = [
    Program { label: "/bin/true", path: "/bin/true", args: &[] },
    Program { label: "/usr/bin/python3 -c pass", path: "/usr/bin/python3", args: &["-c", "pass"] },
];

/// Starts programs bare or sandboxed, and times them as their caller sees it.
pub struct Spawner {
    sandbox: Sandbox,
    bundle: PathBuf,
}

impl Spawner {
    /// `bundle` is mounted at `/agent` (and stands in for it when bare).
    pub fn new(scratch: &Path, bundle: PathBuf) -> Result<Spawner, BenchError> {
        let init_program =
            std::env::current_exe().map_err(BenchError::io("could not locate the agentd binary (the sandbox init)"))?;
        let sandbox = Sandbox::new(SandboxSettings {
            init_program,
            scratch_dir: scratch.to_path_buf(),
            egress: Default::default(),
        })?;
        Ok(Spawner { sandbox, bundle })
    }

    /// The spec both `bare` and `sandboxed` run: the same program, env, stdin and limits
    /// (the worker's limits).
    fn spec(&self, program: &Program, stdin: &[u8]) -> RunSpec {
        RunSpec {
            program: program.path.to_owned(),
            args: program.args.iter().map(|a| (*a).to_owned()).collect(),
            env: environment(),
            bundle_dir: self.bundle.clone(),
            extra_ro_mounts: Vec::new(),
            stdin: stdin.to_vec(),
            limits: RunLimits {
                wall_timeout: Duration::from_secs(60),
                max_output_bytes: 1024 * 1024,
                max_line_bytes: 64 * 1024,
                tmp_bytes: 64 * 1024 * 1024,
                work_bytes: 256 * 1024 * 1024,
                ..RunLimits::default()
            },
            egress: Egress::Denied,
            host_forward: None,
            collect_outputs: None,
        }
    }

    /// Runs `program` once in `mode`; fails unless it exits 0.
    pub async fn time(&self, mode: Mode, program: &Program, stdin: &[u8]) -> Result<Duration, BenchError> {
        if mode == Mode::Command {
            return time_command(*program).await;
        }
        let spec = self.spec(program, stdin);
        let (lines, mut output) = mpsc::channel(64);
        // The run blocks once the channel is full: keep reading whatever comes out.
        let drain = tokio::spawn(async move { while output.recv().await.is_some() {} });
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let outcome = match mode {
            Mode::Sandboxed => self.sandbox.run(spec, lines, cancel).await?,
            Mode::Bare | Mode::Command => agentd_sandbox::run_unsandboxed(spec, lines, cancel).await?,
        };
        let elapsed = started.elapsed();
        drain.await?;
        match outcome.termination {
            Termination::Exited(0) => Ok(elapsed),
            other => Err(failed(program, mode, format!("{other:?}"))),
        }
    }
}

/// What every run gets, bare or sandboxed: an allow-list, nothing from the host.
fn environment() -> Vec<(String, String)> {
    [("PATH", "/usr/local/bin:/usr/bin:/bin"), ("LANG", "C.UTF-8"), ("TMPDIR", "/tmp"), ("AGENTD_EVENTS_FD", "3")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `Command::status()` with the same environment; timed on the blocking thread itself so
/// the hop onto it is not counted.
async fn time_command(program: Program) -> Result<Duration, BenchError> {
    let (elapsed, status) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let status =
            std::process::Command::new(program.path).args(program.args).env_clear().envs(environment()).status();
        (started.elapsed(), status)
    })
    .await?;
    let status = status.map_err(BenchError::io(format!("could not start {}", program.path)))?;
    if status.success() { Ok(elapsed) } else { Err(failed(&program, Mode::Command, status.to_string())) }
}

fn failed(program: &Program, mode: Mode, detail: String) -> BenchError {
    BenchError::RunFailed { what: format!("{} ({mode:?})", program.label), detail }
}

/// The figures of one program.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramReport {
    pub program: String,
    pub command: Summary,
    pub bare: Summary,
    pub sandboxed: Summary,
    /// p50 sandboxed / p50 bare.
    pub p50_ratio: f64,
    /// p50 sandboxed − p50 bare, in ms.
    pub p50_overhead_ms: f64,
    /// mean sandboxed − mean bare, in ms.
    pub mean_overhead_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpawnReport {
    pub runs_per_mode: usize,
    pub programs: Vec<ProgramReport>,
}

pub async fn measure(spawner: &Spawner, runs: usize) -> Result<SpawnReport, BenchError> {
    let mut programs = Vec::new();
    for program in &PROGRAMS {
        eprintln!("spawn: {} ({runs} runs per mode)…", program.label);
        programs.push(measure_program(spawner, program, runs).await?);
    }
    Ok(SpawnReport { runs_per_mode: runs, programs })
}

async fn measure_program(spawner: &Spawner, program: &Program, runs: usize) -> Result<ProgramReport, BenchError> {
    for _ in 0..WARMUP_ROUNDS {
        for mode in MODES {
            spawner.time(mode, program, b"").await?;
        }
    }
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for round in 0..runs {
        // Rotate the order too, so that no mode always follows the same one.
        for offset in 0..MODES.len() {
            let index = (round + offset) % MODES.len();
            samples[index].push(spawner.time(MODES[index], program, b"").await?);
        }
    }
    let [command, bare, sandboxed] = samples.map(|sample| Summary::of(&sample));
    Ok(ProgramReport {
        program: program.label.to_owned(),
        command,
        bare,
        sandboxed,
        p50_ratio: ratio(sandboxed.p50_ms, bare.p50_ms),
        p50_overhead_ms: sandboxed.p50_ms - bare.p50_ms,
        mean_overhead_ms: sandboxed.mean_ms - bare.mean_ms,
    })
}
