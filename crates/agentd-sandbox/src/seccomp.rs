//! The seccomp filter of the agent: a deny-list of the system calls that reach kernel
//! surface an agent never needs (mounts, namespaces, tracing, BPF, keyrings, modules,
//! clocks, io_uring …), and allow-lists where an argument selects the surface: the socket
//! address families.
//!
//! Denied calls fail with `EPERM`, so agents get a clear error rather than a mysterious
//! death. Three answers differ, each the one a kernel without the feature gives:
//! - `socket` and `socketpair` of a family not allowed (`AF_VSOCK`, which reaches the
//!   host's vsock port space, `AF_PACKET`, `AF_ALG`, `AF_BLUETOOTH`, `AF_KEY` …) fail with
//!   `EAFNOSUPPORT`, which programs that probe for a family take for "not built in" and
//!   carry on; `EPERM` would read as a permission to ask for. Allowed: `AF_UNIX`, `AF_INET`,
//!   `AF_INET6` and `AF_NETLINK` (glibc's `getaddrinfo` with `AI_ADDRCONFIG`, Node's
//!   default `dns.lookup`, lists the interfaces over `NETLINK_ROUTE`; in the run's own
//!   network namespace it sees only the loopback), the latter only with protocol
//!   `NETLINK_ROUTE` (other protocols: `EPERM`); `socketpair` only for `AF_UNIX`, the one
//!   family that has it.
//! - `clone3` fails with `ENOSYS`, because its flags live in memory the filter cannot
//!   inspect; libc then falls back to `clone`, whose flags the filter does check.
//! - On x86_64, every x32 system call (`nr` with bit 30 set) fails with `ENOSYS`, as on
//!   kernels built without x32: the deny-list names the x86_64 numbers only.
//!
//! It is one BPF program, not one per answer: every filter installed costs a JIT compile
//! at each run's start (about 0.15 ms here) and a pass on every system call. seccompiler
//! builds the deny-list (one match action); the other answers are a short prelude spliced
//! in after its architecture check, where the syscall number is loaded once. The prelude
//! costs every system call three or four more instructions.
//!
//! The BPF is compiled once in `Sandbox::new` and handed to the init as plain words; the
//! agent process installs it last, after `no_new_privs`, right before `execve`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    sock_filter,
};

use crate::seccomp_prelude;

/// A compiled filter as words (`code | jt << 16 | jf << 24 | k << 32`), ready to ship.
pub(crate) type Program = Vec<u64>;

/// Denied whatever their arguments.
const DENIED: &[libc::c_long] = &[
    // Filesystem views: mounts and pivots would undo the sandbox's root.
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_mount_setattr,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fsconfig,
    libc::SYS_fspick,
    libc::SYS_chroot,
    // Namespaces: entering or creating one (a new user namespace grants capabilities).
    libc::SYS_setns,
    libc::SYS_unshare,
    // Other processes' memory and tracing.
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    libc::SYS_pidfd_getfd,
    // Large, often-exploited kernel surfaces no agent needs.
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_fanotify_init,
    // File handles bypass path-based checks.
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    // The machine itself.
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_quotactl_fd,
    libc::SYS_lookup_dcookie,
    libc::SYS_vhangup,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_nfsservctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ustat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_sysfs,
];

/// Namespace flags `clone` must not carry.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

/// `personality` values that only query or keep the default.
const PER_LINUX: u64 = 0;
const PERSONALITY_QUERY: u64 = 0xffff_ffff;
const NETLINK_ROUTE: u64 = 0;

