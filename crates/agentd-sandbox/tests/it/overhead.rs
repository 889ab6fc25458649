//! Spawn overhead, sandboxed vs bare (`run_unsandboxed`): p50 of 40 sequential runs of
//! `/usr/bin/true` and `python3 -c pass`. Ignored by default (timing, not behaviour); run
//! `cargo test --release -p agentd-sandbox --test it -- --ignored --nocapture spawn_overhead`.

use std::time::{Duration, Instant};

use agentd_sandbox::Termination;

use crate::support::TestEnv;

const RUNS: usize = 40;

pub fn spawn_overhead_p50() {
    let env = TestEnv::new();
    for (program, args) in [("/usr/bin/true", &[][..]), ("/usr/bin/python3", &["-c", "pass"][..])] {
        let bare = p50(|| {
            let run = env.run_unsandboxed(env.spec(program, args)).unwrap();
            assert_eq!(run.outcome.termination, Termination::Exited(0));
        });
        let sandboxed = p50(|| {
            let run = env.run(env.spec(program, args)).unwrap();
            assert_eq!(run.outcome.termination, Termination::Exited(0));
        });
        println!(
            "{program} {}: bare p50 {:.2} ms, sandboxed p50 {:.2} ms ({:.2}x, +{:.2} ms)",
            args.join(" "),
            ms(bare),
            ms(sandboxed),
            sandboxed.as_secs_f64() / bare.as_secs_f64(),
            ms(sandboxed.saturating_sub(bare)),
        );
    }
}

fn p50(mut run: impl FnMut()) -> Duration {
    run(); // warm-up: page cache, first cgroup
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
