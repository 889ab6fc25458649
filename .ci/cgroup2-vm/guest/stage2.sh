#!/bin/bash
# PID 1 inside the VM after switch_root onto the 9p-shared host root.
# Runs $JOB/run.sh with stdout -> ttyS1, stderr -> ttyS2 (both wired to the
# host script's stdout/stderr), writes the exit code to $JOB/rc, powers off.
JOB=$1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
VMDIR=${0%/guest/stage2.sh}   # invoked by absolute path from /init

poweroff() {
    sync
    echo o > /proc/sysrq-trigger
    sleep 10
    echo b > /proc/sysrq-trigger   # -no-reboot turns a reboot into qemu exit
}
trap poweroff EXIT

OUT_TTY=0 ERR_TTY=0 ROWS=0 COLS=0 QUIET=0 ACCEL=?
. "$JOB/vmconf"

echo cgroup2-vm > /proc/sys/kernel/hostname
echo "$VMDIR/guest/modprobe" > /proc/sys/kernel/modprobe
ulimit -Hn 524288 2>/dev/null; ulimit -Sn 1024 2>/dev/null   # what systemd gives services

exec 3<>/dev/ttyS1 4<>/dev/ttyS2
# raw: no \n -> \r\n translation, no echo, no flow control.
stty raw -echo <&3
stty raw -echo <&4
if [ "$ROWS" -gt 0 ] && [ "$COLS" -gt 0 ]; then
    stty rows "$ROWS" cols "$COLS" <&3
    stty rows "$ROWS" cols "$COLS" <&4
fi

read -r ctl < /sys/fs/cgroup/cgroup.controllers
[ "$QUIET" = 1 ] || echo "[vm] $(uname -r) ($ACCEL) cgroup.controllers: $ctl" >&4
for c in memory pids cpu; do
    case " $ctl " in
        *" $c "*) ;;
        *) echo "[vm] cgroup v2 controller '$c' missing" >&4
           echo 126 > "$JOB/rc"; exit ;;
    esac
done

# Give the command a tty only where the host side has one, so isatty()
# behaves as it would on the host; otherwise relay through FIFOs.
cats=()
if [ "$OUT_TTY" = 1 ]; then out=/dev/ttyS1; else
    mkfifo /run/vm-stdout; cat /run/vm-stdout >&3 & cats+=($!); out=/run/vm-stdout; fi
if [ "$ERR_TTY" = 1 ]; then err=/dev/ttyS2; else
    mkfifo /run/vm-stderr; cat /run/vm-stderr >&4 & cats+=($!); err=/run/vm-stderr; fi

/bin/bash "$JOB/run.sh" </dev/null >"$out" 2>"$err" 3>&- 4>&-
rc=$?

# Kill whatever the command left behind (it may hold the FIFOs open), let
# the relays drain, then record the exit code.
keep=" 1 $$ ${cats[*]} "
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    case "$keep" in *" $pid "*) continue ;; esac
    kill -KILL "$pid" 2>/dev/null   # kernel threads ignore this
done
[ ${#cats[@]} -gt 0 ] && wait "${cats[@]}"
echo "$rc" > "$JOB/rc"
exit
