//! What the program can and cannot see or touch: filesystem, users, processes, network, fds.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use agentd_sandbox::Termination;

use crate::Test;
use crate::support::TestEnv;

pub fn tests() -> Vec<Test> {
    vec![
        (
            "agent_is_read_only_while_work_and_tmp_are_writable_and_cwd_is_work",
            agent_is_read_only_while_work_and_tmp_are_writable_and_cwd_is_work,
        ),
        ("the_host_etc_shadow_and_root_home_are_not_visible", the_host_etc_shadow_and_root_home_are_not_visible),
        (
            "the_agent_runs_as_uid_1000_without_capabilities_or_groups",
            the_agent_runs_as_uid_1000_without_capabilities_or_groups,
        ),
        ("host_processes_are_invisible", host_processes_are_invisible),
        ("a_tcp_connect_to_a_host_listener_fails", a_tcp_connect_to_a_host_listener_fails),
        ("only_fds_0_to_3_reach_the_program", only_fds_0_to_3_reach_the_program),
        ("extra_mounts_are_visible_read_only", extra_mounts_are_visible_read_only),
        ("tmp_is_size_capped", tmp_is_size_capped),
        (
            "an_unprivileged_supervisor_passes_the_isolation_tests_too",
            an_unprivileged_supervisor_passes_the_isolation_tests_too,
        ),
        ("hostname_is_agentd_and_passwd_is_the_sandboxs_own", hostname_is_agentd_and_passwd_is_the_sandboxs_own),
        (
            "the_mount_table_names_no_host_path_of_the_scratch_data_bundle_or_extra_mounts",
            the_mount_table_names_no_host_path_of_the_scratch_data_bundle_or_extra_mounts,
        ),
    ]
}

fn agent_is_read_only_while_work_and_tmp_are_writable_and_cwd_is_work() {
    let env = TestEnv::new();
    let run = env.sh(r#"pwd
touch /agent/new 2>/dev/null && echo agent-writable || echo agent-read-only
touch /usr/new 2>/dev/null && echo usr-writable || echo usr-read-only
touch /new 2>/dev/null && echo root-writable || echo root-read-only
echo w > /work/f && cat /work/f
echo t > /tmp/f && cat /tmp/f"#);
    assert_eq!(run.stdout(), ["/work", "agent-read-only", "usr-read-only", "root-read-only", "w", "t"]);
    assert!(!env.bundle.path().join("new").exists());
}

fn the_host_etc_shadow_and_root_home_are_not_visible() {
    let env = TestEnv::new();
    let run = env.sh(r#"test -e /etc/shadow && echo shadow-visible || echo no-shadow
ls /root >/dev/null 2>&1 && echo root-listable || echo no-root
ls /home >/dev/null 2>&1 && echo home-listable || echo no-home"#);
    assert_eq!(run.stdout(), ["no-shadow", "no-root", "no-home"]);
}

fn the_agent_runs_as_uid_1000_without_capabilities_or_groups() {
    let env = TestEnv::new();
    let run = env.sh("id -u\nid -g\ngrep -E '^(Groups|NoNewPrivs|Cap(Inh|Prm|Eff|Bnd|Amb))' /proc/self/status");
    let out = run.stdout();
    if nix::unistd::Uid::effective().is_root() {
        assert_eq!(out[..2], ["1000", "1000"]);
    } else {
        assert_eq!(out[..2], ["0", "0"]);
    }
    let status: Vec<(&str, &str)> =
        out[2..].iter().map(|l| l.split_once(':').unwrap()).map(|(k, v)| (k, v.trim())).collect();
    assert_eq!(status.len(), 7, "{status:?}");
    for (key, value) in status {
        match key {
            "Groups" => assert_eq!(value, "", "supplementary groups left"),
            "NoNewPrivs" => assert_eq!(value, "1"),
            _ => assert_eq!(value, "0000000000000000", "{key} left"),
        }
    }
}

fn host_processes_are_invisible() {
    let env = TestEnv::new();
    let run = env.sh("ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '");
    let pids: Vec<u32> = run.stdout()[0].split_whitespace().map(|p| p.parse().unwrap()).collect();
    // The shell, ls, grep, sort, tr (and PID 1 when it has the agent's uid): a handful,
    // all small.
    assert!(!pids.is_empty() && pids.len() <= 8, "{pids:?}");
    assert!(pids.iter().all(|p| *p < 20), "{pids:?}");
}

fn a_tcp_connect_to_a_host_listener_fails() {
    let env = TestEnv::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    print('connected')\nexcept OSError as e:\n    print('refused', e.errno)"
    );
    let run = env.run(env.spec("/usr/bin/python3", &["-c", &code])).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert!(run.stdout()[0].starts_with("refused"), "{:?}", run.stdout());
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "the host listener got a connection");
}

