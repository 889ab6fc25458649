//! A `Sandbox`'s own part of the scratch dir, proven alive by a lock, and the reconciler
//! that removes the parts of `Sandbox`es whose process is gone (`Sandbox::remove_leftovers`).
//!
//! Several processes may share one scratch dir (server replicas on a shared data dir), and
//! a process killed with SIGKILL cleans nothing up. So each `Sandbox` works in a directory
//! of its own, next to a lock file it holds an exclusive `flock` on for its whole life:
//!
//! ```text
//! <scratch>/instance-<id>.lock     flock held by the live Sandbox (the kernel drops it
//!                                  when the process dies, however it dies)
//! <scratch>/instance-<id>/cgroups  where its run cgroups are made (one path prefix a line)
//! <scratch>/instance-<id>/runs/    one dir per run in flight
//! <scratch>/instance-<id>/owner/   Sandbox::instance_dir(): the owner's own files
//! ```
//!
//! Run cgroups are named `<prefix><id>-<run dir name>`, so an instance's cgroups are found
//! by name under the parents it recorded. The lock is taken before the directory exists
//! and released after it is gone, both by the owner (on drop) and by a reconciler (which
//! removes cgroups, then the directory, then the lock file, holding the lock throughout).
//! So a directory whose lock is free, or that has no lock file, has no live owner; and a
//! lock file is trusted only while its path still names the inode that was locked, since a
//! reconciler may unlink it between another's `open` and `flock`. The lock fd is
//! close-on-exec: the processes a `Sandbox` starts do not keep it alive.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::cgroup;
use crate::error::SandboxError;

const PREFIX: &str = "instance-";
const LOCK_SUFFIX: &str = ".lock";
/// The record of the cgroup parents, inside the instance dir.
const CGROUPS_FILE: &str = "cgroups";
const RUNS_DIR: &str = "runs";
const OWNER_DIR: &str = "owner";
/// A fresh lock file is taken over by a reconciler only in a window of microseconds.
const CREATE_ATTEMPTS: usize = 8;

/// What `Sandbox::remove_leftovers` found of `Sandbox`es whose process is gone, and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftoverReport {
    /// Instances whose files were removed: their run dirs, their owner's files
    /// (`Sandbox::instance_dir`), their lock.
    pub instances: usize,
    /// Run dirs among those files: runs that were in flight when their owner died.
    pub run_dirs: usize,
    /// Run cgroup dirs removed (on cgroup v1, one per controller hierarchy).
    pub cgroups: usize,
    /// Processes still in those cgroups (they had escaped their run's PID namespace),
    /// killed before the cgroups were removed.
    pub killed_processes: usize,
    /// What could not be removed yet, and why; the next call tries again.
    pub kept: Vec<String>,
}

/// This `Sandbox`'s directory and the lock that proves it alive.
#[derive(Debug)]
pub(crate) struct Instance {
    scratch: PathBuf,
    id: String,
    dir: PathBuf,
    runs_dir: PathBuf,
    owner_dir: PathBuf,
    /// Held (and the file open) until drop.
    lock: Option<Flock<File>>,
}

