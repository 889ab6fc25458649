//! Reading cgroupfs: where the hierarchies are mounted (`/proc/self/mountinfo`), which
//! cgroup this process is in (`/proc/self/cgroup`), and the small key/value files the
//! kernel exposes. Parsing is pure and unit-tested; `cgroup.rs` decides what to do.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

/// A cgroup filesystem mount: v1 (with its controllers) or v2.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// The path of the hierarchy that is mounted here (not `/` inside some containers).
    root: String,
    mountpoint: PathBuf,
    /// v1: the controllers of this hierarchy; empty for v2.
    controllers: Vec<String>,
    v2: bool,
}

/// One line of `/proc/self/cgroup`: controllers (empty for v2) and this process's path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Membership {
    controllers: Vec<String>,
    path: String,
}

/// The cgroup mounts and this process's memberships.
#[derive(Debug)]
pub(crate) struct Mounts {
    mounts: Vec<Mount>,
    memberships: Vec<Membership>,
}

impl Mounts {
    pub(crate) fn read() -> io::Result<Mounts> {
        Ok(Mounts::parse(&fs::read_to_string("/proc/self/mountinfo")?, &fs::read_to_string("/proc/self/cgroup")?))
    }

    fn parse(mountinfo: &str, cgroup: &str) -> Mounts {
        Mounts {
            mounts: mountinfo.lines().filter_map(parse_mount).collect(),
            memberships: cgroup.lines().filter_map(parse_membership).collect(),
        }
    }

    /// This process's own cgroup dir in the v1 hierarchy that has `controller`.
    pub(crate) fn v1_dir(&self, controller: &str) -> Option<PathBuf> {
        let has = |list: &[String]| list.iter().any(|c| c == controller);
        let mount = self.mounts.iter().find(|m| !m.v2 && has(&m.controllers))?;
        let member = self.memberships.iter().find(|m| has(&m.controllers))?;
        Some(join_below(mount, &member.path))
    }

    /// Whether `path` lies inside a cgroup filesystem (and climbs out of none with `..`).
    pub(crate) fn contains(&self, path: &Path) -> bool {
        let plain = path.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        plain && self.mounts.iter().any(|m| path.starts_with(&m.mountpoint) && path != m.mountpoint)
    }

    /// This process's own cgroup dir in the v2 hierarchy.
    pub(crate) fn v2_dir(&self) -> Option<PathBuf> {
        let mount = self.mounts.iter().find(|m| m.v2)?;
        let member = self.memberships.iter().find(|m| m.controllers.is_empty())?;
        Some(join_below(mount, &member.path))
    }
}

/// `mountpoint` + the part of `path` below the mount's root.
fn join_below(mount: &Mount, path: &str) -> PathBuf {
    let below = path.strip_prefix(mount.root.as_str()).unwrap_or(path);
    let mut dir = mount.mountpoint.clone();
    dir.extend(below.split('/').filter(|part| !part.is_empty()));
    dir
}

/// `36 25 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory`
fn parse_mount(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let super_options = right.nth(1).unwrap_or("");
    let (root, mountpoint) = (unescape(left.get(3)?), unescape(left.get(4)?));
    match fstype {
        "cgroup2" => Some(Mount { root, mountpoint: mountpoint.into(), controllers: Vec::new(), v2: true }),
        "cgroup" => Some(Mount {
            root,
            mountpoint: mountpoint.into(),
            controllers: super_options.split(',').map(str::to_string).collect(),
            v2: false,
        }),
        _ => None,
    }
}

/// `4:memory:/process_api/1afd` or `0::/user.slice` (v2).
fn parse_membership(line: &str) -> Option<Membership> {
    let mut parts = line.splitn(3, ':');
    let _id = parts.next()?;
    let controllers = parts.next()?;
    let path = parts.next()?.to_string();
    let controllers = controllers
        .split(',')
        .filter(|c| !c.is_empty())
        // `name=systemd` hierarchies have no controller we use.
        .map(str::to_string)
        .collect();
    Some(Membership { controllers, path })
}

/// mountinfo escapes space, tab, newline and backslash as octal `\040`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn make_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o755).create(path)
}

pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`oom_kill 3`); 0 when absent.
pub(crate) fn read_key(path: &Path, key: &str) -> u64 {
    let Ok(text) = fs::read_to_string(path) else { return 0 };
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Whitespace-separated words of a file (`cgroup.controllers`); empty when unreadable.
pub(crate) fn read_words(path: &Path) -> Vec<String> {
    fs::read_to_string(path).map(|t| t.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
}

/// The pids in the cgroup dir (`cgroup.procs`); empty when unreadable.
pub(crate) fn members(dir: &Path) -> Vec<i32> {
    let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) else { return Vec::new() };
    procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()).collect()
}

/// SIGKILLs every process in the cgroup dir: `cgroup.kill` on v2 (atomic, 5.14+), else each
/// pid of `cgroup.procs`. Only a backstop: the run's PID namespace is normally gone already.
pub(crate) fn kill_members(dir: &Path) {
    let kill_file = dir.join("cgroup.kill");
    if kill_file.exists() && fs::write(&kill_file, "1").is_ok() {
        return;
    }
    for pid in members(dir) {
        // ESRCH: it exited meanwhile. The pid was read from the run's cgroup a moment ago;
        // reuse within that window would need the pid space to wrap around.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
28 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
29 25 0:27 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
30 25 0:28 /docker/abc /sys/fs/cgroup/cpu\\040x rw - cgroup cgroup rw,cpu,cpuacct";
    const CGROUP: &str = "9:name=systemd:/\n4:memory:/process_api/1afd\n8:pids:/\n2:cpu,cpuacct:/docker/abc/w\n0::/";

    #[test]
    fn v1_dirs_join_the_mountpoint_and_the_path_below_the_mount_root() {
        let mounts = Mounts::parse(MOUNTINFO, CGROUP);
        assert_eq!(mounts.v1_dir("memory"), Some("/sys/fs/cgroup/memory/process_api/1afd".into()));
        assert_eq!(mounts.v1_dir("pids"), Some("/sys/fs/cgroup/pids".into()));
        assert_eq!(mounts.v1_dir("cpuacct"), Some("/sys/fs/cgroup/cpu x/w".into()));
        assert_eq!(mounts.v1_dir("freezer"), None);
        assert_eq!(mounts.v2_dir(), Some("/sys/fs/cgroup/unified".into()));
    }

    #[test]
    fn only_paths_below_a_cgroup_mount_count_as_cgroup_paths() {
        let mounts = Mounts::parse(MOUNTINFO, CGROUP);
        assert!(mounts.contains(Path::new("/sys/fs/cgroup/memory/process_api/agentd-x-")));
        assert!(!mounts.contains(Path::new("/sys/fs/cgroup/memory")));
        assert!(!mounts.contains(Path::new("/sys/fs/cgroup/memory/../../../etc")));
        assert!(!mounts.contains(Path::new("/etc/agentd-x-")));
    }

    #[test]
    fn a_pure_v2_host_has_no_v1_dirs() {
        let mounts = Mounts::parse("30 25 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", "0::/system.slice/agentd");
        assert_eq!(mounts.v1_dir("memory"), None);
        assert_eq!(mounts.v2_dir(), Some("/sys/fs/cgroup/system.slice/agentd".into()));
    }
}
