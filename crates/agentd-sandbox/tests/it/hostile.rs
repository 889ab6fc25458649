//! Hostile agents: each test plays an agent trying to escape or exhaust the host, asserts
//! that it was contained, and then that nothing of the run is left (scratch entries,
//! cgroups, marked processes) and that the next run is healthy.

use std::net::TcpListener;
use std::time::Duration;

use agentd_sandbox::Termination;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Test;
use crate::support::{TestEnv, processes_with};

pub fn tests() -> Vec<Test> {
    vec![
        (
            "hostile_network_reaches_only_its_own_loopback_not_the_hosts_nor_outside",
            hostile_network_reaches_only_its_own_loopback_not_the_hosts_nor_outside,
        ),
        ("hostile_concurrent_runs_do_not_share_a_network", hostile_concurrent_runs_do_not_share_a_network),
        (
            "hostile_reads_of_shadow_root_and_the_workers_scratch_dir_fail",
            hostile_reads_of_shadow_root_and_the_workers_scratch_dir_fail,
        ),
        ("hostile_run_cannot_see_a_concurrent_runs_work", hostile_run_cannot_see_a_concurrent_runs_work),
        ("hostile_writes_outside_work_outputs_tmp_and_shm_fail", hostile_writes_outside_work_outputs_tmp_and_shm_fail),
        ("hostile_fork_bomb_is_held_by_the_pids_cap", hostile_fork_bomb_is_held_by_the_pids_cap),
        (
            "hostile_allocation_past_the_memory_cap_ends_with_memory_limit",
            hostile_allocation_past_the_memory_cap_ends_with_memory_limit,
        ),
        (
            "hostile_spin_past_the_timeout_is_timed_out_with_cpu_time_accounted",
            hostile_spin_past_the_timeout_is_timed_out_with_cpu_time_accounted,
        ),
        ("hostile_filling_work_and_tmp_gets_enospc_only", hostile_filling_work_and_tmp_gets_enospc_only),
        ("hostile_privileged_syscalls_fail_with_clear_errors", hostile_privileged_syscalls_fail_with_clear_errors),
        ("hostile_signals_cannot_reach_host_processes_or_pid_1", hostile_signals_cannot_reach_host_processes_or_pid_1),
        (
            "hostile_gigabyte_on_stdout_is_cut_at_the_output_limit",
            hostile_gigabyte_on_stdout_is_cut_at_the_output_limit,
        ),
        ("hostile_sees_a_minimal_dev_and_its_own_cgroup_root", hostile_sees_a_minimal_dev_and_its_own_cgroup_root),
    ]
}

fn hostile_network_reaches_only_its_own_loopback_not_the_hosts_nor_outside() {
    let env = TestEnv::new();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let code = format!(
        r#"
import socket
def attempt(addr):
    try:
        socket.create_connection(addr, timeout=2).close()
        return 'connected'
    except OSError as e:
        return 'failed'
own = socket.socket(); own.bind(('127.0.0.1', 0)); own.listen(1)
print('own', attempt(own.getsockname()))
print('host', attempt(('127.0.0.1', {port})))
print('outside', attempt(('192.0.2.1', 80)))
print('ipv6', attempt(('::1', {port})))
"#
    );
    let run = env.python(&code, |_| {});
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert_eq!(run.stdout(), ["own connected", "host failed", "outside failed", "ipv6 failed"]);
    host.set_nonblocking(true).unwrap();
    assert!(host.accept().is_err(), "the host listener got a connection");
    env.assert_contained_and_healthy();
}

/// Each run has a network namespace of its own (from the launcher's pool, as root): a
/// listener in one run is unreachable from another run at the same time.
fn hostile_concurrent_runs_do_not_share_a_network() {
    let env = TestEnv::new();
    let port = 43_917;
    let listen = format!(
        "import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(8)\nprint('listening', flush=True)\ntime.sleep(1.5)"
    );
    let connect = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2).close(); print('connected')\nexcept OSError:\n    print('failed')"
    );
    let (listener, other) = std::thread::scope(|scope| {
        let listener = scope.spawn(|| env.python(&listen, |_| {}));
        std::thread::sleep(Duration::from_millis(600));
        let other = env.python(&connect, |_| {});
        (listener.join().unwrap(), other)
    });
    assert_eq!(listener.stdout(), ["listening"], "{:?}", listener.lines);
    assert_eq!(other.stdout(), ["failed"], "{:?}", other.lines);
    env.assert_contained_and_healthy();
}