fn only_fds_0_to_3_reach_the_program() {
    let env = TestEnv::new();
    // ls opens the directory it lists: that one fd points at .../fd itself.
    let run = env.run(env.spec("/usr/bin/ls", &["-l", "/proc/self/fd/"])).unwrap();
    let fds: Vec<(&str, &str)> = run
        .stdout()
        .into_iter()
        .filter(|l| l.contains(" -> "))
        .map(|l| {
            let (left, target) = l.split_once(" -> ").unwrap();
            (left.rsplit(' ').next().unwrap(), target)
        })
        .collect();
    let numbers: Vec<&str> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers[..4], ["0", "1", "2", "3"], "{fds:?}");
    for (n, target) in &fds[4..] {
        assert!(target.ends_with("/fd"), "fd {n} leaked: {target}");
    }
}

fn extra_mounts_are_visible_read_only() {
    let env = TestEnv::new();
    let sdk = tempfile::tempdir().unwrap();
    fs::write(sdk.path().join("agentd.py"), "X = 1\n").unwrap();
    let mut perms = fs::metadata(sdk.path()).unwrap().permissions();
    perms.set_mode(0o755);
    fs::set_permissions(sdk.path(), perms).unwrap();
    let program = env.script(
        "run.sh",
        "#!/bin/sh\ncat /opt/agentd/python/agentd.py\ntouch /opt/agentd/python/x 2>/dev/null || echo read-only\n",
    );
    let mut spec = env.spec(&program, &[]);
    spec.extra_ro_mounts = vec![(sdk.path().to_path_buf(), "/opt/agentd/python".into())];
    let run = env.run(spec).unwrap();
    assert_eq!(run.stdout(), ["X = 1", "read-only"]);
}

fn tmp_is_size_capped() {
    let env = TestEnv::new();
    // 1 MiB cap: writing 2 MiB fails with ENOSPC.
    let run = env.sh("dd if=/dev/zero of=/tmp/big bs=1024 count=2048 2>/dev/null && echo fits || echo full");
    assert_eq!(run.stdout(), ["full"]);
}

fn hostname_is_agentd_and_passwd_is_the_sandboxs_own() {
    let env = TestEnv::new();
    let run = env.sh("cat /proc/sys/kernel/hostname\ncut -d: -f1 /etc/passwd | tr '\\n' ' '");
    assert_eq!(run.stdout()[0], "agentd");
    assert!(!run.stdout()[1].contains("daemon"), "{:?}", run.stdout());
}

