//! One pass over a bundle that checks everything, shared by `inspect` and `unpack`.
//!
//! The walk reads each entry once, in archive order, and decides whether it is safe before
//! handing it to a [`Sink`] (nothing for `inspect`, the disk for `unpack`). Its invariants,
//! which the disk writer relies on:
//!
//! - every name is an [`EntryPath`]: relative, no `..`, inside the root;
//! - no path appears twice (except a directory repeated), and no entry lies under a file
//!   or a symlink, so a parent folder on disk is always a real directory we created;
//! - file content is counted as it streams, so `max_unpacked_bytes` stops a gzip bomb
//!   after at most one chunk over the limit;
//! - symlinks are only recorded during the walk; their targets are checked once the whole
//!   bundle is known (a target may traverse links defined later) and they are created
//!   last, so no write ever goes through one.

use std::collections::BTreeMap;
use std::io::Read;

use crate::archive::{self, RawEntry, RawKind};
use sha2::{Digest, Sha256};

use crate::dependencies::DEPENDENCY_FILES;
use crate::entry_path::{EntryPath, resolve_link_target};
use crate::error::shown;
use crate::links::check_symlinks;
use crate::{ArchiveFormat, BundleError, BundleLimits, Manifest, SizeLimit};

/// The manifest's file name at the bundle root.
pub(crate) const MANIFEST_PATH: &str = "agent.toml";
/// Largest accepted `agent.toml`, in bytes.
const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// Largest dependency file (`package-lock.json` of a big project) read at the root.
const MAX_DEPENDENCY_FILE_BYTES: usize = 16 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// Where validated entries go. The defaults do nothing, which is all `inspect` needs.
pub(crate) trait Sink {
    fn directory(&mut self, _path: &EntryPath) -> Result<(), BundleError> {
        Ok(())
    }
    fn begin_file(&mut self, _path: &EntryPath, _executable: bool) -> Result<(), BundleError> {
        Ok(())
    }
    fn write_chunk(&mut self, _data: &[u8]) -> Result<(), BundleError> {
        Ok(())
    }
    fn end_file(&mut self) -> Result<(), BundleError> {
        Ok(())
    }
    fn hard_link(&mut self, _path: &EntryPath, _target: &EntryPath) -> Result<(), BundleError> {
        Ok(())
    }
}

/// A sink that writes nothing.
pub(crate) struct Discard;
impl Sink for Discard {}

/// What the bundle holds at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Directory,
    File,
    Symlink(String),
}

/// What the walk expects at the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// An agent bundle: `agent.toml` and its entrypoint must be there.
    Bundle,
    /// Any tree of files (installed dependencies): no manifest.
    Tree,
}

/// The outcome of a successful walk.
pub(crate) struct Walked {
    /// `None` only for [`Expect::Tree`].
    pub(crate) manifest: Option<Manifest>,
    /// The dependency files found at the root, by name, with their content.
    pub(crate) dependency_files: BTreeMap<String, Vec<u8>>,
    /// Whether the bundle has a `wheels/` folder at its root (vendored packages).
    pub(crate) has_wheels: bool,
    /// `sha256:` over the paths and contents of the files under `wheels/`.
    pub(crate) wheels_digest: String,
    pub(crate) format: ArchiveFormat,
    pub(crate) unpacked_bytes: u64,
    pub(crate) files: u32,
    /// Symlinks to create once everything else is written: (path, target as stored).
    pub(crate) symlinks: Vec<(EntryPath, String)>,
}

