//! The sandbox's filesystem: a fresh tmpfs root holding read-only binds of the host's
//! runtime directories, a minimal `/etc`, the bundle at `/agent` and the extra mounts,
//! size-capped tmpfs `/work` and `/tmp`, a tiny `/dev` and a fresh `/proc`; then
//! `pivot_root` and a read-only root.
//!
//! Two phases, because the sandbox's root is nobody on the host: `RootPlan::open` runs in
//! the init right after it unshares, while it still has the supervisor's uid, and opens
//! every source as an `O_PATH` fd (so host directories the sandbox uid could not traverse
//! can still be mounted). `RootPlan::build` runs in PID 1 inside the new namespaces and
//! mounts those fds through `/proc/self/fd/N`.
//!
//! The agent reads its mount table (`/proc/self/mountinfo`), whose `root` field of a bind
//! is the source's path within its filesystem: a bind of the bundle would tell it the
//! worker's data dir and the bundle's digest. So the bundle and the extra mount
//! directories are never bound where that can be helped:
//! - a small directory (the usual bundle, the SDK's) is copied into the root tmpfs
//!   (`copied_tree.rs`), which leaves no mount at all;
//! - a bigger one is a read-only overlay, with the source's fd as the top layer and the run
//!   dir's empty `empty` subdirectory below it (overlayfs wants two layers when none is
//!   writable): an overlay's root is `/` and its options name only `/proc/self/fd/N`.
//!   Nothing is copied, so a 50 MB bundle costs what a 300 KB one does; measured here, an
//!   overlay's mount and teardown cost 0.1 ms (idle) to 0.25 ms (loaded) more than a
//!   bind's, per directory and run (mount 45 µs instead of 16, unmount 100 µs instead of
//!   36: its own RCU grace period). End to end (`mount_sources_overhead`, on this host
//!   while other builds ran, where a run with an empty bundle took 13.7 ms p50): the usual
//!   bundle and two SDK directories, copied, +1.2 ms; three overlaid directories +1.5 ms,
//!   with about ±1 ms of noise;
//! - where overlayfs is not available to a user namespace (`Sandbox::new` probes it), the
//!   bigger directories are bound as they are and `missing_mechanisms` says that their
//!   host paths show.
//!
//! An extra mount of a regular file is copied too (at most `MAX_COPIED_FILE_BYTES` over
//! all of them, checked with the spec). The host's runtime directories are bound: their
//! paths (`/usr`, `/etc/ssl/certs` …) tell nothing.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::sys::statvfs::{FsFlags, fstatvfs};
use nix::unistd::{chdir, pivot_root};

use crate::copied_tree::CopiedTree;
use crate::init_control::InitConfig;
use crate::spec::{BUNDLE_MOUNT, OUTPUTS_MOUNT};
use crate::step::{Stage, StepError};

/// Host runtime directories bound read-only when they exist (symlinks are recreated).
pub(crate) const RUNTIME_DIRS: &[&str] = &["/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"];
/// The only host `/etc` entries runtimes need; never `/etc/shadow` or `/etc/passwd`.
const ETC_ENTRIES: &[&str] =
    &["/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime"];
/// Device nodes bound from the host (read-write, they are harmless).
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];
/// Name of the subdirectory of the run dir the new root is mounted on.
pub(crate) const ROOT_MOUNTPOINT: &str = "root";
/// Name of the empty subdirectory of the run dir that is every overlay's second layer. The
/// supervisor makes it (mode 0555) and nothing ever writes to it.
pub(crate) const EMPTY_LAYER: &str = "empty";
/// Most bytes of regular files (all extra mounts of files together) copied into a run.
pub(crate) const MAX_COPIED_FILE_BYTES: u64 = 1 << 20;
/// The root tmpfs's room for its own files (mountpoints, `/etc`), copies come on top.
const ROOT_BYTES: u64 = 4 << 20;

/// One piece of the new root, in mount order.
enum Entry {
    /// Read-only bind of a host directory or file, opened before unshare.
    ReadOnly { source: OwnedFd, target: String },
    /// A host directory served through a read-only overlay, which hides its host path.
    Overlay { source: OwnedFd, target: String },
    /// A small host directory, copied into the root.
    Copied { tree: CopiedTree, target: String },
    /// Bind of a host device node.
    Device { source: OwnedFd, target: String },
    /// A symlink, e.g. `/bin -> usr/bin` on merged-/usr hosts.
    Symlink { target: String, points_to: PathBuf },
    /// A file written by the sandbox (`/etc/passwd`, a copied extra mount …).
    File { target: String, content: Vec<u8>, mode: u32 },
    /// A size-capped tmpfs.
    Tmpfs { target: String, options: String },
}

