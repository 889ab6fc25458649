//! Small read-only inputs copied into the run's root instead of mounted. A typical bundle
//! is a few files of a few KB, and so are the SDK's directories: reading them in the init
//! and writing them into the root tmpfs costs no more than the overlay that would
//! otherwise serve them (`mounts.rs` has the figures), needs no overlayfs, and leaves no
//! entry in the run's mount table at all.
//!
//! A directory is copied only if it is small: at most `MAX_ENTRIES` entries, `MAX_BYTES`
//! of file content and `MAX_DEPTH` levels, holding only directories, regular files and
//! symlinks (recreated as they are; they resolve inside the sandbox, as in a mount). The
//! walk stops as soon as a limit is passed, so a 50 MB bundle costs one short look. The
//! copy is read-only like a mount (mode bits `& 0o555`, and the root is remounted
//! read-only) and counts against the run's memory, at most `MAX_BYTES` a directory.
//!
//! The init reads (with the supervisor's uid, through the `O_PATH` fd it opened, as for a
//! mount); PID 1 writes, inside the new root, before it is made read-only.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

use crate::step::{Stage, StepError};

/// Most files, directories and symlinks in a copied directory.
pub(crate) const MAX_ENTRIES: usize = 64;
/// Most bytes of file content in a copied directory.
pub(crate) const MAX_BYTES: u64 = 256 << 10;
/// Deepest level copied (`/agent/a/b/…`).
const MAX_DEPTH: usize = 8;

/// One entry, by its path relative to the copied directory.
#[derive(Debug)]
enum Node {
    Dir { path: PathBuf, mode: u32 },
    File { path: PathBuf, mode: u32, content: Vec<u8> },
    Symlink { path: PathBuf, points_to: OsString },
}

/// A small host directory, read into memory.
#[derive(Debug)]
pub(crate) struct CopiedTree {
    /// The directory's own mode.
    mode: u32,
    /// Parents before children.
    nodes: Vec<Node>,
    bytes: u64,
}

/// What the walk has left to spend.
struct Budget {
    entries: usize,
    bytes: u64,
}

