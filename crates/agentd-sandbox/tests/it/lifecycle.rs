//! How runs end: timeouts, cancellation, background children, the output cap, a dropped
//! `run` future. After each, no process of the run may remain on the host (found by a
//! unique `sleep` duration used as a marker) and the scratch dir holds no file of it.

use std::time::{Duration, Instant};

use agentd_sandbox::Termination;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Test;
use crate::support::{TestEnv, eventually, processes_with};

pub fn tests() -> Vec<Test> {
    vec![
        (
            "a_wall_timeout_returns_timed_out_quickly_and_leaves_no_process",
            a_wall_timeout_returns_timed_out_quickly_and_leaves_no_process,
        ),
        ("cancelling_a_run_kills_its_process_tree", cancelling_a_run_kills_its_process_tree),
        ("a_daemonized_child_is_killed_when_the_agent_exits", a_daemonized_child_is_killed_when_the_agent_exits),
        ("output_over_the_cap_kills_the_run_with_output_limit", output_over_the_cap_kills_the_run_with_output_limit),
        ("dropping_the_run_future_kills_the_process_tree", dropping_the_run_future_kills_the_process_tree),
        (
            "run_unsandboxed_times_out_and_kills_its_process_group",
            run_unsandboxed_times_out_and_kills_its_process_group,
        ),
        (
            "a_killed_launcher_spares_running_runs_and_is_replaced",
            a_killed_launcher_spares_running_runs_and_is_replaced,
        ),
        (
            "dropping_the_sandbox_ends_its_launcher_and_removes_its_files",
            dropping_the_sandbox_ends_its_launcher_and_removes_its_files,
        ),
    ]
}

fn a_wall_timeout_returns_timed_out_quickly_and_leaves_no_process() {
    let env = TestEnv::new();
    let marker = "60.0101";
    let mut spec = env.spec("/usr/bin/sleep", &[marker]);
    spec.limits.wall_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::TimedOut);
    // Far below the sleep's 60 s: the timeout ended it (the bound is loose for slow hosts).
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(run.outcome.wall >= Duration::from_millis(300));
    assert_eq!(processes_with(&format!("sleep {marker}")), Vec::<u32>::new());
    env.assert_runs_left_nothing();
}

fn cancelling_a_run_kills_its_process_tree() {
    let env = TestEnv::new();
    let marker = "60.0202";
    let program = env.script("run.sh", &format!("#!/bin/sh\nsleep {marker} &\necho started\nsleep {marker}\n"));
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel(16);
    let spec = env.spec(&program, &[]);
    let outcome = env.rt.block_on(async {
        let run = env.sandbox.run(spec, tx, cancel.clone());
        let cancel_when_started = async {
            let first = rx.recv().await;
            assert_eq!(first.map(|l| l.line).as_deref(), Some("started"));
            // The marker finds the run's processes while they live (so its absence means
            // something below).
            let pattern = format!("sleep {marker}");
            assert!(eventually(Duration::from_secs(5), || processes_with(&pattern).len() == 2));
            cancel.cancel();
            while rx.recv().await.is_some() {}
        };
        tokio::join!(run, cancel_when_started).0
    });
    assert_eq!(outcome.unwrap().termination, Termination::Cancelled);
    assert_eq!(processes_with(&format!("sleep {marker}")), Vec::<u32>::new());
    env.assert_runs_left_nothing();
}

fn a_daemonized_child_is_killed_when_the_agent_exits() {
    let env = TestEnv::new();
    let marker = "300.0303";
    // The background sleep keeps stdout open; the run must still end at once.
    let run = env.sh(&format!("sleep {marker} &\nsetsid sleep {marker} > /dev/null 2>&1 &\necho done"));
    assert_eq!(run.stdout(), ["done"]);
    assert!(run.outcome.wall < Duration::from_secs(5), "{:?}", run.outcome.wall);
    assert_eq!(processes_with(&format!("sleep {marker}")), Vec::<u32>::new());
    env.assert_runs_left_nothing();
}

