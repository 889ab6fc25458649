//! The seccomp filter of the agent: a deny-list of the system calls that reach kernel
//! surface an agent never needs (mounts, namespaces, tracing, BPF, keyrings, modules,
//! clocks, io_uring …). Denied calls fail with `EPERM`, so agents get a clear error rather
//! than a mysterious death; `clone3` fails with `ENOSYS` instead, because its flags live
//! in memory the filter cannot inspect, and libc then falls back to `clone`, whose flags
//! the filter does check.
//!
//! The BPF is compiled once in `Sandbox::new` and handed to the init as plain words; the
//! agent process installs it last, after `no_new_privs`, right before `execve`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    sock_filter,
};

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

/// Compiles the agent's filter for this machine: the `EPERM` deny-list, with `clone3`
/// answered `ENOSYS`. One program, not one per answer: every filter installed costs a JIT
/// compile at each run's start (about 0.15 ms here) and a pass on every system call.
pub(crate) fn compile() -> Result<Vec<Program>, String> {
    let arch = std::env::consts::ARCH.try_into().map_err(|e| format!("seccomp: unsupported architecture: {e:?}"))?;
    let deny = SeccompFilter::new(deny_rules()?, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
        .map_err(|e| format!("seccomp: {e}"))?;
    let deny = BpfProgram::try_from(deny).map_err(|e| format!("seccomp: {e}"))?;
    let program = with_clone3_enosys(deny)?;
    Ok(vec![program.iter().map(encode).collect()])
}

/// seccompiler gives a filter one match action, so the `clone3` answer is spliced into the
/// deny program right after its architecture check: load the syscall number, and return
/// `ENOSYS` for `clone3`. No jump of the program crosses that point (the check's only jump
/// lands on it), so the rest stays valid as it is.
fn with_clone3_enosys(mut program: BpfProgram) -> Result<BpfProgram, String> {
    const ARCH_CHECK: usize = 3;
    const LOAD_WORD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JUMP_IF_EQUAL: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let arch_offset = std::mem::offset_of!(libc::seccomp_data, arch) as u32;
    let expected = matches!(
        program.get(..ARCH_CHECK),
        Some([load, check, kill]) if (load.code, load.k) == (LOAD_WORD, arch_offset)
            && (check.code, check.jt, check.jf) == (JUMP_IF_EQUAL, 1, 0)
            && kill.code == RETURN
    );
    if !expected {
        return Err("seccomp: the compiled program does not start with the expected architecture check".into());
    }
    let insn = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    let clone3 = [
        insn(LOAD_WORD, 0, 0, std::mem::offset_of!(libc::seccomp_data, nr) as u32),
        insn(JUMP_IF_EQUAL, 0, 1, libc::SYS_clone3 as u32),
        insn(RETURN, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ];
    program.splice(ARCH_CHECK..ARCH_CHECK, clone3);
    Ok(program)
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
    // socket(AF_NETLINK, _, proto): only NETLINK_ROUTE (getifaddrs) stays; the other families
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
}