/// The worker keeps bundles under its data dir by digest, next to the scratch dir and the
/// SDK; a run reading its own mount table learns none of those names. The dirs here are
/// named so that any trace of them is found; the data dir is 0700, as a worker's may be.
fn the_mount_table_names_no_host_path_of_the_scratch_data_bundle_or_extra_mounts() {
    let data = tempfile::Builder::new().prefix("leakcheck-data-").tempdir().unwrap();
    let dir_in_data = |prefix: &str| tempfile::Builder::new().prefix(prefix).tempdir_in(data.path()).unwrap();
    let (scratch, bundle) = (dir_in_data("leakcheck-runs-"), dir_in_data("leakcheck-sha256-d1e5e1-"));
    let (sdk, conf) = (dir_in_data("leakcheck-sdk-"), dir_in_data("leakcheck-conf-"));
    fs::write(sdk.path().join("agentd.py"), "X = 1\n").unwrap();
    fs::write(conf.path().join("settings.toml"), "answer = 42\n").unwrap();
    // Too big to be copied into the run: served through an overlay.
    let big = dir_in_data("leakcheck-models-");
    fs::write(big.path().join("weights.bin"), vec![7u8; 512 << 10]).unwrap();
    for dir in [sdk.path(), big.path()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let env = TestEnv::in_dirs(scratch, bundle);
    let program = env.script(
        "run.sh",
        "#!/bin/sh\nls /agent /opt/agentd/python | tr '\\n' ' '; echo\ncat /opt/agentd/python/agentd.py \
         /etc/agentd/settings.toml\nwc -c < /opt/models/weights.bin\ntouch /agent/x /opt/agentd/python/x \
         /etc/agentd/settings.toml /opt/models/x 2>/dev/null || echo read-only\necho mountinfo\n\
         cat /proc/self/mountinfo\necho mounts; cat /proc/self/mounts\n",
    );
    let mut spec = env.spec(&program, &[]);
    spec.extra_ro_mounts = vec![
        (sdk.path().to_path_buf(), "/opt/agentd/python".into()),
        (conf.path().join("settings.toml"), "/etc/agentd/settings.toml".into()),
        (big.path().to_path_buf(), "/opt/models".into()),
    ];
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    let out = run.stdout();
    let expected = ["/agent: run.sh  /opt/agentd/python: agentd.py ", "X = 1", "answer = 42", "524288", "read-only"];
    assert_eq!(out[..5], expected);
    let (mountinfo, mounts) = (out.iter().position(|l| *l == "mountinfo"), out.iter().position(|l| *l == "mounts"));
    assert!(mountinfo.is_some() && mounts > mountinfo, "{out:?}");
    let table = out[5..].join("\n");
    for secret in ["leakcheck", "d1e5e1", &data.path().display().to_string(), &env.scratch.path().display().to_string()]
    {
        assert!(!table.contains(secret), "{secret} shows in the run's mount table:\n{table}");
    }
    // The runtime's own directories may show: their paths tell nothing.
    assert!(table.contains(" /usr "), "{table}");
    // Where overlayfs works for a user namespace (here), the big directory was mounted,
    // not bound: this test covers both ways of serving a directory.
    if env.sandbox.missing_mechanisms().iter().all(|m| !m.starts_with("overlayfs")) {
        assert!(table.lines().any(|l| l.contains(" /opt/models ") && l.contains("overlay")), "{table}");
    }
}

/// As root, reruns a few of these tests as `nobody`, where only one id can be mapped and the
/// agent is uid 0 inside without capabilities. (Without root the suite already runs so.)
fn an_unprivileged_supervisor_passes_the_isolation_tests_too() {
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    // A copy that `nobody` may execute wherever the build dir is.
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("sandbox-tests");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    for test in [
        "the_agent_runs_as_uid_1000_without_capabilities_or_groups",
        "the_host_etc_shadow_and_root_home_are_not_visible",
        "a_tcp_connect_to_a_host_listener_fails",
        "a_daemonized_child_is_killed_when_the_agent_exits",
        "egress_reaches_an_allowed_host_through_the_proxy_and_nothing_else",
        "host_forward_carries_connections_to_its_target_and_nothing_else",
        "outputs_regular_files_are_copied_out_and_symlinks_are_not",
        "hostile_sockets_of_other_families_fail_with_eafnosupport",
        "the_mount_table_names_no_host_path_of_the_scratch_data_bundle_or_extra_mounts",
        "leftovers_of_a_killed_sandbox_are_removed_and_a_live_sandboxs_run_is_untouched",
    ] {
        let output = run_as_nobody(&exe, test);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{test}:\n{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "{test}:\n{stdout}");
    }
}

/// Runs one test of `exe` as `nobody`. Retries on ETXTBSY: a process that another test forks
/// at the moment of the copy briefly holds the copy's write fd (until its own exec).
fn run_as_nobody(exe: &std::path::Path, test: &str) -> std::process::Output {
    for _ in 0..20 {
        let output = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(exe)
            .args(["--exact", test])
            .env("TMPDIR", "/tmp")
            .output()
            .unwrap();
        if !String::from_utf8_lossy(&output.stderr).contains("Text file busy") {
            return output;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} stayed busy", exe.display());
}
