#!/bin/bash
# Run one command inside a throwaway VM (KVM where the CPU has VMX/SVM, else
# qemu TCG software emulation) whose kernel uses cgroup v2 only
# (unified hierarchy, memory/pids/cpu/... controllers), with the host's root
# filesystem shared read-write over 9p as the guest's root.
#
# usage: run-in-cgroup2-vm.sh [options] [--] COMMAND [ARGS...]
#   --env VAR          pass host variable VAR into the guest (repeatable)
#   --env VAR=VALUE    set VAR=VALUE in the guest (repeatable)
#   --mem MB           guest memory (default 4096, or $VM_MEM)
#   --smp N            guest vCPUs (default 2, or $VM_SMP)
#   --timeout SECS     kill the VM after SECS seconds (exit 124)
#   --cache MODE       9p cache mode: loose (default, fast), mmap (coherent
#                      with concurrent host-side changes, ~2x slower), none
#   --console          stream the guest kernel console to stderr
#   --keep             keep the job directory (<kit dir>/job/XXXX)
#   -q, --quiet        don't print the cgroup.controllers line
#
# The command runs as root, in the same cwd, with stdin=/dev/null; its stdout
# and stderr arrive on this script's stdout and stderr, and this script exits
# with its exit code. 125 = the VM/runner failed (console log is printed),
# 124 = --timeout hit. Guest /tmp, /run, /dev/shm are fresh tmpfs (a cwd
# under /tmp is not visible in the guest).
set -euo pipefail
VMDIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
MEM=${VM_MEM:-4096}
SMP=${VM_SMP:-2}
CACHE=${VM_CACHE:-loose}
MSIZE=${VM_MSIZE:-262144}
TIMEOUT=0 CONSOLE=0 KEEP=0 QUIET=0
envs=()

die() { echo "run-in-cgroup2-vm: $*" >&2; exit 125; }
while [ $# -gt 0 ]; do
    case "$1" in
        --env) [ $# -ge 2 ] || die "--env needs an argument"; envs+=("$2"); shift 2 ;;
        --env=*) envs+=("${1#--env=}"); shift ;;
        --mem) MEM=$2; shift 2 ;;
        --smp) SMP=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --cache) CACHE=$2; shift 2 ;;
        --console) CONSOLE=1; shift ;;
        --keep) KEEP=1; shift ;;
        -q|--quiet) QUIET=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option $1" ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || die "no command given (see --help)"
[ "$(id -u)" = 0 ] || die "must run as root (9p passthrough keeps real uids)"

# Kernel: the Debian linux-image extracted under $VMDIR/kernel by setup.sh.
INITRD=$VMDIR/initramfs.cpio.gz
kver() { local f; for f in "$VMDIR"/kernel/boot/vmlinuz-*; do [ -f "$f" ] && echo "${f##*/vmlinuz-}"; done; }
KVER=$(kver | tail -n1)
if [ -z "$KVER" ] || [ ! -f "$INITRD" ] || [ "$VMDIR/guest/init" -nt "$INITRD" ] \
   || ! command -v qemu-system-x86_64 >/dev/null; then
    "$VMDIR/setup.sh" || die "setup failed"
    KVER=$(kver | tail -n1)
fi
KERNEL=${VM_KERNEL:-$VMDIR/kernel/vmlinux-$KVER}   # ELF, PVH boot
[ -n "${VM_KERNEL:-}" ] || [ -f "$KERNEL" ] || KERNEL=$VMDIR/kernel/boot/vmlinuz-$KVER

mkdir -p "$VMDIR/job"
JOB=$(mktemp -d "$VMDIR/job/XXXXXXXX")
chmod 755 "$JOB"
cleanup() {
    [ -n "${catpids:-}" ] && kill $catpids 2>/dev/null || true
    [ "$KEEP" = 1 ] || rm -rf "$JOB"
}
trap cleanup EXIT

