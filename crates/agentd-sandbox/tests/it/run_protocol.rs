//! The run protocol as the program sees it: stdin, stdout, stderr, fd 3, exit status,
//! environment, runtimes from `/usr/bin`, and the unsandboxed baseline.

use agentd_sandbox::{Sandbox, SandboxError, SandboxSettings, Stream, Termination};

use crate::Test;
use crate::support::{PATH, TestEnv};

pub fn tests() -> Vec<Test> {
    vec![
        (
            "a_script_reads_stdin_and_its_stdout_stderr_and_fd3_lines_arrive_on_their_streams",
            a_script_reads_stdin_and_its_stdout_stderr_and_fd3_lines_arrive_on_their_streams,
        ),
        ("exit_codes_zero_and_three_are_reported", exit_codes_zero_and_three_are_reported),
        ("death_by_signal_is_reported_as_signaled", death_by_signal_is_reported_as_signaled),
        ("python3_runs_from_usr_bin", python3_runs_from_usr_bin),
        ("node_runs_from_usr_bin", node_runs_from_usr_bin),
        ("the_environment_is_exactly_the_spec_env", the_environment_is_exactly_the_spec_env),
        ("long_lines_are_split_to_at_most_max_line_bytes", long_lines_are_split_to_at_most_max_line_bytes),
        ("a_missing_program_is_a_setup_error_naming_execve", a_missing_program_is_a_setup_error_naming_execve),
        (
            "sandbox_new_rejects_an_init_program_that_is_not_a_sandbox_init",
            sandbox_new_rejects_an_init_program_that_is_not_a_sandbox_init,
        ),
        (
            "a_root_supervisor_on_this_host_misses_no_sandbox_mechanism",
            a_root_supervisor_on_this_host_misses_no_sandbox_mechanism,
        ),
        (
            "run_unsandboxed_gives_the_same_output_for_the_same_script",
            run_unsandboxed_gives_the_same_output_for_the_same_script,
        ),
    ]
}

const ECHO_SCRIPT: &str = r#"#!/bin/sh
read first
read second
echo "out: $first"
echo "err: $second" >&2
echo '{"type":"log","message":"hi"}' >&3
echo '{"type":"output","data":42}' >&3
printf 'no newline at the end'
"#;