/// Checks the whole bundle, feeding each accepted entry to `sink`.
pub(crate) fn walk(
    bytes: &[u8],
    limits: &BundleLimits,
    sink: &mut dyn Sink,
    expect: Expect,
) -> Result<Walked, BundleError> {
    // Before anything else: the size is known without decoding a byte.
    if bytes.len() as u64 > limits.max_bundle_bytes {
        return Err(BundleError::TooLarge {
            limit: SizeLimit::CompressedBytes,
            seen: bytes.len() as u64,
            max: limits.max_bundle_bytes,
        });
    }
    let format = ArchiveFormat::detect(bytes)
        .ok_or_else(|| BundleError::unreadable("its first bytes are neither a gzip nor a zip signature"))?;
    let mut state = WalkState {
        limits,
        sink,
        tree: BTreeMap::new(),
        symlinks: Vec::new(),
        entries: 0,
        unpacked_bytes: 0,
        files: 0,
        manifest: None,
        nested_manifest: None,
        dependency_files: BTreeMap::new(),
        wheels: Sha256::new(),
        expect,
    };
    archive::for_each_entry(bytes, format, limits, &mut |entry| state.visit(entry))?;
    state.finish(format)
}

struct WalkState<'a> {
    limits: &'a BundleLimits,
    sink: &'a mut dyn Sink,
    tree: BTreeMap<String, Node>,
    symlinks: Vec<(EntryPath, String)>,
    entries: u64,
    unpacked_bytes: u64,
    files: u32,
    manifest: Option<Vec<u8>>,
    nested_manifest: Option<String>,
    dependency_files: BTreeMap<String, Vec<u8>>,
    /// Hashes what `wheels/` holds, since offline installs read it.
    wheels: Sha256,
    expect: Expect,
}