fn hostile_reads_of_shadow_root_and_the_workers_scratch_dir_fail() {
    let env = TestEnv::new();
    let scratch = env.scratch.path().display().to_string();
    let bundle = env.bundle.path().display().to_string();
    let run = env.sh(&format!(
        r#"for p in /etc/shadow /root /home {scratch} {bundle} /proc/1/root/ /proc/1/environ /sys/fs/cgroup /boot; do
  if cat "$p" >/dev/null 2>&1 || ls "$p" >/dev/null 2>&1; then echo "readable $p"; fi
done
ls / >/dev/null 2>&1 && echo "root listable"
echo end"#
    ));
    assert_eq!(run.stdout(), ["end"]);
    env.assert_contained_and_healthy();
}

fn hostile_run_cannot_see_a_concurrent_runs_work() {
    let env = TestEnv::new();
    let marker = "60.0606";
    let victim = env.script(
        "victim.sh",
        &format!("#!/bin/sh\necho SECRET-4711 > /work/secret\ncp /work/secret /tmp/\necho ready\nsleep {marker}\n"),
    );
    let attacker = env.script(
        "attacker.sh",
        "#!/bin/sh\nfor f in /proc/*/root/work/secret /proc/*/cwd/secret /work/secret /tmp/secret; do\n  \
         cat \"$f\" 2>/dev/null\ndone\ngrep -rs SECRET-4711 /work /tmp /outputs /dev/shm /proc/*/root 2>/dev/null\n\
         echo searched\n",
    );
    let cancel = CancellationToken::new();
    let (victim_tx, mut victim_rx) = mpsc::channel(16);
    let victim_spec = env.spec(&victim, &[]);
    let attacker_spec = env.spec(&attacker, &[]);
    let (victim_outcome, attacker_lines) = env.rt.block_on(async {
        let victim_run = env.sandbox.run(victim_spec, victim_tx, cancel.clone());
        let attack = async {
            assert_eq!(victim_rx.recv().await.map(|l| l.line).as_deref(), Some("ready"));
            // The scan that proves cleanup elsewhere does see a live run's cgroups.
            if nix::unistd::Uid::effective().is_root() {
                assert!(!env.run_cgroups().is_empty(), "the live run has no cgroup");
            }
            let (tx, mut rx) = mpsc::channel(64);
            let outcome = env.sandbox.run(attacker_spec, tx, CancellationToken::new()).await.unwrap();
            assert_eq!(outcome.termination, Termination::Exited(0));
            let mut lines = Vec::new();
            while let Some(line) = rx.recv().await {
                lines.push(line.line);
            }
            cancel.cancel();
            while victim_rx.recv().await.is_some() {}
            lines
        };
        tokio::join!(victim_run, attack)
    });
    assert_eq!(victim_outcome.unwrap().termination, Termination::Cancelled);
    assert_eq!(attacker_lines, ["searched"]);
    assert_eq!(processes_with(&format!("sleep {marker}")), Vec::<u32>::new());
    env.assert_contained_and_healthy();
}