fn a_script_reads_stdin_and_its_stdout_stderr_and_fd3_lines_arrive_on_their_streams() {
    let env = TestEnv::new();
    let program = env.script("run.sh", ECHO_SCRIPT);
    let mut spec = env.spec(&program, &[]);
    spec.stdin = b"hello\nworld\n".to_vec();
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0));
    assert_eq!(run.stdout(), ["out: hello", "no newline at the end"]);
    assert_eq!(run.stream(Stream::Stderr), ["err: world"]);
    assert_eq!(run.stream(Stream::Events), [r#"{"type":"log","message":"hi"}"#, r#"{"type":"output","data":42}"#]);
    let expected_bytes = "out: hello\nno newline at the end".len()
        + "err: world\n".len()
        + "{\"type\":\"log\",\"message\":\"hi\"}\n{\"type\":\"output\",\"data\":42}\n".len();
    assert_eq!(run.outcome.output_bytes, expected_bytes as u64);
    env.assert_runs_left_nothing();
}

fn exit_codes_zero_and_three_are_reported() {
    let env = TestEnv::new();
    for code in [0, 3] {
        let program = env.script("exit.sh", &format!("#!/bin/sh\nexit {code}\n"));
        let run = env.run(env.spec(&program, &[])).unwrap();
        assert_eq!(run.outcome.termination, Termination::Exited(code));
    }
}

fn death_by_signal_is_reported_as_signaled() {
    let env = TestEnv::new();
    let program = env.script("die.sh", "#!/bin/sh\nkill -TERM $$\nsleep 5\n");
    let run = env.run(env.spec(&program, &[])).unwrap();
    assert_eq!(run.outcome.termination, Termination::Signaled(15));
    let program = env.script("die.sh", "#!/bin/sh\nkill -KILL $$\n");
    let run = env.run(env.spec(&program, &[])).unwrap();
    assert_eq!(run.outcome.termination, Termination::Signaled(9));
}

fn python3_runs_from_usr_bin() {
    let env = TestEnv::new();
    let code = "import sys, os; print('py', sys.version_info[0]); os.write(3, b'{\"type\":\"output\"}\\n')";
    let run = env.run(env.spec("/usr/bin/python3", &["-c", code])).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert_eq!(run.stdout(), ["py 3"]);
    assert_eq!(run.stream(Stream::Events), [r#"{"type":"output"}"#]);
}

fn node_runs_from_usr_bin() {
    let env = TestEnv::new();
    let code = "console.log('node', process.version.startsWith('v')); require('fs').writeSync(3, 'ev\\n')";
    let run = env.run(env.spec("/usr/bin/node", &["-e", code])).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert_eq!(run.stdout(), ["node true"]);
    assert_eq!(run.stream(Stream::Events), ["ev"]);
}

fn the_environment_is_exactly_the_spec_env() {
    let env = TestEnv::new();
    let mut spec = env.spec("/usr/bin/env", &[]);
    spec.env = vec![
        ("PATH".into(), PATH.into()),
        ("AGENTD_EVENTS_FD".into(), "3".into()),
        ("WITH_SPACES".into(), "a b  c".into()),
    ];
    let run = env.run(spec).unwrap();
    assert_eq!(run.stdout(), [format!("PATH={PATH}").as_str(), "AGENTD_EVENTS_FD=3", "WITH_SPACES=a b  c"]);
}

fn long_lines_are_split_to_at_most_max_line_bytes() {
    let env = TestEnv::new();
    let mut spec = env.spec("/usr/bin/python3", &["-c", "print('x' * 10000); print('é' * 3000)"]);
    spec.limits.max_line_bytes = 4096;
    let run = env.run(spec).unwrap();
    let out = run.stdout();
    assert!(out.iter().all(|l| l.len() <= 4096), "a line is too long");
    assert_eq!(out[..3].concat(), "x".repeat(10000));
    assert_eq!(out[3..].concat(), "é".repeat(3000));
}

fn a_missing_program_is_a_setup_error_naming_execve() {
    let env = TestEnv::new();
    let err = env.run(env.spec("/agent/does-not-exist", &[])).err().unwrap();
    match err {
        SandboxError::Setup { stage, .. } => assert!(stage.contains("execve"), "{stage}"),
        other => panic!("unexpected error {other:?}"),
    }
    env.assert_runs_left_nothing();
}

fn run_unsandboxed_gives_the_same_output_for_the_same_script() {
    let env = TestEnv::new();
    let program = env.script("run.sh", ECHO_SCRIPT);
    let mut spec = env.spec(&program, &[]);
    spec.stdin = b"hello\nworld\n".to_vec();
    let sandboxed = env.run(spec.clone()).unwrap();
    let bare = env.run_unsandboxed(spec).unwrap();
    assert_eq!(bare.outcome.termination, Termination::Exited(0));
    for stream in [Stream::Stdout, Stream::Stderr, Stream::Events] {
        assert_eq!(sandboxed.stream(stream), bare.stream(stream));
    }
    assert_eq!(sandboxed.outcome.output_bytes, bare.outcome.output_bytes);
}

fn sandbox_new_rejects_an_init_program_that_is_not_a_sandbox_init() {
    let scratch = tempfile::tempdir().unwrap();
    for program in ["/usr/bin/true", "/usr/bin/false"] {
        let settings = SandboxSettings {
            init_program: program.into(),
            scratch_dir: scratch.path().to_path_buf(),
            egress: Default::default(),
        };
        match Sandbox::new(settings) {
            Err(SandboxError::Unsupported { reason }) => assert!(reason.contains(program), "{reason}"),
            other => panic!("{program} was accepted as init: {other:?}"),
        }
    }
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0, "a refused sandbox left files");
}

/// The development host has everything (cgroups v1 memory/pids/cpu, seccomp, landlock);
/// without root, the shared-uid mapping is reported.
fn a_root_supervisor_on_this_host_misses_no_sandbox_mechanism() {
    let env = TestEnv::new();
    let missing = env.sandbox.missing_mechanisms();
    if nix::unistd::Uid::effective().is_root() {
        assert_eq!(missing, Vec::<String>::new());
    } else {
        assert!(missing.iter().any(|m| m.starts_with("root supervisor")), "{missing:?}");
    }
}
