//! A `Sandbox` whose process is killed with SIGKILL cleans nothing up: the dir of its run
//! in flight, its owner's files and the run's cgroup stay. Another `Sandbox` on the same
//! scratch dir removes them (`remove_leftovers`), killing what is still in the cgroup, and
//! never touches what a live `Sandbox` on that scratch dir uses.
//!
//! The killed owner is this test binary run again as `<exe> __owner-of-a-long-run`.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use agentd_sandbox::{LeftoverReport, Sandbox, SandboxSettings, Termination};
use tokio_util::sync::CancellationToken;

use crate::Test;
use crate::support::{TestEnv, eventually, processes_with, run_cgroups_of, spec, tree};

/// `argv[1]` that makes this binary the owner that gets killed.
pub const OWNER_ARG: &str = "__owner-of-a-long-run";
/// `sleep` durations that mark the processes of each party.
const OWNER_MARKER: &str = "300.0909";
const LIVE_MARKER: &str = "300.0910";
const ESCAPED_MARKER: &str = "300.0911";
/// A file the owner keeps in its `instance_dir`, as the worker keeps its copies of `/outputs`.
const OWNER_FILE: &str = "outputs-of-a-run/report.json";

pub fn tests() -> Vec<Test> {
    vec![(
        "leftovers_of_a_killed_sandbox_are_removed_and_a_live_sandboxs_run_is_untouched",
        leftovers_of_a_killed_sandbox_are_removed_and_a_live_sandboxs_run_is_untouched,
    )]
}

/// `<exe> __owner-of-a-long-run <scratch dir> <bundle dir>`: starts a run that sleeps,
/// prints `running <instance dir>` once the run's program is up, and waits to be killed
/// (the run outlasts any test).
pub fn owner_main(args: &[String]) -> ! {
    let [scratch, bundle] = args else { panic!("usage: {OWNER_ARG} <scratch dir> <bundle dir>") };
    let sandbox = Sandbox::new(SandboxSettings {
        init_program: std::env::current_exe().unwrap(),
        scratch_dir: scratch.into(),
        egress: Default::default(),
    })
    .unwrap();
    let owner_file = sandbox.instance_dir().join(OWNER_FILE);
    fs::create_dir_all(owner_file.parent().unwrap()).unwrap();
    fs::write(&owner_file, "{}").unwrap();
    let spec = spec(Path::new(bundle), "/agent/owner.sh", &[]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let run = sandbox.run(spec, tx, CancellationToken::new());
        let announce = async {
            assert_eq!(rx.recv().await.map(|l| l.line).as_deref(), Some("started"));
            let mut stdout = std::io::stdout();
            writeln!(stdout, "running {}", sandbox.instance_dir().display()).unwrap();
            stdout.flush().unwrap();
            while rx.recv().await.is_some() {}
        };
        let (outcome, ()) = tokio::join!(run, announce);
        panic!("the owner's run ended: {outcome:?}");
    })
}

/// The owner process, killed when the test ends, however it ends.
struct Owner {
    child: Child,
    instance_dir: PathBuf,
}

impl Owner {
    fn start(scratch: &Path, bundle: &Path) -> Owner {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg(OWNER_ARG)
            .args([scratch, bundle])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let _ = tx.send(line.unwrap());
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30));
        let mut owner = Owner { child, instance_dir: PathBuf::new() };
        let Ok(line) = line else { panic!("the owner did not report its run") };
        owner.instance_dir = PathBuf::from(line.strip_prefix("running ").unwrap());
        owner
    }

    /// `instance-<id>`, the directory `instance_dir` is in.
    fn instance(&self) -> PathBuf {
        self.instance_dir.parent().unwrap().to_path_buf()
    }

    fn kill(&mut self) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGKILL)
            .unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.child.kill(); // already dead when the test went well
        let _ = self.child.wait();
    }
}

/// The run dirs and run cgroups of the instance `instance` (the dir `instance_dir` is in).
fn left_by(instance: &Path, scratch: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let runs = fs::read_dir(instance.join("runs")).map(|dir| dir.map(|e| e.unwrap().path()).collect());
    let id = instance.file_name().unwrap().to_string_lossy().into_owned();
    let cgroups = run_cgroups_of(scratch).into_iter().filter(|c| c.to_string_lossy().contains(&id)).collect();
    (runs.unwrap_or_default(), cgroups)
}