impl WalkState<'_> {
    fn visit(&mut self, entry: RawEntry<'_>) -> Result<(), BundleError> {
        self.entries += 1;
        let max_entries = u64::from(self.limits.max_entries);
        if self.entries > max_entries {
            return Err(BundleError::TooLarge { limit: SizeLimit::Entries, seen: self.entries, max: max_entries });
        }
        if let RawKind::Metadata = entry.kind {
            return Ok(());
        }
        let path = EntryPath::parse(entry.name)
            .map_err(|reason| BundleError::PathUnsafe { path: shown(entry.name), reason })?;
        if let RawKind::Unsupported { kind } = entry.kind {
            return Err(BundleError::EntryUnsupported { path: path.as_str().to_owned(), kind });
        }
        if path.is_root() {
            return match entry.kind {
                RawKind::Directory => Ok(()),
                _ => Err(BundleError::PathUnsafe {
                    path: shown(entry.name),
                    reason: "names the bundle root itself but is not a directory",
                }),
            };
        }
        self.note_nested_manifest(&path);
        match entry.kind {
            RawKind::Directory => {
                self.insert(&path, Node::Directory)?;
                self.sink.directory(&path)
            }
            RawKind::File { mode } => {
                self.insert(&path, Node::File)?;
                self.copy_file(&path, mode & 0o111 != 0, entry.declared_size, entry.content)
            }
            RawKind::Symlink { target } => self.symlink(path, &target),
            RawKind::HardLink { target } => self.hard_link(&path, &target),
            RawKind::Metadata | RawKind::Unsupported { .. } => Ok(()),
        }
    }

    /// Records `path`, refusing duplicates and entries under a file or a symlink. Folders
    /// that only appear as a prefix are recorded too, so a later file of that name clashes.
    fn insert(&mut self, path: &EntryPath, node: Node) -> Result<(), BundleError> {
        for ancestor in path.ancestors() {
            match self.tree.get(ancestor) {
                None => {
                    self.tree.insert(ancestor.to_owned(), Node::Directory);
                }
                Some(Node::Directory) => {}
                Some(Node::File) => return Err(unsafe_path(path, "lies under a file")),
                Some(Node::Symlink(_)) => {
                    return Err(unsafe_path(path, "lies under a symlink in the bundle"));
                }
            }
        }
        match self.tree.get(path.as_str()) {
            None => {
                self.tree.insert(path.as_str().to_owned(), node);
                Ok(())
            }
            Some(Node::Directory) if node == Node::Directory => Ok(()),
            Some(_) => Err(unsafe_path(path, "appears more than once (or both as a folder and as a file)")),
        }
    }

    fn copy_file(
        &mut self,
        path: &EntryPath,
        executable: bool,
        declared_size: u64,
        content: &mut dyn Read,
    ) -> Result<(), BundleError> {
        let is_manifest = self.expect == Expect::Bundle && path.as_str() == MANIFEST_PATH;
        let is_dependency_file = self.expect == Expect::Bundle && DEPENDENCY_FILES.contains(&path.as_str());
        let is_vendored = self.expect == Expect::Bundle && path.as_str().starts_with("wheels/");
        if is_vendored {
            self.wheels.update((path.as_str().len() as u64).to_be_bytes());
            self.wheels.update(path.as_str().as_bytes());
        }
        if is_dependency_file && declared_size > MAX_DEPENDENCY_FILE_BYTES as u64 {
            return Err(dependency_file_too_large(path));
        }
        if is_manifest && declared_size > MAX_MANIFEST_BYTES as u64 {
            return Err(BundleError::manifest("agent.toml is larger than 64 KiB"));
        }
        // A declared size over the budget fails at once; the running count below catches
        // archives whose content is longer than declared.
        self.count_unpacked(declared_size, false)?;
        self.files = self.files.saturating_add(1);
        self.sink.begin_file(path, executable)?;
        let mut captured = Vec::new();
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = match content.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(BundleError::unreadable(err)),
            };
            self.count_unpacked(read as u64, true)?;
            let chunk = &buffer[..read];
            if is_manifest {
                if captured.len() + read > MAX_MANIFEST_BYTES {
                    return Err(BundleError::manifest("agent.toml is larger than 64 KiB"));
                }
                captured.extend_from_slice(chunk);
            }
            if is_vendored {
                self.wheels.update(chunk);
            }
            if is_dependency_file {
                if captured.len() + read > MAX_DEPENDENCY_FILE_BYTES {
                    return Err(dependency_file_too_large(path));
                }
                captured.extend_from_slice(chunk);
            }
            self.sink.write_chunk(chunk)?;
        }
        self.sink.end_file()?;
        if is_manifest {
            self.manifest = Some(captured);
        } else if is_dependency_file {
            self.dependency_files.insert(path.as_str().to_owned(), captured);
        }
        Ok(())
    }

    /// Checks `size` more bytes against the budget; with `commit`, also spends them.
    fn count_unpacked(&mut self, size: u64, commit: bool) -> Result<(), BundleError> {
        let total = self.unpacked_bytes.saturating_add(size);
        if total > self.limits.max_unpacked_bytes {
            return Err(BundleError::TooLarge {
                limit: SizeLimit::UnpackedBytes,
                seen: total,
                max: self.limits.max_unpacked_bytes,
            });
        }
        if commit {
            self.unpacked_bytes = total;
        }
        Ok(())
    }

    fn symlink(&mut self, path: EntryPath, raw_target: &[u8]) -> Result<(), BundleError> {
        let link_error =
            |reason| BundleError::SymlinkUnsafe { path: path.as_str().to_owned(), target: shown(raw_target), reason };
        let target = std::str::from_utf8(raw_target).map_err(|_| link_error("has a target that is not valid UTF-8"))?;
        resolve_link_target(path.parent(), target).map_err(link_error)?;
        if path.as_str() == MANIFEST_PATH {
            return Err(BundleError::manifest("agent.toml must be a regular file, not a symlink"));
        }
        self.insert(&path, Node::Symlink(target.to_owned()))?;
        self.symlinks.push((path, target.to_owned()));
        Ok(())
    }

    fn hard_link(&mut self, path: &EntryPath, raw_target: &[u8]) -> Result<(), BundleError> {
        let link_error =
            |reason| BundleError::SymlinkUnsafe { path: path.as_str().to_owned(), target: shown(raw_target), reason };
        // Tar stores hard link targets as paths from the archive root, and they must name
        // a regular file that came earlier: only then is the link's content known and safe.
        let target = EntryPath::parse(raw_target).map_err(link_error)?;
        if self.tree.get(target.as_str()) != Some(&Node::File) {
            return Err(link_error("must point at a regular file earlier in the bundle"));
        }
        if path.as_str() == MANIFEST_PATH {
            return Err(BundleError::manifest("agent.toml must be a regular file, not a link"));
        }
        self.insert(path, Node::File)?;
        self.files = self.files.saturating_add(1);
        self.sink.hard_link(path, &target)
    }

    /// Remembers `folder/agent.toml` for the "you zipped the folder" hint.
    fn note_nested_manifest(&mut self, path: &EntryPath) {
        if self.nested_manifest.is_none() && path.ancestors().count() == 1 && path.as_str().ends_with("/agent.toml") {
            self.nested_manifest = Some(path.as_str().to_owned());
        }
    }

    fn finish(self, format: ArchiveFormat) -> Result<Walked, BundleError> {
        check_symlinks(&self.tree, &self.symlinks)?;
        if self.expect == Expect::Tree {
            return Ok(Walked {
                manifest: None,
                dependency_files: BTreeMap::new(),
                has_wheels: false,
                wheels_digest: String::new(),
                format,
                unpacked_bytes: self.unpacked_bytes,
                files: self.files,
                symlinks: self.symlinks,
            });
        }
        if self.tree.get(MANIFEST_PATH) == Some(&Node::Directory) {
            return Err(BundleError::manifest("agent.toml must be a regular file, not a folder"));
        }
        let Some(text) = self.manifest else {
            return Err(BundleError::ManifestMissing { nested: self.nested_manifest });
        };
        let text = String::from_utf8(text).map_err(|_| BundleError::manifest("agent.toml is not valid UTF-8"))?;
        let manifest = Manifest::from_toml(&text)?;
        let found = match self.tree.get(&manifest.entrypoint) {
            Some(Node::File) => None,
            Some(Node::Directory) => Some("it is a directory"),
            Some(Node::Symlink(_)) => Some("it is a symlink"),
            None => Some("not found"),
        };
        if let Some(found) = found {
            return Err(BundleError::EntrypointMissing { entrypoint: manifest.entrypoint, found });
        }
        let has_wheels = self.tree.get("wheels") == Some(&Node::Directory);
        Ok(Walked {
            manifest: Some(manifest),
            dependency_files: self.dependency_files,
            has_wheels,
            wheels_digest: format!("sha256:{}", hex::encode(self.wheels.finalize())),
            format,
            unpacked_bytes: self.unpacked_bytes,
            files: self.files,
            symlinks: self.symlinks,
        })
    }
}