impl CopiedTree {
    /// Reads the directory behind `source` (an `O_PATH` fd) if it is small enough to copy;
    /// `None` when it is not (or holds something other than files, dirs and symlinks).
    pub(crate) fn read_small(source: &OwnedFd, name: &Path) -> Result<Option<CopiedTree>, StepError> {
        let reading = || format!("reading {}", name.display());
        let mode = fstat(source).stage(reading)?.st_mode;
        let dir = openat(source, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .stage(reading)?;
        let mut nodes = Vec::new();
        let mut budget = Budget { entries: MAX_ENTRIES, bytes: MAX_BYTES };
        if !walk(dir, Path::new(""), 0, &mut budget, &mut nodes).stage(reading)? {
            return Ok(None);
        }
        Ok(Some(CopiedTree { mode, nodes, bytes: MAX_BYTES - budget.bytes }))
    }

    /// Bytes of file content, for sizing the root tmpfs.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Writes the tree at `at`, relative to the new root being built (the cwd).
    pub(crate) fn write(self, at: &Path, target: &str) -> Result<(), StepError> {
        let writing = || format!("copying {target}");
        fs::DirBuilder::new().recursive(true).create(at).stage(writing)?;
        let mut dirs = vec![(at.to_path_buf(), self.mode)];
        for node in self.nodes {
            match node {
                Node::Dir { path, mode } => {
                    let path = at.join(path);
                    fs::create_dir(&path).stage(writing)?;
                    dirs.push((path, mode));
                }
                Node::File { path, mode, content } => {
                    let path = at.join(path);
                    fs::write(&path, content).stage(writing)?;
                    read_only(&path, mode).stage(writing)?;
                }
                Node::Symlink { path, points_to } => symlink(points_to, at.join(path)).stage(writing)?,
            }
        }
        // Last, children first: a directory made read-only takes no more entries.
        for (path, mode) in dirs.into_iter().rev() {
            read_only(&path, mode).stage(writing)?;
        }
        Ok(())
    }
}

/// Copies the entries of `dir` into `nodes`; `false` as soon as the tree is not copyable.
fn walk(dir: OwnedFd, prefix: &Path, depth: usize, budget: &mut Budget, nodes: &mut Vec<Node>) -> nix::Result<bool> {
    let mut dir = Dir::from_fd(dir)?;
    let mut names: Vec<CString> = Vec::new();
    for entry in dir.iter() {
        let name = entry?.file_name().to_owned();
        if name.as_bytes() == b"." || name.as_bytes() == b".." {
            continue;
        }
        if names.len() == budget.entries {
            return Ok(false);
        }
        names.push(name);
    }
    budget.entries -= names.len();
    for name in names {
        let path = prefix.join(OsStr::from_bytes(name.as_bytes()));
        let stat = fstatat(dir.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let copyable = match kind(&stat) {
            SFlag::S_IFDIR if depth + 1 < MAX_DEPTH => {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let child = openat(dir.as_fd(), name.as_c_str(), flags, Mode::empty())?;
                nodes.push(Node::Dir { path: path.clone(), mode: stat.st_mode });
                walk(child, &path, depth + 1, budget, nodes)?
            }
            SFlag::S_IFREG => match read_file(&dir, &name, budget)? {
                Some(content) => {
                    nodes.push(Node::File { path, mode: stat.st_mode, content });
                    true
                }
                None => false,
            },
            SFlag::S_IFLNK => {
                nodes.push(Node::Symlink { path, points_to: readlinkat(dir.as_fd(), name.as_c_str())? });
                true
            }
            _ => false,
        };
        if !copyable {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The content of a regular file within the budget; `None` when it does not fit.
fn read_file(dir: &Dir, name: &CStr, budget: &mut Budget) -> nix::Result<Option<Vec<u8>>> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let file = fs::File::from(openat(dir.as_fd(), name, flags, Mode::empty())?);
    let mut content = Vec::new();
    // One byte more than the budget tells a file too big from one that just fits.
    file.take(budget.bytes + 1).read_to_end(&mut content).map_err(|e| io_errno(&e))?;
    let Some(left) = budget.bytes.checked_sub(content.len() as u64) else { return Ok(None) };
    budget.bytes = left;
    Ok(Some(content))
}

fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

fn read_only(path: &Path, mode: u32) -> std::io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o555))
}

fn io_errno(e: &std::io::Error) -> nix::errno::Errno {
    e.raw_os_error().map_or(nix::errno::Errno::EIO, nix::errno::Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_path(dir: &Path) -> OwnedFd {
        nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap()
    }

    fn read(dir: &Path) -> Option<CopiedTree> {
        CopiedTree::read_small(&open_path(dir), dir).unwrap()
    }

    #[test]
    fn a_small_tree_is_copied_read_only_with_its_symlinks() {
        let source = tempfile::tempdir().unwrap();
        fs::create_dir(source.path().join("lib")).unwrap();
        fs::write(source.path().join("lib/util.py"), "X = 1\n").unwrap();
        fs::write(source.path().join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(source.path().join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("lib/util.py", source.path().join("link")).unwrap();
        let tree = read(source.path()).unwrap();
        assert_eq!(tree.bytes(), 16);
        let root = tempfile::tempdir().unwrap();
        tree.write(&root.path().join("agent"), "/agent").unwrap();
        let copy = root.path().join("agent");
        assert_eq!(fs::read_to_string(copy.join("lib/util.py")).unwrap(), "X = 1\n");
        assert_eq!(fs::read_link(copy.join("link")).unwrap(), Path::new("lib/util.py"));
        let mode = |p: &str| fs::symlink_metadata(copy.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("run.sh"), mode("lib/util.py"), mode("lib")), (0o555, 0o444, 0o555));
    }

    #[test]
    fn trees_past_a_limit_or_with_special_files_are_not_copied() {
        let many = tempfile::tempdir().unwrap();
        for i in 0..=MAX_ENTRIES {
            fs::write(many.path().join(format!("f{i}")), "").unwrap();
        }
        assert!(read(many.path()).is_none(), "more than {MAX_ENTRIES} entries");
        let big = tempfile::tempdir().unwrap();
        fs::write(big.path().join("a"), vec![0u8; MAX_BYTES as usize / 2]).unwrap();
        fs::write(big.path().join("b"), vec![0u8; MAX_BYTES as usize / 2 + 1]).unwrap();
        assert!(read(big.path()).is_none(), "more than {MAX_BYTES} bytes");
        let fits = tempfile::tempdir().unwrap();
        fs::write(fits.path().join("a"), vec![0u8; MAX_BYTES as usize]).unwrap();
        assert_eq!(read(fits.path()).map(|t| t.bytes()), Some(MAX_BYTES));
        let fifo = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&fifo.path().join("pipe"), Mode::from_bits_truncate(0o644)).unwrap();
        assert!(read(fifo.path()).is_none(), "a FIFO was copied");
    }
}
