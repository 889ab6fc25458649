//! The report of one `agentd bench` run: the machine it ran on, the settings, the figures
//! with their baselines; printed as a table, and as JSON on request.

use std::fmt::Write as _;

use serde::Serialize;

use super::BenchError;
use super::end_to_end::{EndToEndReport, Throughput};
use super::queue::{QueueReport, Rate};
use super::rate_limit::RateLimitReport;
use super::spawn::{ProgramReport, SpawnReport};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub agentd_version: &'static str,
    pub machine: Machine,
    pub spawn: Option<SpawnReport>,
    pub end_to_end: Option<EndToEndReport>,
    pub queue: Option<QueueReport>,
    pub rate_limit: Option<RateLimitReport>,
}

/// What the figures depend on, read from the host at run time.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// 1-minute load average when the run started: other work on the machine skews every
    /// figure, baselines included.
    pub load_1m: f64,
}

impl Machine {
    fn probe() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, value)| value.trim().to_owned())
        };
        let memory_kib: f64 = field(&read("/proc/meminfo"), "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(f64::NAN);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            memory_gib: memory_kib / (1024.0 * 1024.0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_1m: read("/proc/loadavg").split_whitespace().next().and_then(|l| l.parse().ok()).unwrap_or(f64::NAN),
        }
    }
}

impl Report {
    pub fn new() -> Report {
        Report {
            date: agentd_core::Timestamp::now().to_string(),
            // One version for the whole workspace: this crate's is the binary's.
            agentd_version: env!("CARGO_PKG_VERSION"),
            machine: Machine::probe(),
            spawn: None,
            end_to_end: None,
            queue: None,
            rate_limit: None,
        }
    }

    /// The table on stdout; with `json`, the JSON on stdout and the table on stderr.
    pub fn print(&self, json: bool) -> Result<(), BenchError> {
        let table = self.table();
        if json {
            eprint!("{table}");
            println!("{}", serde_json::to_string_pretty(self)?);
        } else {
            print!("{table}");
        }
        Ok(())
    }

    fn table(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(out, "\nagentd {} bench, {}", self.agentd_version, self.date);
        let _ = writeln!(
            out,
            "machine: {} CPUs ({}), {:.1} GiB RAM, Linux {}, load {:.2} at start",
            m.cpus, m.cpu_model, m.memory_gib, m.kernel, m.load_1m
        );
        if let Some(spawn) = &self.spawn {
            spawn_table(&mut out, spawn);
        }
        if let Some(e2e) = &self.end_to_end {
            end_to_end_table(&mut out, e2e);
        }
        if let Some(queue) = &self.queue {
            queue_table(&mut out, queue);
        }
        if let Some(rate) = &self.rate_limit {
            rate_limit_table(&mut out, rate);
        }
        out
    }
}

fn spawn_table(out: &mut String, spawn: &SpawnReport) {
    let _ = writeln!(out, "\nSpawn overhead ({} runs per mode, modes alternated run by run; ms)", spawn.runs_per_mode);
    let _ = writeln!(out, "{:<26} {:<22} {:>8} {:>8} {:>8}", "program", "started by", "mean", "p50", "p99");
    for program in &spawn.programs {
        spawn_rows(out, program);
    }
}

fn spawn_rows(out: &mut String, p: &ProgramReport) {
    let rows = [("Command::status", &p.command), ("run_unsandboxed (bare)", &p.bare), ("Sandbox::run", &p.sandboxed)];
    for (how, s) in rows {
        let _ = writeln!(out, "{:<26} {:<22} {} {} {}", p.program, how, ms(s.mean_ms), ms(s.p50_ms), ms(s.p99_ms));
    }
    let _ = writeln!(
        out,
        "{:<26} sandboxed/bare p50 {}, overhead {} ms p50, {} ms mean",
        "",
        times(p.p50_ratio),
        signed(p.p50_overhead_ms),
        signed(p.mean_overhead_ms)
    );
}