/// Everything `build` mounts, with sources already opened.
pub(crate) struct RootPlan {
    entries: Vec<Entry>,
    /// The overlays' empty second layer, when the plan has overlays.
    empty_layer: Option<OwnedFd>,
    /// Bytes of file content copied into the root tmpfs, beyond its own few files.
    copied_bytes: u64,
}

impl RootPlan {
    /// Opens all bind sources. Runs in the init after `unshare`, before the uid change.
    pub(crate) fn open(config: &InitConfig) -> Result<RootPlan, StepError> {
        let mut entries = Vec::new();
        for dir in RUNTIME_DIRS.iter().chain(ETC_ENTRIES) {
            if let Some(entry) = host_entry(Path::new(dir), dir)? {
                entries.push(entry);
            }
        }
        for device in DEVICES {
            let source = open_path(Path::new(device))?;
            entries.push(Entry::Device { source, target: (*device).to_string() });
        }
        for (name, fd) in [("fd", ""), ("stdin", "/0"), ("stdout", "/1"), ("stderr", "/2")] {
            entries.push(Entry::Symlink {
                target: format!("/dev/{name}"),
                points_to: PathBuf::from(format!("/proc/self/fd{fd}")),
            });
        }
        entries.extend(etc_files(config));
        let hide = config.hide_mount_sources;
        entries.push(private_source(&config.bundle_dir, BUNDLE_MOUNT, hide)?);
        for (host, inside) in &config.extra_ro_mounts {
            entries.push(private_source(host, inside, hide)?);
        }
        let empty_layer = match entries.iter().any(|e| matches!(e, Entry::Overlay { .. })) {
            true => Some(open_path(&config.run_dir.join(EMPTY_LAYER))?),
            false => None,
        };
        let copied_bytes = entries
            .iter()
            .map(|entry| match entry {
                Entry::Copied { tree, .. } => tree.bytes(),
                Entry::File { content, .. } => content.len() as u64,
                _ => 0,
            })
            .sum();
        entries.push(Entry::Tmpfs {
            target: "/work".into(),
            options: tmpfs_options(config.work_bytes, 0o755, config.agent_uid, config.agent_gid),
        });
        entries.push(Entry::Tmpfs { target: "/tmp".into(), options: tmpfs_options(config.tmp_bytes, 0o1777, 0, 0) });
        entries.push(Entry::Tmpfs {
            target: OUTPUTS_MOUNT.into(),
            options: tmpfs_options(config.outputs_bytes, 0o755, config.agent_uid, config.agent_gid),
        });
        // POSIX shared memory (`shm_open`, Python's multiprocessing): shares /tmp's cap.
        entries
            .push(Entry::Tmpfs { target: "/dev/shm".into(), options: tmpfs_options(config.tmp_bytes, 0o1777, 0, 0) });
        Ok(RootPlan { entries, empty_layer, copied_bytes })
    }

    /// Builds the new root on `<run dir>/root` and pivots into it. Runs in PID 1 with the
    /// run dir as its cwd; afterwards cwd is the new `/`, which is read-only.
    pub(crate) fn build(self) -> Result<(), StepError> {
        let none: Option<&str> = None;
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).stage(|| "making / private".into())?;
        let root_size = ROOT_BYTES + self.copied_bytes;
        mount(
            Some("tmpfs"),
            ROOT_MOUNTPOINT,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("size={root_size},nr_inodes=4096,mode=0755").as_str()),
        )
        .stage(|| "mounting the root tmpfs".into())?;
        chdir(ROOT_MOUNTPOINT).stage(|| "entering the new root".into())?;
        for entry in self.entries {
            entry.apply(self.empty_layer.as_ref())?;
        }
        make_dir(Path::new("proc"))?;
        mount(
            Some("proc"),
            "proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            // Processes of other uids (PID 1, which shows the host path of the init
            // program) are invisible to the agent.
            Some("hidepid=2"),
        )
        .stage(|| "mounting /proc".into())?;
        pivot_root(".", ".").stage(|| "pivot_root".into())?;
        umount2(".", MntFlags::MNT_DETACH).stage(|| "detaching the host root".into())?;
        chdir("/").stage(|| "entering /".into())?;
        mount(
            none,
            "/",
            none,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            none,
        )
        .stage(|| "making / read-only".into())
    }
}

