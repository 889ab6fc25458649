//! Writing a bundle to disk, all or nothing.
//!
//! Everything is written into a fresh staging folder next to the destination, then
//! renamed into place, so a reader of the destination (the worker's cache) sees either the
//! complete bundle or nothing; on any error the staging folder is removed. Modes are set
//! explicitly rather than trusted to the umask or to the archive: folders `0755`, files
//! `0644`, or `0755` when the archive marked them executable. Setuid, setgid and sticky bits
//! are never set, and ownership is whoever runs the worker.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::entry_path::EntryPath;
use crate::walk::{self, Expect, Sink};
use crate::{BundleError, BundleLimits};

const DIR_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o644;
const EXEC_MODE: u32 = 0o755;

pub(crate) fn unpack(bytes: &[u8], dest: &Path, limits: &BundleLimits, expect: Expect) -> Result<u64, BundleError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(BundleError::DestinationExists { path: dest.to_owned() });
    }
    let name = dest
        .file_name()
        .ok_or_else(|| {
            BundleError::io(
                "unpack into",
                dest,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "no folder name"),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // The staging folder is a dot-file sibling, on the same filesystem so that the final
    // rename is atomic. Dropping it (on every error path) removes it.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.unpack-"))
        .tempdir_in(parent)
        .map_err(|e| BundleError::io("create a staging folder in", parent, e))?;
    let root = staging.path().to_owned();

    let mut sink = DiskSink::new(root.clone());
    let walked = walk::walk(bytes, limits, &mut sink, expect)?;
    for (path, target) in &walked.symlinks {
        sink.ensure_folder(path.parent())?;
        let at = root.join(path.as_str());
        std::os::unix::fs::symlink(target, &at).map_err(|e| BundleError::io("create the symlink", at, e))?;
    }
    set_mode(&root, DIR_MODE)?;

    match fs::rename(&root, dest) {
        Ok(()) => {
            // The folder now lives at `dest`: forget the staging guard instead of deleting.
            let _ = staging.keep();
            Ok(walked.unpacked_bytes)
        }
        // Another unpack of the same bundle won the race (rename refuses a non-empty target).
        Err(_) if fs::symlink_metadata(dest).is_ok() => Err(BundleError::DestinationExists { path: dest.to_owned() }),
        Err(err) => Err(BundleError::io("move the unpacked bundle to", dest, err)),
    }
}

/// Writes validated entries under `root`. Only ever called by the walk, after it checked
/// each path, so parent folders are always real folders this sink created itself.
struct DiskSink {
    root: PathBuf,
    folders: HashSet<String>,
    current: Option<(File, PathBuf, bool)>,
}

impl DiskSink {
    fn new(root: PathBuf) -> Self {
        DiskSink { root, folders: HashSet::new(), current: None }
    }

    /// Creates `folder` and its missing parents, each with mode 0755.
    fn ensure_folder(&mut self, folder: &str) -> Result<(), BundleError> {
        if folder.is_empty() || self.folders.contains(folder) {
            return Ok(());
        }
        let mut prefix = String::with_capacity(folder.len());
        for component in folder.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            if self.folders.contains(&prefix) {
                continue;
            }
            let at = self.root.join(&prefix);
            fs::DirBuilder::new()
                .mode(DIR_MODE)
                .create(&at)
                .map_err(|e| BundleError::io("create the folder", &at, e))?;
            set_mode(&at, DIR_MODE)?;
            self.folders.insert(prefix.clone());
        }
        Ok(())
    }
}

impl Sink for DiskSink {
    fn directory(&mut self, path: &EntryPath) -> Result<(), BundleError> {
        self.ensure_folder(path.as_str())
    }

    fn begin_file(&mut self, path: &EntryPath, executable: bool) -> Result<(), BundleError> {
        self.ensure_folder(path.parent())?;
        let at = self.root.join(path.as_str());
        // `create_new` (O_EXCL) also refuses to follow a symlink at the final component.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&at)
            .map_err(|e| BundleError::io("create the file", &at, e))?;
        self.current = Some((file, at, executable));
        Ok(())
    }

    fn write_chunk(&mut self, data: &[u8]) -> Result<(), BundleError> {
        if let Some((file, at, _)) = &mut self.current {
            file.write_all(data).map_err(|e| BundleError::io("write the file", at.clone(), e))?;
        }
        Ok(())
    }

    fn end_file(&mut self) -> Result<(), BundleError> {
        if let Some((file, at, executable)) = self.current.take() {
            drop(file);
            set_mode(&at, if executable { EXEC_MODE } else { FILE_MODE })?;
        }
        Ok(())
    }

    fn hard_link(&mut self, path: &EntryPath, target: &EntryPath) -> Result<(), BundleError> {
        self.ensure_folder(path.parent())?;
        let at = self.root.join(path.as_str());
        fs::hard_link(self.root.join(target.as_str()), &at).map_err(|e| BundleError::io("create the hard link", at, e))
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BundleError> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|e| BundleError::io("set permissions on", path, e))
}