/// Compiles the agent's filter for this machine: the `EPERM` deny-list with the prelude of
/// the other answers spliced in (see the module docs).
pub(crate) fn compile() -> Result<Vec<Program>, String> {
    let arch = std::env::consts::ARCH.try_into().map_err(|e| format!("seccomp: unsupported architecture: {e:?}"))?;
    let deny = SeccompFilter::new(deny_rules()?, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
        .map_err(|e| format!("seccomp: {e}"))?;
    let deny = BpfProgram::try_from(deny).map_err(|e| format!("seccomp: {e}"))?;
    let program = seccomp_prelude::splice(deny)?;
    Ok(vec![program.iter().map(encode).collect()])
}

fn deny_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|nr| (*nr, Vec::new())).collect();
    let cond = |arg, len, op, value| SeccompCondition::new(arg, len, op, value).map_err(|e| e.to_string());
    let rule = |conditions: Vec<SeccompCondition>| SeccompRule::new(conditions).map_err(|e| e.to_string());
    use SeccompCmpArgLen::{Dword, Qword};
    use SeccompCmpOp::{Eq, MaskedEq, Ne};

    // clone(flags, …): any namespace flag. One rule per flag; rules of a syscall are OR-ed.
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|flag| {
            let flag = *flag as u64;
            rule(vec![cond(0, Qword, MaskedEq(flag), flag)?])
        })
        .collect::<Result<_, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    // ioctl(fd, TIOCSTI | TIOCLINUX): typing into a terminal. `cmd` is an int in the kernel,
    // so only the low 32 bits are compared (high garbage must not slip past).
    rules.insert(
        libc::SYS_ioctl,
        vec![rule(vec![cond(1, Dword, Eq, libc::TIOCSTI)?])?, rule(vec![cond(1, Dword, Eq, libc::TIOCLINUX)?])?],
    );
    // personality(x): anything but the default or a query (e.g. ADDR_NO_RANDOMIZE).
    rules.insert(
        libc::SYS_personality,
        vec![rule(vec![cond(0, Dword, Ne, PER_LINUX)?, cond(0, Dword, Ne, PERSONALITY_QUERY)?])?],
    );
    // socket(AF_NETLINK, _, proto): only NETLINK_ROUTE (getifaddrs) stays; the other protocols
    // (netfilter, audit, uevents, crypto …) are kernel surface an agent has no use for.
    rules.insert(
        libc::SYS_socket,
        vec![rule(vec![cond(0, Dword, Eq, libc::AF_NETLINK as u64)?, cond(2, Dword, Ne, NETLINK_ROUTE)?])?],
    );
    Ok(rules)
}

fn encode(insn: &sock_filter) -> u64 {
    u64::from(insn.code) | u64::from(insn.jt) << 16 | u64::from(insn.jf) << 24 | u64::from(insn.k) << 32
}

fn decode(word: u64) -> libc::sock_filter {
    libc::sock_filter { code: word as u16, jt: (word >> 16) as u8, jf: (word >> 24) as u8, k: (word >> 32) as u32 }
}