fn leftovers_of_a_killed_sandbox_are_removed_and_a_live_sandboxs_run_is_untouched() {
    let live = TestEnv::new();
    live.script("owner.sh", &format!("#!/bin/sh\necho started\nexec sleep {OWNER_MARKER}\n"));
    let live_program = live.script("live.sh", &format!("#!/bin/sh\nexec sleep {LIVE_MARKER}\n"));
    let scratch = live.scratch.path();
    let cgroups_here = nix::unistd::Uid::effective().is_root();
    let cancel = CancellationToken::new();
    std::thread::scope(|scope| {
        let live_run = scope.spawn(|| live.run_with(live.spec(&live_program, &[]), cancel.clone()));
        let mut owner = Owner::start(scratch, live.bundle.path());
        let up = |marker: &str| !processes_with(&format!("sleep {marker}")).is_empty();
        assert!(eventually(Duration::from_secs(20), || up(LIVE_MARKER) && up(OWNER_MARKER)), "the runs did not start");
        let live_instance = live.sandbox.instance_dir().parent().unwrap().to_path_buf();
        let live_left = left_by(&live_instance, scratch);
        let (owner_runs, owner_cgroups) = left_by(&owner.instance(), scratch);
        assert_eq!((live_left.0.len(), owner_runs.len()), (1, 1), "one run dir each");
        if cgroups_here {
            assert!(!live_left.1.is_empty() && !owner_cgroups.is_empty(), "{live_left:?} {owner_cgroups:?}");
        }

        owner.kill();
        // Its init saw the control socket close and ended the run's processes.
        assert!(eventually(Duration::from_secs(10), || !up(OWNER_MARKER)), "the owner's run outlived it");
        assert_eq!(left_by(&owner.instance(), scratch), (owner_runs.clone(), owner_cgroups.clone()), "nothing left");
        assert!(owner.instance_dir.join(OWNER_FILE).is_file());
        // A process that escaped its run's PID namespace would still sit in the cgroup.
        let escaped = escape_into(&owner_cgroups);

        let newcomer = Sandbox::new(SandboxSettings {
            init_program: std::env::current_exe().unwrap(),
            scratch_dir: scratch.to_path_buf(),
            egress: Default::default(),
        })
        .unwrap();
        let report = newcomer.remove_leftovers().unwrap();
        let expected = LeftoverReport {
            instances: 1,
            run_dirs: 1,
            cgroups: owner_cgroups.len(),
            killed_processes: usize::from(escaped.is_some()),
            kept: Vec::new(),
        };
        assert_eq!(report, expected);
        assert!(!owner.instance().exists(), "the owner's dir is still there: {:?}", tree(&owner.instance()));
        assert_eq!(left_by(&owner.instance(), scratch).1, Vec::<PathBuf>::new(), "its cgroups are still there");
        if let Some(escaped) = escaped {
            assert_eq!(escaped.join().unwrap(), Some(libc::SIGKILL), "the escaped process was not killed");
        }
        // The live sandbox's run kept its dir, its cgroup and its processes.
        assert_eq!(left_by(&live_instance, scratch), live_left);
        assert!(up(LIVE_MARKER), "the live run was killed");
        assert_eq!(newcomer.remove_leftovers().unwrap(), LeftoverReport::default(), "a second pass found more");
        drop(newcomer);

        cancel.cancel();
        assert_eq!(live_run.join().unwrap().unwrap().outcome.termination, Termination::Cancelled);
    });
    live.assert_runs_left_nothing();
}

/// Starts a `sleep` outside any run and moves it into `cgroups` (as root, where there are
/// any); returns a thread that reaps it and gives the signal that ended it.
fn escape_into(cgroups: &[PathBuf]) -> Option<std::thread::JoinHandle<Option<i32>>> {
    if cgroups.is_empty() {
        return None;
    }
    let mut sleep = Command::new("/usr/bin/sleep").arg(ESCAPED_MARKER).spawn().unwrap();
    for cgroup in cgroups {
        fs::write(cgroup.join("cgroup.procs"), sleep.id().to_string()).unwrap();
    }
    Some(std::thread::spawn(move || {
        use std::os::unix::process::ExitStatusExt;
        sleep.wait().unwrap().signal()
    }))
}