impl Instance {
    /// Takes a fresh instance lock in `scratch` (made if needed), then makes the dir.
    pub(crate) fn create(scratch: &Path) -> Result<Instance, SandboxError> {
        let io = |action: &str| {
            let action = format!("{action} in {}", scratch.display());
            move |e| SandboxError::io(action, e)
        };
        fs::create_dir_all(scratch).map_err(io("could not create the scratch dir"))?;
        for _ in 0..CREATE_ATTEMPTS {
            let (file, path) = tempfile::Builder::new()
                .prefix(PREFIX)
                .suffix(LOCK_SUFFIX)
                .tempfile_in(scratch)
                .and_then(|file| file.keep().map_err(|e| e.error))
                .map_err(io("could not create an instance lock"))?;
            // Another process's reconciler may have taken (and unlinked) the file between
            // its creation and our lock: then try another name.
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => continue,
                Err((_, errno)) => {
                    let _ = fs::remove_file(&path); // ours, and useless without a lock
                    return Err(SandboxError::io(
                        format!("could not lock {} (the scratch dir needs flock support)", path.display()),
                        errno.into(),
                    ));
                }
            };
            if !names_inode(&path, &lock) {
                continue;
            }
            let id = id_of(&path).ok_or_else(|| SandboxError::protocol("instance lock with an unexpected name"))?;
            let dir = scratch.join(&id);
            let (runs_dir, owner_dir) = (dir.join(RUNS_DIR), dir.join(OWNER_DIR));
            let instance = Instance { scratch: scratch.to_path_buf(), id, dir, runs_dir, owner_dir, lock: Some(lock) };
            for dir in [&instance.dir, &instance.runs_dir, &instance.owner_dir] {
                fs::DirBuilder::new().mode(0o700).create(dir).map_err(io("could not create the instance dir"))?;
            }
            return Ok(instance);
        }
        Err(SandboxError::io(
            format!("could not lock a new instance in {}", scratch.display()),
            io::Error::from(io::ErrorKind::WouldBlock),
        ))
    }

    /// `instance-<random>`: unique among the instances sharing the scratch dir.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The instance's directory, for its short-lived files (the host probe's).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where this instance's run dirs are made.
    pub(crate) fn runs_dir(&self) -> &Path {
        &self.runs_dir
    }

    /// The owner's own directory (`Sandbox::instance_dir`).
    pub(crate) fn owner_dir(&self) -> &Path {
        &self.owner_dir
    }

    /// Writes where this instance's run cgroups will be (`<parent>/<name prefix>` paths),
    /// so that a reconciler in another cgroup can find them after this process died.
    pub(crate) fn record_cgroups(&self, prefixes: &[PathBuf]) -> Result<(), SandboxError> {
        let lines: String = prefixes.iter().map(|p| format!("{}\n", p.display())).collect();
        let path = self.dir.join(CGROUPS_FILE);
        fs::write(&path, lines).map_err(|e| SandboxError::io(format!("could not write {}", path.display()), e))
    }

    /// Removes every other instance in the scratch dir whose owner is gone. `own_prefixes`
    /// gives, for an instance id, where this process would put that instance's cgroups: it
    /// covers instances that died before recording theirs.
    pub(crate) fn remove_leftovers(
        &self,
        own_prefixes: impl Fn(&str) -> Vec<PathBuf>,
    ) -> Result<LeftoverReport, SandboxError> {
        let entries = fs::read_dir(&self.scratch)
            .map_err(|e| SandboxError::io(format!("could not list the scratch dir {}", self.scratch.display()), e))?;
        let ids: BTreeSet<String> = entries
            .flatten()
            .filter_map(|entry| id_of(Path::new(&entry.file_name())))
            .filter(|id| *id != self.id)
            .collect();
        let mut report = LeftoverReport::default();
        let mut killed = BTreeSet::new();
        for id in ids {
            // `None`: its owner is alive.
            if let Some(claim) = claim(&self.scratch, &id) {
                self.reclaim(&id, claim, own_prefixes(&id), &mut report, &mut killed);
            }
        }
        report.killed_processes = killed.len();
        Ok(report)
    }

    /// Removes a dead instance's cgroups, then its dir, then its lock file.
    fn reclaim(
        &self,
        id: &str,
        claim: Claim,
        mut prefixes: Vec<PathBuf>,
        report: &mut LeftoverReport,
        killed: &mut BTreeSet<i32>,
    ) {
        let dir = self.scratch.join(id);
        if claim.0.is_none() && !dir.exists() {
            return; // both gone: another reconciler just finished with it
        }
        prefixes.extend(recorded_prefixes(&dir, id, &mut report.kept));
        prefixes.sort();
        prefixes.dedup();
        let cgroups = cgroup::remove_leftovers(&prefixes);
        report.cgroups += cgroups.removed;
        killed.extend(cgroups.killed);
        if !cgroups.kept.is_empty() {
            // The dir and the lock stay, so that the next call finds the cgroups again.
            report.kept.extend(cgroups.kept);
            return;
        }
        // A lock without a dir is one whose owner died while starting: nothing to count.
        let had_dir = dir.exists();
        let run_dirs = fs::read_dir(dir.join(RUNS_DIR)).map(|runs| runs.count()).unwrap_or(0);
        if let Err(e) = remove_tree(&dir) {
            report.kept.push(format!("{}: {e}", dir.display()));
            return;
        }
        if had_dir {
            report.instances += 1;
            report.run_dirs += run_dirs;
        }
        claim.release_and_remove(&self.scratch.join(format!("{id}{LOCK_SUFFIX}")), &mut report.kept);
    }
}