fn dependency_file_too_large(path: &EntryPath) -> BundleError {
    BundleError::DependenciesInvalid {
        reason: format!("{} is larger than {} MiB", path.as_str(), MAX_DEPENDENCY_FILE_BYTES >> 20),
    }
}

fn unsafe_path(path: &EntryPath, reason: &'static str) -> BundleError {
    BundleError::PathUnsafe { path: path.as_str().to_owned(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Archives can declare a size smaller than the content they then deliver (a zip's
    /// local header may lie); the running count must still stop the copy.
    #[test]
    fn content_longer_than_declared_is_still_counted() {
        let limits = BundleLimits { max_unpacked_bytes: 1 << 20, ..BundleLimits::default() };
        let mut state = WalkState {
            limits: &limits,
            sink: &mut Discard,
            tree: BTreeMap::new(),
            symlinks: Vec::new(),
            entries: 0,
            unpacked_bytes: 0,
            files: 0,
            manifest: None,
            nested_manifest: None,
            dependency_files: BTreeMap::new(),
            wheels: Sha256::new(),
            expect: Expect::Bundle,
        };
        let mut endless = std::io::repeat(0);
        let entry = RawEntry {
            name: b"data.bin",
            kind: RawKind::File { mode: 0o644 },
            declared_size: 0,
            content: &mut endless,
        };
        let err = state.visit(entry).err();
        assert!(matches!(err, Some(BundleError::TooLarge { limit: SizeLimit::UnpackedBytes, .. })));
        assert!(state.unpacked_bytes <= limits.max_unpacked_bytes);
    }
}