fn end_to_end_table(out: &mut String, e: &EndToEndReport) {
    let _ = writeln!(
        out,
        "\nEnd-to-end trivial runs ({} runs, {} concurrent, server on {}; latency in ms as the caller sees it)",
        e.server.runs, e.concurrency, e.database
    );
    let _ = writeln!(out, "script: {}", e.script);
    let _ = writeln!(out, "{:<36} {:>9} {:>8} {:>8} {:>8}", "path", "runs/s", "p50", "p99", "vs bare");
    let rows: [(&str, &Throughput, f64); 3] = [
        ("run_unsandboxed (bare)", &e.bare, 1.0),
        ("Sandbox::run (sandboxed)", &e.sandboxed, e.sandboxed_over_bare),
        ("agentd serve: invoke ?wait=60", &e.server, e.server_over_bare),
    ];
    for (path, t, versus) in rows {
        let _ = writeln!(
            out,
            "{:<36} {:>9.1} {} {} {:>8}",
            path,
            t.runs_per_s,
            ms(t.latency.p50_ms),
            ms(t.latency.p99_ms),
            times(versus)
        );
    }
    let _ = writeln!(
        out,
        "server side (ms, 1 ms resolution): queued→started p50 {} p99 {}; started→finished p50 {} p99 {}",
        ms(e.server_queue.p50_ms).trim(),
        ms(e.server_queue.p99_ms).trim(),
        ms(e.server_run.p50_ms).trim(),
        ms(e.server_run.p99_ms).trim(),
    );
}

fn queue_table(out: &mut String, q: &QueueReport) {
    let _ = writeln!(
        out,
        "\nQueue throughput ({} jobs per side, {} concurrent claimers; claim + complete)",
        q.jobs, q.claimers
    );
    let _ = writeln!(out, "{:<10} {:<44} {:>10} {:>9}", "engine", "path", "jobs/s", "wall s");
    for e in &q.engines {
        let rows: [(&str, &Rate); 3] = [
            ("raw table, textbook claim loop (2 commits)", &e.raw),
            ("agentd queue_claim_unscoped + complete", &e.agentd),
            ("agentd invocation_enqueue (1 caller)", &e.agentd_enqueue),
        ];
        for (path, r) in rows {
            let _ = writeln!(out, "{:<10} {:<44} {:>10.1} {:>9.2}", e.engine, path, r.jobs_per_s, r.wall_s);
        }
        let _ = writeln!(
            out,
            "{:<10} agentd/raw {} (goal ≥ 0.50×); empty claims retried: {}",
            "",
            times(e.agentd_over_raw),
            e.agentd_empty_claims
        );
    }
    if let Some(reason) = &q.postgres_skipped {
        let _ = writeln!(out, "PostgreSQL not measured: {reason}");
    }
}

fn rate_limit_table(out: &mut String, r: &RateLimitReport) {
    let _ = writeln!(
        out,
        "\nRate-limit check ({} GET /v1/me per side, {} callers, rounds alternated)",
        r.requests_per_side, r.callers
    );
    let _ = writeln!(out, "{:<10} {:<40} {:>10} {:>10}", "engine", "requests_per_second", "req/s", "mean µs");
    for e in &r.engines {
        for (label, side) in [("off (0)", &e.off), ("on, never refusing (1000000)", &e.on)] {
            let _ =
                writeln!(out, "{:<10} {:<40} {:>10.1} {:>10.1}", e.engine, label, side.requests_per_s, side.mean_us);
        }
        let _ = writeln!(out, "{:<10} the check adds {:.1} µs per request", "", e.added_us_per_request);
    }
    if let Some(reason) = &r.postgres_skipped {
        let _ = writeln!(out, "PostgreSQL not measured: {reason}");
    }
}

/// A figure in ms, right-aligned in 8 columns.
fn ms(value: f64) -> String {
    if value.is_finite() { format!("{value:>8.2}") } else { format!("{:>8}", "n/a") }
}

fn signed(value: f64) -> String {
    if value.is_finite() { format!("{value:+.2}") } else { "n/a".into() }
}

fn times(value: f64) -> String {
    if value.is_finite() { format!("{value:.2}×") } else { "n/a".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_figures_print_as_not_available() {
        assert_eq!(ms(f64::NAN).trim(), "n/a");
        assert_eq!(signed(1.234), "+1.23");
        assert_eq!(times(f64::NAN), "n/a");
    }
}