impl Drop for Instance {
    /// The runs are over (`run` borrows the `Sandbox`): the directory goes, then the lock.
    fn drop(&mut self) {
        match remove_tree(&self.dir) {
            Ok(()) => {
                let lock = self.scratch.join(format!("{}{LOCK_SUFFIX}", self.id));
                if let Err(e) = fs::remove_file(&lock) {
                    tracing::warn!(error = %e, path = %lock.display(), "could not remove the instance lock");
                }
            }
            // The lock file stays: a reconciler retries once this process is gone.
            Err(e) => tracing::warn!(error = %e, dir = %self.dir.display(), "could not remove the instance dir"),
        }
        drop(self.lock.take());
    }
}

/// A dead instance's lock, held while its files are removed (`None`: it had no lock file).
struct Claim(Option<Flock<File>>);

impl Claim {
    /// Unlinks the lock file while still holding it, then lets it go.
    fn release_and_remove(self, path: &Path, kept: &mut Vec<String>) {
        if self.0.is_some()
            && let Err(e) = fs::remove_file(path)
            && e.kind() != io::ErrorKind::NotFound
        {
            kept.push(format!("{}: {e}", path.display()));
        }
    }
}

/// The lock of instance `id` if its owner is gone; `None` while it is alive.
fn claim(scratch: &Path, id: &str) -> Option<Claim> {
    let path = scratch.join(format!("{id}{LOCK_SUFFIX}"));
    let file = match File::options().read(true).write(true).open(&path) {
        Ok(file) => file,
        // Locks are made before their dir and removed after it: a dir without one has no
        // owner (and a lock that vanished was just reclaimed by someone else, harmlessly).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(Claim(None)),
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "could not open an instance lock");
            return None;
        }
    };
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
    // Unlinked (and perhaps replaced) since we opened it: another reconciler's, not ours.
    names_inode(&path, &lock).then_some(Claim(Some(lock)))
}

/// The cgroup path prefixes a dead instance recorded, each checked to name that instance's
/// cgroups only (a damaged record must not make us remove or kill anything else).
fn recorded_prefixes(dir: &Path, id: &str, kept: &mut Vec<String>) -> Vec<PathBuf> {
    let Ok(record) = fs::read_to_string(dir.join(CGROUPS_FILE)) else { return Vec::new() };
    let mut prefixes = Vec::new();
    for line in record.lines().filter(|line| !line.is_empty()) {
        let path = PathBuf::from(line);
        let names_id = path.file_name().and_then(|n| n.to_str()).is_some_and(|name| {
            name.starts_with("agentd-") && name.ends_with(&format!("-{id}-")) && !name.contains('/')
        });
        if names_id && cgroup::is_cgroup_path(&path) {
            prefixes.push(path);
        } else {
            kept.push(format!("{}: ignored a cgroup record line {line:?}", dir.display()));
        }
    }
    prefixes
}

/// `instance-<random>` from `instance-<random>` or `instance-<random>.lock`.
fn id_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let id = name.strip_suffix(LOCK_SUFFIX).unwrap_or(name);
    let random = id.strip_prefix(PREFIX)?;
    let clean = !random.is_empty() && random.chars().all(|c| c.is_ascii_alphanumeric());
    clean.then(|| id.to_string())
}

/// Whether `path` still names the file behind `lock`.
fn names_inode(path: &Path, lock: &Flock<File>) -> bool {
    match (fs::symlink_metadata(path), lock.metadata()) {
        (Ok(named), Ok(locked)) => (named.dev(), named.ino()) == (locked.dev(), locked.ino()),
        _ => false,
    }
}

/// `remove_dir_all`, where a tree that is already gone (another reconciler) is fine.
fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_come_from_lock_files_and_dirs_and_nothing_else() {
        assert_eq!(id_of(Path::new("instance-a1B2c3.lock")).as_deref(), Some("instance-a1B2c3"));
        assert_eq!(id_of(Path::new("/x/instance-a1B2c3")).as_deref(), Some("instance-a1B2c3"));
        for other in ["run-abc", "instance-", "instance-a.b.lock", "instance-../x", "probe-xyz", ".instance-a"] {
            assert_eq!(id_of(Path::new(other)), None, "{other}");
        }
    }

    #[test]
    fn a_live_instance_is_not_claimed_and_a_dropped_one_leaves_nothing() {
        let scratch = tempfile::tempdir().unwrap();
        let instance = Instance::create(scratch.path()).unwrap();
        assert!(claim(scratch.path(), instance.id()).is_none(), "a live instance was claimed");
        let other = Instance::create(scratch.path()).unwrap();
        assert_eq!(other.remove_leftovers(|_| Vec::new()).unwrap(), LeftoverReport::default());
        drop((instance, other));
        assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 0);
    }
}