impl Entry {
    fn apply(self, empty_layer: Option<&OwnedFd>) -> Result<(), StepError> {
        match self {
            Entry::ReadOnly { source, target } => {
                bind(&source, &target)?;
                remount_read_only(&source, &target)
            }
            Entry::Overlay { source, target } => {
                let at = relative(&target);
                make_dir(&at)?;
                let empty = empty_layer.ok_or_else(|| StepError {
                    stage: format!("mounting {target}"),
                    message: "no empty layer was opened".into(),
                })?;
                mount_overlay(&source, empty, &at).stage(|| format!("mounting the overlay of {target}"))
            }
            Entry::Copied { tree, target } => tree.write(&relative(&target), &target),
            Entry::Device { source, target } => bind(&source, &target),
            Entry::Symlink { target, points_to } => {
                let at = relative(&target);
                make_parent(&at)?;
                symlink(&points_to, &at).stage(|| format!("creating symlink {target}"))
            }
            Entry::File { target, content, mode } => {
                let at = relative(&target);
                make_parent(&at)?;
                fs::write(&at, content).stage(|| format!("writing {target}"))?;
                fs::set_permissions(&at, fs::Permissions::from_mode(mode))
                    .stage(|| format!("setting the mode of {target}"))
            }
            Entry::Tmpfs { target, options } => {
                let at = relative(&target);
                make_dir(&at)?;
                mount(Some("tmpfs"), &at, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(options.as_str()))
                    .stage(|| format!("mounting tmpfs on {target}"))
            }
        }
    }
}

/// A host runtime dir or `/etc` entry: a symlink to recreate or a source to bind.
fn host_entry(host: &Path, target: &str) -> Result<Option<Entry>, StepError> {
    let Ok(meta) = fs::symlink_metadata(host) else {
        return Ok(None);
    };
    if meta.file_type().is_symlink() {
        let points_to = fs::read_link(host).stage(|| format!("reading link {}", host.display()))?;
        return Ok(Some(Entry::Symlink { target: target.to_string(), points_to }));
    }
    Ok(Some(Entry::ReadOnly { source: open_path(host)?, target: target.to_string() }))
}

/// The sandbox's own `/etc` files: the agent and root users, localhost, files-only NSS.
fn etc_files(config: &InitConfig) -> Vec<Entry> {
    let (uid, gid) = (config.agent_uid, config.agent_gid);
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/sh\n");
    let mut group = String::from("root:x:0:\n");
    if uid != 0 {
        passwd.push_str(&format!("agent:x:{uid}:{gid}:agent:/work:/bin/sh\n"));
        group.push_str(&format!("agent:x:{gid}:\n"));
    }
    passwd.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    group.push_str("nogroup:x:65534:\n");
    [
        ("/etc/passwd", passwd),
        ("/etc/group", group),
        ("/etc/hosts", "127.0.0.1 localhost agentd\n::1 localhost\n".into()),
        ("/etc/hostname", "agentd\n".into()),
        ("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n".into()),
    ]
    .into_iter()
    .map(|(target, content)| Entry::File { target: target.into(), content: content.into_bytes(), mode: 0o644 })
    .collect()
}

/// The bundle or an extra mount: a small directory copied in (`copied_tree.rs`), a larger
/// one served through an overlay (or bound, when `hide` is off), or a regular file copied
/// in. Opened and read with the supervisor's uid.
fn private_source(host: &Path, target: &str, hide: bool) -> Result<Entry, StepError> {
    let source = open_path(host)?;
    let stat = fstat(&source).stage(|| format!("inspecting {}", host.display()))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    let target = target.to_string();
    match kind {
        SFlag::S_IFDIR => match CopiedTree::read_small(&source, host)? {
            Some(tree) => Ok(Entry::Copied { tree, target }),
            None if hide => Ok(Entry::Overlay { source, target }),
            None => Ok(Entry::ReadOnly { source, target }),
        },
        SFlag::S_IFREG => {
            let content = read_capped(&source, host)?;
            // Read-only like a bind; execute bits are kept so a copied tool still runs.
            Ok(Entry::File { target, content, mode: stat.st_mode & 0o555 })
        }
        _ => Err(StepError {
            stage: format!("opening {}", host.display()),
            message: "neither a directory nor a regular file".into(),
        }),
    }
}

