//! The part of the agent's seccomp program that seccompiler cannot express: answers other
//! than the deny-list's `EPERM` (see `seccomp.rs` for what they are and why). A few
//! hand-assembled instructions, placed right after the architecture check, where they load
//! the syscall number once and either return their answer or fall through to the
//! deny-list. Jumps are written to labels and resolved to BPF's forward offsets at the end.

use seccompiler::{BpfProgram, sock_filter};

/// Socket address families `socket` may create; netlink is narrowed further to
/// `NETLINK_ROUTE` by the deny rules.
const SOCKET_FAMILIES: &[libc::c_int] = &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK];
/// `socketpair` exists for Unix sockets only.
const SOCKETPAIR_FAMILIES: &[libc::c_int] = &[libc::AF_UNIX];
/// x32 system calls are x86_64's numbers with this bit set (`__X32_SYSCALL_BIT`).
#[cfg(target_arch = "x86_64")]
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// seccompiler gives a filter one match action, so the other answers are spliced into the
/// deny program right after its architecture check. No jump of the program crosses that
/// point (the check's only jump lands on it), and the prelude ends by falling through to
/// it, so the rest stays valid as it is.
pub(crate) fn splice(mut program: BpfProgram) -> Result<BpfProgram, String> {
    const ARCH_CHECK: usize = 3;
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
    program.splice(ARCH_CHECK..ARCH_CHECK, prelude()?);
    Ok(program)
}

const LOAD_WORD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JUMP_IF_EQUAL: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
#[cfg(target_arch = "x86_64")]
const JUMP_IF_AT_LEAST: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JUMP: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Where a prelude instruction jumps: the next one, or a label further down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    Next,
    Label(Label),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    SocketFamily,
    SocketpairFamily,
    Enosys,
    Eafnosupport,
    /// The deny program, which starts after the prelude.
    DenyList,
}

/// The prelude's instructions with symbolic jumps, resolved once all are placed.
#[derive(Default)]
struct Prelude {
    insns: Vec<(u16, To, To, u32)>,
    labels: Vec<(Label, usize)>,
}

impl Prelude {
    fn insn(&mut self, code: u16, jt: To, jf: To, k: u32) {
        self.insns.push((code, jt, jf, k));
    }

    fn label(&mut self, label: Label) {
        self.labels.push((label, self.insns.len()));
    }

    /// The instructions with every jump turned into the forward offset BPF wants.
    fn resolve(mut self) -> Result<Vec<sock_filter>, String> {
        self.label(Label::DenyList);
        let at = |label: Label| self.labels.iter().find(|(l, _)| *l == label).map(|(_, index)| *index);
        let offset = |from: usize, to: To| -> Result<u32, String> {
            let target = match to {
                To::Next => from + 1,
                To::Label(label) => at(label).ok_or_else(|| format!("seccomp: label {label:?} is not placed"))?,
            };
            target.checked_sub(from + 1).map(|o| o as u32).ok_or_else(|| "seccomp: a backward jump".to_string())
        };
        let short = |o: u32| u8::try_from(o).map_err(|_| "seccomp: a jump too far for BPF".to_string());
        let mut out = Vec::with_capacity(self.insns.len());
        for (index, &(code, jt, jf, k)) in self.insns.iter().enumerate() {
            out.push(match code {
                // An unconditional jump carries its offset in `k`.
                JUMP => sock_filter { code, jt: 0, jf: 0, k: offset(index, jt)? },
                _ => sock_filter { code, jt: short(offset(index, jt)?)?, jf: short(offset(index, jf)?)?, k },
            });
        }
        Ok(out)
    }
}

/// The answers other than `EPERM`: x32 calls and `clone3` → `ENOSYS`; `socket` and
/// `socketpair` of a family not on their list → `EAFNOSUPPORT`.
fn prelude() -> Result<Vec<sock_filter>, String> {
    use Label::*;
    let nr_offset = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
    // The family is an `int`: the kernel reads the low half of the 64-bit argument only,
    // and so does the filter (high garbage must neither pass nor block a family).
    let low_half = if cfg!(target_endian = "little") { 0 } else { 4 };
    let family_offset = (std::mem::offset_of!(libc::seccomp_data, args) + low_half) as u32;
    let errno = |e: libc::c_int| libc::SECCOMP_RET_ERRNO | e as u32;
    let mut p = Prelude::default();
    p.insn(LOAD_WORD, To::Next, To::Next, nr_offset);
    #[cfg(target_arch = "x86_64")]
    p.insn(JUMP_IF_AT_LEAST, To::Label(Enosys), To::Next, X32_SYSCALL_BIT);
    p.insn(JUMP_IF_EQUAL, To::Label(Enosys), To::Next, libc::SYS_clone3 as u32);
    p.insn(JUMP_IF_EQUAL, To::Label(SocketFamily), To::Next, libc::SYS_socket as u32);
    p.insn(JUMP_IF_EQUAL, To::Label(SocketpairFamily), To::Label(DenyList), libc::SYS_socketpair as u32);
    for (label, families) in [(SocketFamily, SOCKET_FAMILIES), (SocketpairFamily, SOCKETPAIR_FAMILIES)] {
        p.label(label);
        p.insn(LOAD_WORD, To::Next, To::Next, family_offset);
        for family in families {
            p.insn(JUMP_IF_EQUAL, To::Label(DenyList), To::Next, *family as u32);
        }
        p.insn(JUMP, To::Label(Eafnosupport), To::Next, 0);
    }
    p.label(Enosys);
    p.insn(RETURN, To::Next, To::Next, errno(libc::ENOSYS));
    p.label(Eafnosupport);
    p.insn(RETURN, To::Next, To::Next, errno(libc::EAFNOSUPPORT));
    p.resolve()
}
