//! The sandbox's filesystem: a fresh tmpfs root holding read-only binds of the host's
//! runtime directories, a minimal `/etc`, the bundle at `/agent`, size-capped tmpfs `/work`
//! and `/tmp`, a tiny `/dev` and a fresh `/proc`; then `pivot_root` and a read-only root.
//!
//! Two phases, because the sandbox's root is nobody on the host: `RootPlan::open` runs in
//! the init right after it unshares, while it still has the supervisor's uid, and opens
//! every bind source as an `O_PATH` fd (so host directories the sandbox uid could not
//! traverse can still be bound). `RootPlan::build` runs in PID 1 inside the new namespaces and mounts those fds
//! through `/proc/self/fd/N`.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, symlink};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::sys::statvfs::{FsFlags, fstatvfs};
use nix::unistd::{chdir, pivot_root};

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

/// One piece of the new root, in mount order.
enum Entry {
    /// Read-only bind of a host directory or file, opened before unshare.
    ReadOnly { source: OwnedFd, target: String },
    /// Bind of a host device node.
    Device { source: OwnedFd, target: String },
    /// A symlink, e.g. `/bin -> usr/bin` on merged-/usr hosts.
    Symlink { target: String, points_to: PathBuf },
    /// A file written by the sandbox (`/etc/passwd`, …).
    File { target: String, content: String },
    /// A size-capped tmpfs.
    Tmpfs { target: String, options: String },
}

/// Everything `build` mounts, with sources already opened.
pub(crate) struct RootPlan {
    entries: Vec<Entry>,
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
        entries.push(Entry::ReadOnly { source: open_path(&config.bundle_dir)?, target: BUNDLE_MOUNT.to_string() });
        for (host, inside) in &config.extra_ro_mounts {
            entries.push(Entry::ReadOnly { source: open_path(host)?, target: inside.clone() });
        }
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
        Ok(RootPlan { entries })
    }

    /// Builds the new root on `<run dir>/root` and pivots into it. Runs in PID 1 with the
    /// run dir as its cwd; afterwards cwd is the new `/`, which is read-only.
    pub(crate) fn build(self) -> Result<(), StepError> {
        let none: Option<&str> = None;
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).stage(|| "making / private".into())?;
        mount(
            Some("tmpfs"),
            ROOT_MOUNTPOINT,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("size=4m,nr_inodes=4096,mode=0755"),
        )
        .stage(|| "mounting the root tmpfs".into())?;
        chdir(ROOT_MOUNTPOINT).stage(|| "entering the new root".into())?;
        for entry in self.entries {
            entry.apply()?;
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
    fn apply(self) -> Result<(), StepError> {
        match self {
            Entry::ReadOnly { source, target } => {
                bind(&source, &target)?;
                remount_read_only(&source, &target)
            }
            Entry::Device { source, target } => bind(&source, &target),
            Entry::Symlink { target, points_to } => {
                let at = relative(&target);
                make_parent(&at)?;
                symlink(&points_to, &at).stage(|| format!("creating symlink {target}"))
            }
            Entry::File { target, content } => {
                let at = relative(&target);
                make_parent(&at)?;
                fs::write(&at, content).stage(|| format!("writing {target}"))
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
    .map(|(target, content)| Entry::File { target: target.into(), content })
    .collect()
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
