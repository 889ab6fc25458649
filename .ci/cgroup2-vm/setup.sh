#!/bin/bash
# One-time (idempotent) setup for run-in-cgroup2-vm.sh:
#   - installs qemu-system-x86 + busybox-static from Debian,
#   - downloads a Debian kernel package and extracts it under <kit dir>/kernel
#     (never installed into /boot, host boot setup untouched),
#   - builds <kit dir>/initramfs.cpio.gz (busybox + 9p/virtio modules + init).
# Re-run with FORCE=1 to rebuild the initramfs.
# KVER=<abi>-amd64 picks a kernel; default: the one already extracted, else
# the one Debian's linux-image-amd64 meta-package currently depends on.
set -euo pipefail
VMDIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
KDIR=$VMDIR/kernel
if [ -z "${KVER:-}" ]; then
    for f in "$KDIR"/boot/vmlinuz-*; do [ -f "$f" ] && KVER=${f##*/vmlinuz-}; done
fi
if [ -z "${KVER:-}" ]; then
    resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '$1=="Depends:" && $2 ~ /^linux-image-/ {sub("linux-image-","",$2); print $2; exit}'; }
    KVER=$(resolve || true)
    [ -n "$KVER" ] || { apt-get update -qq; KVER=$(resolve || true); }
    [ -n "$KVER" ] || { echo "[setup] cannot resolve linux-image-amd64's kernel version" >&2; exit 1; }
fi
MODDIR=$KDIR/lib/modules/$KVER
INITRD=$VMDIR/initramfs.cpio.gz

need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || need_pkgs+=(busybox-static)
command -v depmod >/dev/null || need_pkgs+=(kmod)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "[setup] installing: ${need_pkgs[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

if [ ! -f "$KDIR/boot/vmlinuz-$KVER" ] || [ ! -d "$MODDIR" ]; then
    echo "[setup] fetching linux-image-$KVER" >&2
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get download "linux-image-$KVER" >&2) || {
        apt-get update -qq && (cd "$tmp" && apt-get download "linux-image-$KVER" >&2); }
    rm -rf "$KDIR"
    dpkg -x "$tmp"/linux-image-"$KVER"_*.deb "$KDIR"
    rm -rf "$tmp"
    FORCE=1
fi
[ -f "$MODDIR/modules.dep" ] || depmod -b "$KDIR" "$KVER"

# Uncompressed ELF vmlinux: qemu boots it via the PVH entry point, skipping
# SeaBIOS's bzImage path and the in-guest XZ decompression (~4 s under TCG).
if [ ! -s "$KDIR/vmlinux-$KVER" ]; then
    bz=$KDIR/boot/vmlinuz-$KVER
    off=$(LC_ALL=C grep -aboP '\xfd7zXZ\x00' "$bz" | head -n1 | cut -d: -f1 || true)
    if [ -n "$off" ] && xz -dc --single-stream < <(tail -c +$((off + 1)) "$bz") > "$KDIR/vmlinux.tmp" 2>/dev/null \
       && [ "$(head -c4 "$KDIR/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
        mv "$KDIR/vmlinux.tmp" "$KDIR/vmlinux-$KVER"
    else
        rm -f "$KDIR/vmlinux.tmp"
        echo "[setup] could not extract vmlinux; will boot the bzImage" >&2
    fi
fi

if [ -f "$INITRD" ] && [ "${FORCE:-0}" != 1 ] && [ "$INITRD" -nt "$VMDIR/guest/init" ]; then
    exit 0
fi

echo "[setup] building $INITRD" >&2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$root/bin/busybox"
for app in $("$root/bin/busybox" --list); do
    [ "$app" = busybox ] || ln -sf busybox "$root/bin/$app"
done
# Modules (plus their dependencies, in load order) needed to mount the 9p root.
: > "$root/modules.list"
for m in virtio_pci 9pnet_virtio 9p; do
    modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" "$root/lib/modules/"
    basename "$ko" >> "$root/modules.list"
done
cp "$VMDIR/guest/init" "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$INITRD.tmp"
mv "$INITRD.tmp" "$INITRD"
echo "[setup] modules: $(tr '\n' ' ' < "$root/modules.list")" >&2