/// A regular file's content, refused beyond `MAX_COPIED_FILE_BYTES`.
fn read_capped(source: &OwnedFd, host: &Path) -> Result<Vec<u8>, StepError> {
    let reading = || format!("reading {}", host.display());
    // Through the fd: the very file that was inspected.
    let file = fs::File::open(format!("/proc/self/fd/{}", source.as_raw_fd())).stage(reading)?;
    let mut content = Vec::new();
    file.take(MAX_COPIED_FILE_BYTES + 1).read_to_end(&mut content).stage(reading)?;
    if content.len() as u64 > MAX_COPIED_FILE_BYTES {
        return Err(StepError { stage: reading(), message: format!("larger than {MAX_COPIED_FILE_BYTES} bytes") });
    }
    Ok(content)
}

/// Mounts a read-only overlay of `source` (over the empty layer) on `at`. Its mount table
/// entry shows `lowerdir=/proc/self/fd/N:/proc/self/fd/M` and root `/`, nothing of the host.
pub(crate) fn mount_overlay(source: &OwnedFd, empty: &OwnedFd, at: &Path) -> nix::Result<()> {
    let options = format!("lowerdir=/proc/self/fd/{}:/proc/self/fd/{}", source.as_raw_fd(), empty.as_raw_fd());
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some("overlay"), at, Some("overlay"), flags, Some(options.as_str()))
}

fn tmpfs_options(bytes: u64, mode: u32, uid: u32, gid: u32) -> String {
    // size=0 would mean "unlimited" to tmpfs; one page is the smallest real cap.
    let size = bytes.max(4096);
    format!("size={size},mode={mode:o},uid={uid},gid={gid}")
}

fn open_path(host: &Path) -> Result<OwnedFd, StepError> {
    open(host, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).stage(|| format!("opening {}", host.display()))
}

/// Bind-mounts `source` (an `O_PATH` fd) on `target` inside the new root, creating the
/// mountpoint as a directory or an empty file to match the source.
fn bind(source: &OwnedFd, target: &str) -> Result<(), StepError> {
    let at = relative(target);
    let is_dir = fstat(source)
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
        .stage(|| format!("inspecting the source of {target}"))?;
    if is_dir {
        make_dir(&at)?;
    } else {
        make_parent(&at)?;
        if !at.exists() {
            fs::write(&at, b"").stage(|| format!("creating mountpoint {target}"))?;
        }
    }
    let from = format!("/proc/self/fd/{}", source.as_raw_fd());
    let none: Option<&str> = None;
    mount(Some(from.as_str()), &at, none, MsFlags::MS_BIND | MsFlags::MS_REC, none)
        .stage(|| format!("binding {target}"))
}

/// Remounts a bind read-only. Inside a user namespace the flags the host mount has
/// (nosuid, nodev, noexec, atime) are locked and must be repeated, or the kernel says EPERM.
fn remount_read_only(source: &OwnedFd, target: &str) -> Result<(), StepError> {
    let host = fstatvfs(source).stage(|| format!("reading mount flags of the source of {target}"))?.flags();
    let mut flags =
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for (has, set) in [
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if host.contains(has) {
            flags |= set;
        }
    }
    if !host.intersects(FsFlags::ST_NOATIME | FsFlags::ST_RELATIME) {
        flags |= MsFlags::MS_STRICTATIME;
    }
    let none: Option<&str> = None;
    mount(none, &relative(target), none, flags, none).stage(|| format!("making {target} read-only"))
}

/// `/usr/lib` → `usr/lib`, relative to the new root (the cwd while building).
fn relative(target: &str) -> PathBuf {
    PathBuf::from(target.trim_start_matches('/'))
}

fn make_dir(at: &Path) -> Result<(), StepError> {
    fs::DirBuilder::new().recursive(true).mode(0o755).create(at).stage(|| format!("creating /{}", at.display()))
}

fn make_parent(at: &Path) -> Result<(), StepError> {
    match at.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => make_dir(parent),
        _ => Ok(()),
    }
}