/// Installs the filters in the calling thread (the agent, single-threaded, just before
/// `execve`). Needs `no_new_privs`, which `privileges::drop_to` has set.
pub(crate) fn install(programs: &[Program]) -> std::io::Result<()> {
    for program in programs {
        let insns: Vec<libc::sock_filter> = program.iter().copied().map(decode).collect();
        let len = u16::try_from(insns.len()).map_err(|_| std::io::Error::other("seccomp program too long"))?;
        let fprog = libc::sock_fprog { len, filter: insns.as_ptr().cast_mut() };
        // SAFETY: fprog points at `insns`, which outlives the call; the kernel copies it.
        let rc = unsafe {
            libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const libc::sock_fprog)
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_and_survive_the_word_encoding() {
        let programs = compile().unwrap();
        assert_eq!(programs.len(), 1);
        assert!(programs[0].len() > DENIED.len(), "{} instructions", programs[0].len());
        let insn = sock_filter { code: 0x15, jt: 3, jf: 7, k: 0xdead_beef };
        let back = decode(encode(&insn));
        assert_eq!((back.code, back.jt, back.jf, back.k), (0x15, 3, 7, 0xdead_beef));
    }

    /// What the compiled program answers for one call, run by a small classic-BPF
    /// interpreter (the instructions seccompiler and the prelude use).
    fn answer(nr: libc::c_long, args: [u64; 6]) -> u32 {
        let program: Vec<libc::sock_filter> = compile().unwrap()[0].iter().copied().map(decode).collect();
        let arch = seccompiler::TargetArch::try_from(std::env::consts::ARCH).unwrap();
        let mut data = vec![0u8; std::mem::size_of::<libc::seccomp_data>()];
        data[0..4].copy_from_slice(&(nr as u32).to_ne_bytes());
        let audit_arch: u32 = match arch {
            seccompiler::TargetArch::x86_64 => 0xc000_003e,
            seccompiler::TargetArch::aarch64 => 0xc000_00b7,
            seccompiler::TargetArch::riscv64 => 0xc000_00f3,
        };
        data[4..8].copy_from_slice(&audit_arch.to_ne_bytes());
        for (i, arg) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let insn = program[pc];
            let k = insn.k;
            let jump = |taken: bool| pc + 1 + usize::from(if taken { insn.jt } else { insn.jf });
            pc = match insn.code as u32 {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let at = k as usize;
                    acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
                    pc + 1
                }
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => {
                    acc &= k;
                    pc + 1
                }
                c if c == libc::BPF_JMP | libc::BPF_JA => pc + 1 + k as usize,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => jump(acc == k),
                c if c == libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K => jump(acc > k),
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => jump(acc >= k),
                c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => jump(acc & k != 0),
                c if c == libc::BPF_RET | libc::BPF_K => return k,
                other => panic!("instruction {other:#x} at {pc} is not interpreted"),
            };
        }
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const fn errno(e: libc::c_int) -> u32 {
        libc::SECCOMP_RET_ERRNO | e as u32
    }
    fn family(f: libc::c_int) -> [u64; 6] {
        [f as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0]
    }

    #[test]
    fn socket_families_off_the_allow_list_are_answered_eafnosupport() {
        for f in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
            assert_eq!(answer(libc::SYS_socket, family(f)), ALLOW, "family {f}");
        }
        for f in [libc::AF_VSOCK, libc::AF_PACKET, libc::AF_ALG, libc::AF_BLUETOOTH, libc::AF_KEY, 0, 255, -1] {
            assert_eq!(answer(libc::SYS_socket, family(f)), errno(libc::EAFNOSUPPORT), "family {f}");
        }
        // The kernel reads an int: the high half of the argument changes nothing.
        let high = 1u64 << 32;
        assert_eq!(answer(libc::SYS_socket, [high | libc::AF_VSOCK as u64, 1, 0, 0, 0, 0]), errno(libc::EAFNOSUPPORT));
        assert_eq!(answer(libc::SYS_socket, [high | libc::AF_UNIX as u64, 1, 0, 0, 0, 0]), ALLOW);
    }

    #[test]
    fn netlink_opens_for_netlink_route_only() {
        let netlink = |protocol: u64| [libc::AF_NETLINK as u64, libc::SOCK_RAW as u64, protocol, 0, 0, 0];
        assert_eq!(answer(libc::SYS_socket, netlink(0)), ALLOW);
        assert_eq!(answer(libc::SYS_socket, netlink(9)), errno(libc::EPERM));
    }

    #[test]
    fn socketpair_is_for_unix_sockets_only() {
        assert_eq!(answer(libc::SYS_socketpair, family(libc::AF_UNIX)), ALLOW);
        for f in [libc::AF_INET, libc::AF_NETLINK, libc::AF_VSOCK] {
            assert_eq!(answer(libc::SYS_socketpair, family(f)), errno(libc::EAFNOSUPPORT), "family {f}");
        }
    }

    #[test]
    fn the_deny_list_and_enosys_answers_are_unchanged_by_the_prelude() {
        assert_eq!(answer(libc::SYS_getpid, [0; 6]), ALLOW);
        assert_eq!(answer(libc::SYS_mount, [0; 6]), errno(libc::EPERM));
        assert_eq!(answer(libc::SYS_clone3, [0; 6]), errno(libc::ENOSYS));
        let newuser = libc::CLONE_NEWUSER as u64;
        assert_eq!(answer(libc::SYS_clone, [newuser, 0, 0, 0, 0, 0]), errno(libc::EPERM));
        assert_eq!(answer(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), ALLOW);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            answer(libc::c_long::from(seccomp_prelude::X32_SYSCALL_BIT) | libc::SYS_getpid, [0; 6]),
            errno(libc::ENOSYS)
        );
    }
}