fn output_over_the_cap_kills_the_run_with_output_limit() {
    let env = TestEnv::new();
    let mut spec = env.spec("/usr/bin/yes", &["0123456789"]);
    spec.limits.max_output_bytes = 100_000;
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::OutputLimit);
    let delivered: usize = run.stdout().iter().map(|l| l.len() + 1).sum();
    assert!(delivered <= 100_000, "{delivered} bytes delivered");
    assert!(delivered >= 99_000, "only {delivered} bytes delivered");
    assert!(run.outcome.output_bytes > 100_000);
    assert_eq!(processes_with("yes 0123456789"), Vec::<u32>::new());
    env.assert_runs_left_nothing();
}

fn dropping_the_run_future_kills_the_process_tree() {
    let env = TestEnv::new();
    let marker = "60.0404";
    let program = env.script("run.sh", &format!("#!/bin/sh\nsleep {marker} &\necho started\nsleep {marker}\n"));
    let spec = env.spec(&program, &[]);
    env.rt.block_on(async {
        let (tx, mut rx) = mpsc::channel(16);
        let run = env.sandbox.run(spec, tx, CancellationToken::new());
        tokio::select! {
            _ = run => panic!("the run ended on its own"),
            line = rx.recv() => assert_eq!(line.map(|l| l.line).as_deref(), Some("started")),
        }
        // `run` is dropped here, mid-flight.
    });
    let pattern = format!("sleep {marker}");
    assert!(
        eventually(Duration::from_secs(5), || processes_with(&pattern).is_empty()),
        "left behind: {:?}",
        processes_with(&pattern)
    );
    // A dropped run's cgroup is removed by a cleanup thread once its processes are gone.
    assert!(eventually(Duration::from_secs(5), || env.run_cgroups().is_empty()), "{:?}", env.run_cgroups());
    env.assert_runs_left_nothing();
}

fn run_unsandboxed_times_out_and_kills_its_process_group() {
    let env = TestEnv::new();
    let marker = "60.0505";
    let program = env.script("run.sh", &format!("#!/bin/sh\nsleep {marker} &\nsleep {marker}\n"));
    let mut spec = env.spec(&program, &[]);
    spec.limits.wall_timeout = Duration::from_millis(300);
    let run = env.run_unsandboxed(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::TimedOut);
    let pattern = format!("sleep {marker}");
    // The group is killed at once, but tokio reaps the killed shell in the background.
    assert!(eventually(Duration::from_secs(2), || processes_with(&pattern).is_empty()));
}

fn a_killed_launcher_spares_running_runs_and_is_replaced() {
    let env = TestEnv::new();
    assert_eq!(env.sh("echo first").stdout(), ["first"]);
    let launcher = env.sandbox.launcher_pid().unwrap(); // the first run started it
    let run = std::thread::scope(|scope| {
        let running = scope.spawn(|| env.run(env.spec("/bin/sh", &["-c", "sleep 0.5; echo survived"])));
        std::thread::sleep(Duration::from_millis(200));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(launcher as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
        assert!(eventually(Duration::from_secs(5), || is_gone_or_zombie(launcher)), "the launcher did not die");
        running.join().unwrap().unwrap()
    });
    assert_eq!(run.outcome.termination, Termination::Exited(0));
    assert_eq!(run.stdout(), ["survived"]);
    assert_eq!(env.sh("echo next").stdout(), ["next"]);
    let replacement = env.sandbox.launcher_pid().unwrap(); // the next run started it
    assert_ne!(replacement, launcher);
    env.assert_contained_and_healthy();
}

/// The owner's files in `instance_dir` go too: they are the sandbox's to remove.
fn dropping_the_sandbox_ends_its_launcher_and_removes_its_files() {
    let env = TestEnv::new();
    assert_eq!(env.sh("echo hi").stdout(), ["hi"]);
    let launcher = env.sandbox.launcher_pid().unwrap(); // the run started it
    let instance_dir = env.sandbox.instance_dir().to_path_buf();
    assert!(instance_dir.starts_with(env.scratch.path()), "{}", instance_dir.display());
    std::fs::create_dir(instance_dir.join("a-run")).unwrap();
    std::fs::write(instance_dir.join("a-run/report.json"), "{}").unwrap();
    let TestEnv { sandbox, scratch, .. } = env;
    drop(sandbox);
    assert!(is_gone_or_zombie(launcher), "launcher {launcher} outlived its sandbox");
    assert_eq!(crate::support::tree(scratch.path()), Vec::<std::path::PathBuf>::new(), "files left");
}

fn is_gone_or_zombie(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}
