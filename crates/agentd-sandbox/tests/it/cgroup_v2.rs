//! This host may have cgroup v1 only, while many have v2 only: the whole suite runs again
//! in a virtual machine whose kernel has nothing but the unified hierarchy, with this
//! host's root filesystem as its own (`.ci/cgroup2-vm`, set up by `.ci/run`).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::Test;

/// The runner script: `<runner> [options] -- <command>` boots the VM and runs the command.
const RUNNER_VAR: &str = "AGENTD_TEST_CGROUP2_VM";
const THIS_TEST: &str = "the_whole_suite_passes_on_a_cgroup_v2_only_kernel";

pub fn tests() -> Vec<Test> {
    vec![(THIS_TEST, the_whole_suite_passes_on_a_cgroup_v2_only_kernel)]
}

fn the_whole_suite_passes_on_a_cgroup_v2_only_kernel() {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    if own.lines().all(|line| line.starts_with("0::")) {
        return; // this host is v2 only: the suite around this test already covers it
    }
    let Some(runner) = std::env::var_os(RUNNER_VAR) else {
        assert!(std::env::var_os("CI").is_none(), "CI must set {RUNNER_VAR} (.ci/run does)");
        eprintln!("{THIS_TEST}: skipped, {RUNNER_VAR} is not set");
        return;
    };
    // The guest sees the host's files but has a /tmp of its own (where a build dir may
    // be): the binary is copied next to the runner, which the guest sees. The runner
    // fails unless the guest has the memory, pids and cpu controllers.
    let runner = Path::new(&runner);
    let dir = tempfile::Builder::new().prefix("it-").tempdir_in(runner.parent().unwrap()).unwrap();
    let exe = dir.path().join("sandbox-tests");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let output = Command::new(runner)
        .args(["--timeout", "1200", "--env", "TMPDIR=/tmp", "--"])
        .arg(&exe)
        .args(["--test-threads", "2", "--skip", THIS_TEST])
        .current_dir("/")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the suite failed on cgroup v2 ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("test result: ok"), "{stdout}\n{stderr}");
}
