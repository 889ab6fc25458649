//! Copying `/outputs` out of a run (`RunSpec::collect_outputs`). `/outputs` is a tmpfs in
//! the run's mount namespace and disappears with it, so the copy happens inside: PID 1,
//! once the agent has exited, kills whatever the agent left running (nothing can change
//! the tree any more), then walks `/outputs` by fd and copies each regular file into the
//! host directory through an fd the init opened before the namespaces existed.
//!
//! The walk never follows a symlink (`O_NOFOLLOW` on every open, relative to the parent's
//! fd), opens with `O_NONBLOCK` so a FIFO cannot stall it, keeps only regular files and
//! directories, and caps depth, file count and total bytes. Files are created with
//! `O_EXCL`, mode 0644, under names that are single clean path components. PID 1 writes
//! as the sandbox's root, so the supervisor lends it the directory (`LentDir`) for the run
//! and takes it back afterwards: ownership of everything in it returns to the directory's
//! owner, and a run that did not end by itself leaves the directory empty.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};
use nix::unistd::{Gid, Uid};
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;
use crate::namespaces::{HOST_ID_BASE, IdMapping};
use crate::spec::{OUTPUTS_MOUNT, OutputFile};

/// Most files and directories copied out of one run.
pub(crate) const MAX_ENTRIES: usize = 1000;
/// Deepest directory level copied (`/outputs/a/b/…`).
const MAX_DEPTH: usize = 16;
/// At most this many problems are reported; the rest are counted.
const MAX_PROBLEMS: usize = 20;

/// What PID 1 copied, reported to the supervisor before the agent's status.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Collected {
    /// (relative path with `/`, size in bytes), in walk order.
    pub files: Vec<(String, u64)>,
    /// Entries skipped and why, for the worker's log.
    pub problems: Vec<String>,
    /// Files and directories created so far.
    #[serde(skip)]
    entries: usize,
}

impl Collected {
    fn problem(&mut self, message: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(message);
        }
    }
}

/// Copies the regular files under `/outputs` into `target` (an fd to the host directory),
/// at most `max_bytes` in all. Runs in PID 1 after every other process of the run is gone.
pub(crate) fn collect(target: &OwnedFd, max_bytes: u64) -> Collected {
    let mut collected = Collected::default();
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match nix::fcntl::open(OUTPUTS_MOUNT, flags, Mode::empty()) {
        Ok(source) => {
            let mut budget = max_bytes;
            walk(source, target, "", 0, &mut budget, &mut collected);
        }
        Err(e) => collected.problem(format!("cannot open {OUTPUTS_MOUNT}: {e}")),
    }
    collected
}

fn walk(source: OwnedFd, target: &OwnedFd, prefix: &str, depth: usize, budget: &mut u64, out: &mut Collected) {
    let mut dir = match Dir::from_fd(source) {
        Ok(dir) => dir,
        Err(e) => return out.problem(format!("cannot read {OUTPUTS_MOUNT}/{prefix}: {e}")),
    };
    let mut names: Vec<std::ffi::CString> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_owned())
        .filter(|name| name.as_bytes() != b"." && name.as_bytes() != b"..")
        // Enough to notice the cap; an agent may have made millions of empty files.
        .take(MAX_ENTRIES + 1)
        .collect();
    names.sort();
    for name in names {
        let Ok(text) = name.to_str() else {
            out.problem(format!("skipped a name in {OUTPUTS_MOUNT}/{prefix} that is not UTF-8"));
            continue;
        };
        let path = format!("{prefix}{text}");
        if out.entries >= MAX_ENTRIES {
            return out.problem(format!("more than {MAX_ENTRIES} files and directories; the rest were not copied"));
        }
        // O_NOFOLLOW: a symlink fails with ELOOP; O_NONBLOCK: a FIFO opens without a writer.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let Ok(fd) = openat(dir.as_fd(), name.as_c_str(), flags, Mode::empty()) else {
            out.problem(format!("skipped {path}: not a regular file or directory"));
            continue;
        };
        let Ok(stat) = fstat(&fd) else { continue };
        match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFDIR if depth + 1 < MAX_DEPTH => {
                let child = mkdirat(target, name.as_c_str(), Mode::from_bits_truncate(0o755)).and_then(|()| {
                    openat(
                        target,
                        name.as_c_str(),
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                        Mode::empty(),
                    )
                });
                out.entries += 1;
                match child {
                    Ok(child) => walk(fd, &child, &format!("{path}/"), depth + 1, budget, out),
                    Err(e) => out.problem(format!("cannot create {path}: {e}")),
                }
            }
            SFlag::S_IFDIR => out.problem(format!("skipped {path}: deeper than {MAX_DEPTH} levels")),
            SFlag::S_IFREG => {
                let size = u64::try_from(stat.st_size).unwrap_or(0);
                if size > *budget {
                    out.problem(format!("skipped {path}: {size} bytes would exceed the outputs cap"));
                    continue;
                }
                out.entries += 1;
                match copy_file(fd, target, &name, size) {
                    Ok(copied) => {
                        *budget -= copied;
                        out.files.push((path, copied));
                    }
                    Err(e) => out.problem(format!("cannot copy {path}: {e}")),
                }
            }
            _ => out.problem(format!("skipped {path}: not a regular file or directory")),
        }
    }
}

