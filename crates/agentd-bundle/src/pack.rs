//! Packing a folder into a bundle (`agentd agents deploy DIR`).
//!
//! The output is a `.tar.gz` with paths relative to the folder and no `./` prefix. It is
//! reproducible: entries are sorted by name and carry mtime 0, uid/gid 0 and normalized
//! modes (`0755` for folders and executables, `0644` otherwise), so the same folder packs
//! to the same bytes and therefore the same digest, which lets the server deduplicate.
//!
//! `.git` (folder or file) and `__pycache__` folders are skipped at any depth;
//! `node_modules` is kept because a Node agent may ship its dependencies. Symlinks are kept
//! as links when their target is relative and stays inside the folder, refused otherwise.
//! The manifest is not checked here: call [`crate::inspect`] on the result for that.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use crate::BundleError;
use crate::entry_path::resolve_link_target;

/// Names never packed, at any depth.
const SKIPPED: [&str; 2] = [".git", "__pycache__"];

pub(crate) fn pack_dir(dir: &Path) -> Result<Vec<u8>, BundleError> {
    let meta = fs::metadata(dir).map_err(|e| BundleError::io("read the folder", dir, e))?;
    if !meta.is_dir() {
        let err = io::Error::new(io::ErrorKind::NotADirectory, "not a folder");
        return Err(BundleError::io("pack", dir, err));
    }
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    add_folder(&mut builder, dir, "")?;
    let finish = |e| BundleError::io("write the archive for", dir, e);
    let encoder = builder.into_inner().map_err(finish)?;
    encoder.finish().map_err(finish)
}

type Builder = tar::Builder<GzEncoder<Vec<u8>>>;

/// Adds the contents of `folder`, whose path inside the bundle is `prefix`.
fn add_folder(builder: &mut Builder, folder: &Path, prefix: &str) -> Result<(), BundleError> {
    let listing = fs::read_dir(folder).map_err(|e| BundleError::io("list", folder, e))?;
    let mut children = Vec::new();
    for child in listing {
        children.push(child.map_err(|e| BundleError::io("list", folder, e))?);
    }
    children.sort_by_key(|child| child.file_name());

    for child in children {
        let name = child.file_name();
        let path = child.path();
        let name = name.to_str().ok_or_else(|| BundleError::PathUnsafe {
            path: path.display().to_string(),
            reason: "is not valid UTF-8",
        })?;
        let kind = child.file_type().map_err(|e| BundleError::io("read the type of", &path, e))?;
        if name == ".git" || (kind.is_dir() && SKIPPED.contains(&name)) {
            continue;
        }
        let inside = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") };
        if kind.is_dir() {
            append(builder, EntryType::Directory, 0o755, 0, &format!("{inside}/"), io::empty())?;
            add_folder(builder, &path, &inside)?;
        } else if kind.is_file() {
            add_file(builder, &path, &inside)?;
        } else if kind.is_symlink() {
            add_symlink(builder, &path, prefix, &inside)?;
        } else {
            return Err(BundleError::EntryUnsupported { path: inside, kind: "special file (socket, fifo or device)" });
        }
    }
    Ok(())
}

fn add_file(builder: &mut Builder, path: &Path, inside: &str) -> Result<(), BundleError> {
    use std::os::unix::fs::PermissionsExt;
    let file = File::open(path).map_err(|e| BundleError::io("read", path, e))?;
    let meta = file.metadata().map_err(|e| BundleError::io("read", path, e))?;
    let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
    let size = meta.len();
    let content = ExactSize { inner: file.take(size), left: size };
    append(builder, EntryType::Regular, mode, size, inside, content).map_err(|e| match e {
        BundleError::Io { source, .. } => BundleError::io("pack", path, source),
        other => other,
    })
}

fn add_symlink(builder: &mut Builder, path: &Path, folder: &str, inside: &str) -> Result<(), BundleError> {
    let target = fs::read_link(path).map_err(|e| BundleError::io("read the link", path, e))?;
    let shown = target.display().to_string();
    let unsafe_link = |reason| BundleError::SymlinkUnsafe { path: inside.to_owned(), target: shown.clone(), reason };
    let target_text = target.to_str().ok_or_else(|| unsafe_link("has a target that is not valid UTF-8"))?;
    resolve_link_target(folder, target_text).map_err(unsafe_link)?;
    let mut header = base_header(EntryType::Symlink, 0o777, 0);
    builder.append_link(&mut header, inside, target_text).map_err(|e| BundleError::io("pack the link", path, e))
}

fn append(
    builder: &mut Builder,
    kind: EntryType,
    mode: u32,
    size: u64,
    inside: &str,
    content: impl io::Read,
) -> Result<(), BundleError> {
    let mut header = base_header(kind, mode, size);
    builder.append_data(&mut header, inside, content).map_err(|e| BundleError::io("pack", inside, e))
}

/// A header with everything that varies between machines zeroed, for reproducibility.
fn base_header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Yields exactly the size written in the header, so a file that grows or shrinks while
/// it is packed fails the pack instead of producing a corrupt archive.
struct ExactSize<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactSize<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if read == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was being packed"));
        }
        self.left -= read as u64;
        Ok(read)
    }
}