fn hostile_writes_outside_work_outputs_tmp_and_shm_fail() {
    let env = TestEnv::new();
    let run = env.sh(r#"for p in /x /etc/x /usr/x /bin/x /agent/x /dev/x /proc/x /sys/x /lib/x; do
  (echo x > "$p") 2>/dev/null && echo "wrote $p"
done
echo x > /proc/sys/kernel/hostname 2>/dev/null && echo "wrote hostname"
for p in /work/x /outputs/x /tmp/x /dev/shm/x; do
  (echo x > "$p") 2>/dev/null || echo "could not write $p"
done
echo end"#);
    assert_eq!(run.stdout(), ["end"]);
    env.assert_contained_and_healthy();
}

fn hostile_fork_bomb_is_held_by_the_pids_cap() {
    let env = TestEnv::new();
    let marker = "30.0707";
    // Every child sleeps (marked); the parent forks until the kernel says no, then leaves
    // its children behind: the run's end must take them along.
    let code = format!(
        r#"
import os
n = 0
try:
    while n < 10000:
        if os.fork() == 0:
            os.execv('/usr/bin/sleep', ['sleep', '{marker}'])
        n += 1
except OSError as e:
    print('stopped', e.errno, n <= 32, flush=True)
os._exit(0)
"#
    );
    let run = env.python(&code, |limits| {
        limits.max_pids = 32;
        // Only a backstop: the run ends when the parent gives up.
        limits.wall_timeout = Duration::from_secs(120);
    });
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert_eq!(run.stdout(), [format!("stopped {} True", libc::EAGAIN).as_str()]);
    assert_eq!(processes_with(&format!("sleep {marker}")), Vec::<u32>::new());
    env.assert_contained_and_healthy();
}

fn hostile_allocation_past_the_memory_cap_ends_with_memory_limit() {
    let env = TestEnv::new();
    let code = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n";
    let run = env.python(code, |limits| limits.memory_bytes = 64 << 20);
    assert_eq!(run.outcome.termination, Termination::MemoryLimit, "{:?}", run.lines);
    let peak = run.outcome.peak_memory_bytes;
    assert!(peak > 32 << 20 && peak <= 64 << 20, "peak {peak}");
    env.assert_contained_and_healthy();
}

fn hostile_spin_past_the_timeout_is_timed_out_with_cpu_time_accounted() {
    let env = TestEnv::new();
    let run = env.python("while True: pass", |limits| limits.wall_timeout = Duration::from_millis(600));
    assert_eq!(run.outcome.termination, Termination::TimedOut);
    assert!(run.outcome.cpu >= Duration::from_millis(300), "cpu {:?}", run.outcome.cpu);
    assert!(run.outcome.cpu <= run.outcome.wall * 2, "cpu {:?}", run.outcome.cpu);
    env.assert_contained_and_healthy();
}

fn hostile_filling_work_and_tmp_gets_enospc_only() {
    let env = TestEnv::new();
    let before = free_bytes(env.scratch.path());
    let run = env.sh(r#"for d in /work /tmp /outputs /dev/shm; do
  dd if=/dev/zero of=$d/fill bs=64k count=1000 2>&1 | grep -q 'No space left' && echo "$d full"
done"#);
    assert_eq!(run.stdout(), ["/work full", "/tmp full", "/outputs full", "/dev/shm full"]);
    let after = free_bytes(env.scratch.path());
    assert!(before.abs_diff(after) < 16 << 20, "host disk changed by {} bytes", before.abs_diff(after));
    env.assert_contained_and_healthy();
}

fn free_bytes(path: &std::path::Path) -> u64 {
    let stat = nix::sys::statvfs::statvfs(path).unwrap();
    stat.blocks_available() * stat.fragment_size()
}

/// x86_64 system call numbers; each call is made with harmless arguments.
const SYSCALLS: &str = r#"
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def sys(name, nr, *args):
    r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    if r == 0 and name == 'clone_newuser':
        os._exit(0)
    print(name, 'ok' if r >= 0 else os.strerror(ctypes.get_errno()))
sys('mount', 165, 0, 0, 0, 0, 0)
sys('umount2', 166, 0, 0)
sys('pivot_root', 155, 0, 0)
sys('ptrace_attach_pid1', 101, 16, 1, 0, 0)
sys('unshare_user', 272, 0x10000000)
sys('clone_newuser', 56, 0x10000000 | 17, 0, 0, 0, 0)
sys('clone3', 435, 0, 0)
sys('setns', 308, 0, 0)
sys('keyctl', 250, 0, 0, 0, 0, 0)
sys('add_key', 248, 0, 0, 0, 0, 0)
sys('bpf', 321, 0, 0, 0)
sys('perf_event_open', 298, 0, 0, 0, 0, 0)
sys('userfaultfd', 323, 0)
sys('io_uring_setup', 425, 1, 0)
sys('kexec_load', 246, 0, 0, 0, 0)
sys('init_module', 175, 0, 0, 0)
sys('open_by_handle_at', 304, 0, 0, 0)
sys('personality_no_aslr', 135, 0x0040000)
sys('ioctl_tiocsti', 16, 0, 0x5412, 0)
sys('settimeofday', 164, 0, 0)
sys('syslog', 103, 3, 0, 0)
try:
    os.setuid(0); print('setuid ok')
except OSError as e:
    print('setuid', e.strerror)
for proto, name in [(0, 'route'), (9, 'audit'), (12, 'netfilter')]:
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto).close(); print('netlink', name, 'ok')
    except OSError as e:
        print('netlink', name, e.strerror)
print('personality_query', 'ok' if libc.personality(0xffffffff) >= 0 else 'failed')
"#;

fn hostile_privileged_syscalls_fail_with_clear_errors() {
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let env = TestEnv::new();
    let run = env.python(SYSCALLS, |_| {});
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    let eperm = "Operation not permitted";
    let mut expected: Vec<String> =
        ["mount", "umount2", "pivot_root", "ptrace_attach_pid1", "unshare_user", "clone_newuser"]
            .iter()
            .map(|n| format!("{n} {eperm}"))
            .collect();
    expected.push("clone3 Function not implemented".into());
    for name in [
        "setns",
        "keyctl",
        "add_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "kexec_load",
        "init_module",
        "open_by_handle_at",
        "personality_no_aslr",
        "ioctl_tiocsti",
        "settimeofday",
        "syslog",
        "setuid",
    ] {
        expected.push(format!("{name} {eperm}"));
    }
    expected.extend([
        "netlink route ok".into(),
        format!("netlink audit {eperm}"),
        format!("netlink netfilter {eperm}"),
    ]);
    expected.push("personality_query ok".into());
    assert_eq!(run.stdout(), expected);
    // The shell tool fails too, with the error a user would search for.
    let run = env.sh_any("unshare -U true 2>&1; echo $?", |_| {});
    assert!(run.stdout()[0].contains(eperm), "{:?}", run.stdout());
    env.assert_contained_and_healthy();
}

fn hostile_signals_cannot_reach_host_processes_or_pid_1() {
    let env = TestEnv::new();
    let code = format!(
        "import os\nfor pid in ({}, 1):\n    try:\n        os.kill(pid, 9); print(pid, 'killed')\n    except OSError as e:\n        print('failed', e.strerror)\n",
        std::process::id()
    );
    let run = env.python(&code, |_| {});
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert_eq!(run.stdout(), ["failed No such process", "failed Operation not permitted"]);
    // kill -9 -1: everything the agent may signal (bar itself), which is only its own run.
    let marker = "30.0808";
    let run = env.sh_any(&format!("sleep {marker} &\nkill -9 -1\nwait\necho survived"), |_| {});
    assert_eq!(run.outcome.termination, Termination::Exited(0));
    assert_eq!(run.stdout(), ["survived"]);
    assert_eq!(processes_with(&format!("sleep {marker}")), Vec::<u32>::new());
    env.assert_contained_and_healthy();
}

fn hostile_gigabyte_on_stdout_is_cut_at_the_output_limit() {
    let env = TestEnv::new();
    let run = env.sh_any("head -c 1000000000 /dev/zero | tr '\\0' x", |limits| limits.max_output_bytes = 1 << 20);
    // Not `Exited`: the run was cut at the cap, not after the whole gigabyte.
    assert_eq!(run.outcome.termination, Termination::OutputLimit);
    let delivered: usize = run.lines.iter().map(|l| l.line.len()).sum();
    assert!(delivered <= 1 << 20, "{delivered} bytes delivered");
    assert_eq!(processes_with("head -c 1000000000"), Vec::<u32>::new());
    env.assert_contained_and_healthy();
}

fn hostile_sees_a_minimal_dev_and_its_own_cgroup_root() {
    let env = TestEnv::new();
    let run = env.sh("ls /dev | tr '\\n' ' '\necho\ncut -d: -f3 /proc/self/cgroup | sort -u | tr '\\n' ' '");
    assert_eq!(run.stdout()[0].trim(), "fd full null random shm stderr stdin stdout urandom zero");
    assert_eq!(run.stdout()[1].trim(), "/", "the agent sees the host's cgroup paths");
    env.assert_contained_and_healthy();
}
