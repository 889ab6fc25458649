//! Copying `/outputs` out of a run: regular files arrive, readable by the host and owned
//! by the directory's owner; symlinks, FIFOs and killed runs leave nothing behind.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use agentd_sandbox::{OutputFile, SandboxError, Termination};

use crate::Test;
use crate::support::{TestEnv, processes_with};

pub fn tests() -> Vec<Test> {
    vec![
        (
            "outputs_regular_files_are_copied_out_and_symlinks_are_not",
            outputs_regular_files_are_copied_out_and_symlinks_are_not,
        ),
        ("outputs_of_a_timed_out_run_are_not_collected", outputs_of_a_timed_out_run_are_not_collected),
        ("outputs_need_an_empty_directory", outputs_need_an_empty_directory),
    ]
}

/// Every entry under `dir`, relative, sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        for entry in fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            found.push(entry.path().strip_prefix(dir).unwrap().display().to_string());
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

fn outputs_regular_files_are_copied_out_and_symlinks_are_not() {
    let env = TestEnv::new();
    let target = tempfile::tempdir().unwrap();
    let marker = "60.0909";
    // A leftover background writer must neither block the copy nor change it.
    let program = env.script(
        "run.sh",
        &format!(
            "#!/bin/sh\nmkdir /outputs/sub\necho 'all good' > /outputs/report.txt\nchmod 600 /outputs/report.txt\n\
             printf '{{\"n\": 42}}' > /outputs/sub/data.json\nln -s /etc/shadow /outputs/evil\n\
             ln -s /etc /outputs/etc\nmkfifo /outputs/fifo\n\
             (sleep {marker}; echo late > /outputs/late) > /dev/null 2>&1 &\necho done\n"
        ),
    );
    let mut spec = env.spec(&program, &[]);
    spec.collect_outputs = Some(target.path().to_path_buf());
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert!(run.outcome.wall < Duration::from_secs(5), "{:?}", run.outcome.wall);
    let file = |name: &str, size| OutputFile { name: name.into(), size, path: target.path().join(name) };
    assert_eq!(run.outcome.outputs, [file("report.txt", 9), file("sub/data.json", 9)]);
    assert_eq!(tree(target.path()), ["report.txt", "sub", "sub/data.json"]);
    assert_eq!(fs::read_to_string(target.path().join("report.txt")).unwrap(), "all good\n");
    assert_eq!(fs::read_to_string(target.path().join("sub/data.json")).unwrap(), "{\"n\": 42}");
    let me = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    for path in ["", "report.txt", "sub", "sub/data.json"] {
        let meta = fs::symlink_metadata(target.path().join(path)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), me, "owner of {path:?}");
    }
    assert_eq!(processes_with(&format!("sleep {marker}")), Vec::<u32>::new());
    env.assert_contained_and_healthy();
}

fn outputs_of_a_timed_out_run_are_not_collected() {
    let env = TestEnv::new();
    let target = tempfile::tempdir().unwrap();
    let program = env.script("run.sh", "#!/bin/sh\necho partial > /outputs/partial.txt\nexec sleep 60.1010\n");
    let mut spec = env.spec(&program, &[]);
    spec.collect_outputs = Some(target.path().to_path_buf());
    spec.limits.wall_timeout = Duration::from_millis(500);
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::TimedOut);
    assert_eq!(run.outcome.outputs, []);
    assert_eq!(tree(target.path()), Vec::<String>::new());
    let meta = fs::metadata(target.path()).unwrap();
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw(), "the directory was not given back");
    env.assert_contained_and_healthy();
}

fn outputs_need_an_empty_directory() {
    let env = TestEnv::new();
    let target = tempfile::tempdir().unwrap();
    fs::write(target.path().join("old"), "x").unwrap();
    let mut spec = env.spec("/usr/bin/true", &[]);
    spec.collect_outputs = Some(target.path().to_path_buf());
    match env.run(spec) {
        Err(SandboxError::InvalidSpec { reason }) => assert!(reason.contains("must be empty"), "{reason}"),
        other => panic!("{:?}", other.map(|r| r.outcome)),
    }
    env.assert_runs_left_nothing();
}
