//! Spawn overhead, sandboxed vs bare (`run_unsandboxed`): p50 of 40 sequential runs of
//! `/usr/bin/true` and `python3 -c pass`; and what serving the bundle and extra mounts
//! costs, copied (small) or through overlays (big). Ignored by default (timing, not
//! behaviour); run `cargo test --release -p agentd-sandbox --test it -- --ignored
//! --nocapture _overhead`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
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

/// `/usr/bin/true` with an empty bundle; with a worker's usual inputs (a bundle of a few
/// small files and two SDK directories), which are copied; and with three directories
/// too big to copy, which are overlays.
pub fn mount_sources_overhead_p50() {
    let env = TestEnv::new();
    let small = |files: &[(&str, usize)]| {
        let dir = tempfile::tempdir().unwrap();
        for (name, size) in files {
            fs::write(dir.path().join(name), vec![b'x'; *size]).unwrap();
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        dir
    };
    for (name, size) in [("agent.toml", 300), ("main.py", 4000), ("prompt.txt", 2000), ("requirements.txt", 40)] {
        fs::write(env.bundle.path().join(name), vec![b'x'; size]).unwrap();
    }
    let sdk = [small(&[("agentd.py", 9000)]), small(&[("index.mjs", 8000), ("package.json", 200)])];
    let big: Vec<_> = (0..3).map(|_| small(&[("weights.bin", 512 << 10)])).collect();
    let empty_bundle = tempfile::tempdir().unwrap();
    fs::set_permissions(empty_bundle.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cases = [
        ("empty bundle", empty_bundle.path(), Vec::new()),
        ("usual bundle and SDK (copied)", env.bundle.path(), sdk.iter().map(|d| d.path()).collect()),
        ("usual bundle, 3 big dirs (overlays)", env.bundle.path(), big.iter().map(|d| d.path()).collect()),
    ];
    for (label, bundle, mounts) in cases {
        let time = p50(|| {
            let mut spec = crate::support::spec(bundle, "/usr/bin/true", &[]);
            spec.extra_ro_mounts =
                mounts.iter().enumerate().map(|(i, dir)| (dir.to_path_buf(), format!("/opt/input{i}"))).collect();
            assert_eq!(env.run(spec).unwrap().outcome.termination, Termination::Exited(0));
        });
        println!("{label}: sandboxed p50 {:.2} ms", ms(time));
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