/// Copies at most `size` bytes of `source` into a new file `name` under `target`.
fn copy_file(source: OwnedFd, target: &OwnedFd, name: &std::ffi::CStr, size: u64) -> io::Result<u64> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let created = openat(target, name, flags, Mode::from_bits_truncate(0o644))?;
    let (mut from, mut to) = (File::from(source).take(size), File::from(created));
    let copied = io::copy(&mut from, &mut to)?;
    to.flush()?;
    Ok(copied)
}

/// The caller's output directory while a run may write into it.
pub(crate) struct LentDir {
    path: PathBuf,
    /// Its owner before the run, who gets everything back.
    owner: (u32, u32),
    /// Whether it was handed to the sandbox's root (host uid `HOST_ID_BASE`).
    chowned: bool,
    done: bool,
}

impl LentDir {
    /// Checks that `path` is an empty directory and lets the sandbox's root write in it.
    pub(crate) fn lend(path: &Path, mapping: IdMapping) -> Result<LentDir, SandboxError> {
        let invalid = |reason: String| SandboxError::InvalidSpec { reason };
        let meta =
            std::fs::symlink_metadata(path).map_err(|e| invalid(format!("collect_outputs {}: {e}", path.display())))?;
        if !meta.is_dir() {
            return Err(invalid(format!("collect_outputs {} is not a directory", path.display())));
        }
        let mut entries =
            std::fs::read_dir(path).map_err(|e| SandboxError::io(format!("could not read {}", path.display()), e))?;
        if entries.next().is_some() {
            return Err(invalid(format!("collect_outputs {} must be empty", path.display())));
        }
        let owner = (meta.uid(), meta.gid());
        // With a single-id mapping the sandbox's root is this process's own uid already.
        let chowned = mapping == IdMapping::Range;
        if chowned {
            let id = Some(HOST_ID_BASE);
            nix::unistd::chown(path, id.map(Uid::from_raw), id.map(Gid::from_raw))
                .map_err(|e| SandboxError::io(format!("could not lend {} to the sandbox", path.display()), e.into()))?;
        }
        Ok(LentDir { path: path.to_path_buf(), owner, chowned, done: false })
    }

    /// Takes the directory back. With `Some`, the run ended by itself and these are its
    /// files; with `None` (killed, or no report) whatever was written is removed.
    pub(crate) fn take_back(mut self, collected: Option<Collected>) -> Vec<OutputFile> {
        self.done = true;
        let files = match collected {
            Some(collected) => {
                if !collected.problems.is_empty() {
                    tracing::info!(problems = ?collected.problems, "some of /outputs was not copied");
                }
                collected
                    .files
                    .into_iter()
                    .map(|(name, size)| OutputFile { path: self.path.join(&name), name, size })
                    .collect()
            }
            None => {
                self.empty();
                Vec::new()
            }
        };
        self.restore();
        files
    }

    fn empty(&self) {
        let Ok(entries) = std::fs::read_dir(&self.path) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let removed = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
            if let Err(e) = removed {
                tracing::warn!(error = %e, path = %path.display(), "could not remove a partial output");
            }
        }
    }

    /// Gives the directory and everything in it back to its owner (nothing in it is a
    /// symlink, but `lchown` would not follow one anyway).
    fn restore(&self) {
        if !self.chowned {
            return;
        }
        let (uid, gid) = self.owner;
        let mut pending = vec![self.path.clone()];
        while let Some(path) = pending.pop() {
            if let Err(e) = std::os::unix::fs::lchown(&path, Some(uid), Some(gid)) {
                tracing::warn!(error = %e, path = %path.display(), "could not give an output back to its owner");
            }
            if path.symlink_metadata().is_ok_and(|m| m.is_dir())
                && let Ok(entries) = std::fs::read_dir(&path)
            {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
}

impl Drop for LentDir {
    /// A dropped run: its PID 1 is being killed; leave nothing half-copied behind.
    fn drop(&mut self) {
        if !self.done {
            self.empty();
            self.restore();
        }
    }
}