# ---- job script, run by /bin/bash inside the guest ----
cwd=$(pwd -P)
{
    echo '#!/bin/bash'
    printf 'export PATH=%q\n' "$PATH"
    echo 'export HOME=/root USER=root LOGNAME=root'
    for v in LANG LANGUAGE TERM TZ PYENV_ROOT PYENV_VERSION VIRTUAL_ENV $(compgen -v LC_); do
        if [ -n "${!v+x}" ]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
    done
    for e in "${envs[@]}"; do
        if [[ $e == *=* ]]; then name=${e%%=*} val=${e#*=}
        else name=$e; [ -n "${!e+x}" ] || { echo "run-in-cgroup2-vm: warning: \$$e not set, not passed" >&2; continue; }
             val=${!e}; fi
        [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad --env name: $name"
        printf 'export %s=%q\n' "$name" "$val"
    done
    printf 'cd -- %q || { echo "run-in-cgroup2-vm: cwd %s does not exist in the guest" >&2; exit 125; }\n' "$cwd" "$cwd"
    printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$JOB/run.sh"

rows=0 cols=0 out_tty=0 err_tty=0
[ -t 1 ] && out_tty=1
[ -t 2 ] && err_tty=1
if [ $out_tty = 1 ]; then
    exec {ttyfd}>&1   # inside $(...) fd 1 is the capture pipe, so keep a copy
    if sz=$(stty size 2>/dev/null <&$ttyfd); then read -r rows cols <<<"$sz"; fi
    exec {ttyfd}>&-
fi
echo "OUT_TTY=$out_tty ERR_TTY=$err_tty ROWS=${rows:-0} COLS=${cols:-0} QUIET=$QUIET" > "$JOB/vmconf"

# ---- host-side plumbing: guest ttyS1 -> our stdout, ttyS2 -> our stderr ----
# (relayed through FIFOs so our own stdout/stderr file descriptions are used
# as-is: appending logs, pipes, ttys all behave.)
mkfifo "$JOB/out.fifo" "$JOB/err.fifo"
cat "$JOB/out.fifo" & catpids="$!"
cat "$JOB/err.fifo" >&2 & catpids="$catpids $!"
if [ "$CONSOLE" = 1 ]; then
    mkfifo "$JOB/console.fifo"
    tee "$JOB/console.log" < "$JOB/console.fifo" >&2 & catpids="$catpids $!"
    console=(-chardev "file,id=con,path=$JOB/console.fifo" -serial chardev:con)
else
    console=(-serial "file:$JOB/console.log")
fi

append="console=ttyS0 quiet loglevel=0 panic=-1 8250.nr_uarts=4 mitigations=off"
append+=" systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
append+=" vmjob=$JOB vmdir=$VMDIR vmmsize=$MSIZE vmcache=$CACHE ${VM_APPEND:-}"

# KVM only where the CPU really has VMX/SVM. On this workplace /dev/kvm is
# backed by PVM (kvm_pvm), which can only run PVM-enabled guest kernels: a
# stock Debian kernel crawls through instruction emulation and then dies with
# "KVM internal error ... emulation failure" (lock cmpxchg16b). So fall back
# to TCG there. VM_ACCEL=kvm|tcg overrides.
ACCEL=${VM_ACCEL:-}
if [ -z "$ACCEL" ]; then
    if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo && [ ! -d /sys/module/kvm_pvm ]; then
        ACCEL=kvm
    else
        ACCEL=tcg
    fi
fi
case "$ACCEL" in
    kvm) [ -w /dev/kvm ] || die "/dev/kvm not usable"; accel=(-enable-kvm -cpu host) ;;
    tcg) accel=(-accel tcg,thread=multi -cpu max) ;;
    *) die "VM_ACCEL must be kvm or tcg" ;;
esac
echo "ACCEL=$ACCEL" >> "$JOB/vmconf"

qemu=(qemu-system-x86_64
    "${accel[@]}" -smp "$SMP" -m "$MEM"
    -nographic -vga none -monitor none -no-reboot -nic none
    -kernel "$KERNEL" -initrd "$INITRD" -append "$append"
    -virtfs "local,path=/,mount_tag=hostroot,security_model=passthrough,id=hostroot,multidevs=remap"
    "${console[@]}"
    -chardev "file,id=out,path=$JOB/out.fifo" -serial chardev:out
    -chardev "file,id=err,path=$JOB/err.fifo" -serial chardev:err
)
read -ra extra <<<"${VM_QEMU_ARGS:-}"
qemu+=("${extra[@]}")
if [ "$TIMEOUT" != 0 ]; then qemu=(timeout --kill-after=10 "$TIMEOUT" "${qemu[@]}"); fi

# qemu runs in the background so that INT/TERM/HUP sent to this script
# (Ctrl-C, timeout(1), CI cancel) take the VM down instead of orphaning it.
set +e
"${qemu[@]}" </dev/null 2>"$JOB/qemu.log" &
qpid=$!
got_sig=
on_sig() { got_sig=$1; kill -TERM "$qpid" 2>/dev/null; }
trap 'on_sig 130' INT; trap 'on_sig 143' TERM; trap 'on_sig 129' HUP
while :; do
    wait "$qpid"; qrc=$?
    kill -0 "$qpid" 2>/dev/null || break
done
set -e
# Release relays still blocked in open() (qemu died before opening its end):
# an O_RDWR open of a FIFO never blocks and counts as a writer.
for f in "$JOB"/*.fifo; do exec {fd}<>"$f"; exec {fd}>&-; done
wait $catpids 2>/dev/null || true
catpids=

if [ -n "$got_sig" ]; then
    echo "run-in-cgroup2-vm: interrupted, VM stopped" >&2
    exit "$got_sig"
fi
if [ -f "$JOB/rc" ]; then
    rc=$(cat "$JOB/rc")
    [[ $rc =~ ^[0-9]+$ ]] || rc=125
    exit "$rc"
fi
if [ "$TIMEOUT" != 0 ] && { [ $qrc = 124 ] || [ $qrc = 137 ]; }; then
    echo "run-in-cgroup2-vm: timed out after ${TIMEOUT}s" >&2
    exit 124
fi
{
    echo "run-in-cgroup2-vm: guest did not report an exit code (qemu exit $qrc)"
    echo "--- qemu stderr ---"; cat "$JOB/qemu.log" 2>/dev/null
    echo "--- guest console (ttyS0) ---"; cat "$JOB/console.log" 2>/dev/null
} >&2
exit 125
