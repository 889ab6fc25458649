//! Reading the two archive formats as one stream of entries.
//!
//! This layer only decodes: it turns a `.tar.gz` or a `.zip` into [`RawEntry`] values with
//! the names and link targets still as untrusted bytes, and leaves every judgement about
//! them to [`crate::walk`]. It does enforce one limit itself: the decompressed tar stream is
//! capped, because the tar reader buffers GNU long names and PAX headers before any entry
//! reaches the walker, and a gzip bomb hidden in such a header must stop early as well.

use std::cell::Cell;
use std::io::{self, Cursor, Read};
use std::rc::Rc;

use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};
use tar::EntryType;

use crate::{BundleError, BundleLimits, SizeLimit};

/// Longest symlink target read from a zip entry's data, in bytes.
const MAX_ZIP_LINK_TARGET: u64 = 4096;
/// Room per entry for tar headers, padding and long-name records in the raw stream cap.
const TAR_OVERHEAD_PER_ENTRY: u64 = 2048;

/// The container format, told apart by its first bytes, never by a file name or header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    TarGz,
    Zip,
}

impl ArchiveFormat {
    /// Detects the format from the magic bytes: gzip `1f 8b`, zip `PK\x03\x04` (or
    /// `PK\x05\x06` for an empty zip, which then fails for its missing manifest).
    pub fn detect(bytes: &[u8]) -> Option<ArchiveFormat> {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            Some(ArchiveFormat::TarGz)
        } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            Some(ArchiveFormat::Zip)
        } else {
            None
        }
    }
}

impl std::fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArchiveFormat::TarGz => "tar.gz",
            ArchiveFormat::Zip => "zip",
        })
    }
}

/// What an entry is, as the archive describes it.
pub(crate) enum RawKind {
    Directory,
    /// A regular file; `mode` holds its permission bits as stored.
    File {
        mode: u32,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// A tar hard link; the target is a path from the archive root.
    HardLink {
        target: Vec<u8>,
    },
    /// Metadata that is not a file (tar global PAX headers): counted, then ignored.
    Metadata,
    Unsupported {
        kind: &'static str,
    },
}

/// One entry, with its content still unread.
pub(crate) struct RawEntry<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) kind: RawKind,
    /// The size the archive declares; the content may still turn out longer or shorter.
    pub(crate) declared_size: u64,
    pub(crate) content: &'a mut dyn Read,
}

/// Calls `visit` for each entry of the archive, in archive order.
pub(crate) fn for_each_entry(
    bytes: &[u8],
    format: ArchiveFormat,
    limits: &BundleLimits,
    visit: &mut dyn FnMut(RawEntry<'_>) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    match format {
        ArchiveFormat::TarGz => for_each_tar_entry(bytes, limits, visit),
        ArchiveFormat::Zip => for_each_zip_entry(bytes, limits, visit),
    }
}

fn for_each_tar_entry(
    bytes: &[u8],
    limits: &BundleLimits,
    visit: &mut dyn FnMut(RawEntry<'_>) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    let exceeded = Rc::new(Cell::new(false));
    let cap = limits
        .max_unpacked_bytes
        .saturating_add(u64::from(limits.max_entries).saturating_mul(TAR_OVERHEAD_PER_ENTRY))
        .saturating_add(1 << 20);
    let stream = CappedReader { inner: GzDecoder::new(bytes), left: cap, exceeded: Rc::clone(&exceeded) };
    // Errors surface wherever the cap happens to be hit (inside the tar reader or inside
    // `visit`), so every error is checked against the flag to report the real cause.
    let classify = |err: BundleError| -> BundleError {
        if exceeded.get() {
            BundleError::TooLarge {
                limit: SizeLimit::UnpackedBytes,
                seen: limits.max_unpacked_bytes,
                max: limits.max_unpacked_bytes,
            }
        } else {
            err
        }
    };
    let mut archive = tar::Archive::new(stream);
    let entries = archive.entries().map_err(|e| classify(BundleError::unreadable(e)))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| classify(BundleError::unreadable(e)))?;
        let kind = tar_kind(&entry).map_err(&classify)?;
        let name = entry.path_bytes().into_owned();
        let declared_size = entry.size();
        visit(RawEntry { name: &name, kind, declared_size, content: &mut entry }).map_err(&classify)?;
    }
    // The tar reader stops at the end-of-archive marker, before the gzip trailer. Reading
    // on to the end makes the decoder check the trailer's CRC, so a bundle corrupted in
    // transit is refused here instead of running with damaged files.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| classify(BundleError::unreadable(e)))?;
    Ok(())
}

fn tar_kind<R: Read>(entry: &tar::Entry<'_, R>) -> Result<RawKind, BundleError> {
    let header = entry.header();
    let link_target = || entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
    Ok(match header.entry_type() {
        EntryType::Regular | EntryType::Continuous => {
            RawKind::File { mode: header.mode().map_err(BundleError::unreadable)? }
        }
        EntryType::Directory => RawKind::Directory,
        EntryType::Symlink => RawKind::Symlink { target: link_target() },
        EntryType::Link => RawKind::HardLink { target: link_target() },
        EntryType::XGlobalHeader => RawKind::Metadata,
        EntryType::Char => RawKind::Unsupported { kind: "character device" },
        EntryType::Block => RawKind::Unsupported { kind: "block device" },
        EntryType::Fifo => RawKind::Unsupported { kind: "fifo" },
        EntryType::GNUSparse => RawKind::Unsupported { kind: "sparse file" },
        _ => RawKind::Unsupported { kind: "tar entry of an unknown type" },
    })
}

fn for_each_zip_entry(
    bytes: &[u8],
    limits: &BundleLimits,
    visit: &mut dyn FnMut(RawEntry<'_>) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(BundleError::unreadable)?;
    // The central directory is already parsed, so the count is known before any content
    // is inflated.
    let count = archive.len();
    if count as u64 > u64::from(limits.max_entries) {
        return Err(BundleError::TooLarge {
            limit: SizeLimit::Entries,
            seen: count as u64,
            max: u64::from(limits.max_entries),
        });
    }
    for index in 0..count {
        let mut file = archive.by_index(index).map_err(BundleError::unreadable)?;
        let name = file.name().map_err(BundleError::unreadable)?.into_owned();
        let kind = zip_kind(&mut file)?;
        let declared_size = file.size();
        visit(RawEntry { name: name.as_bytes(), kind, declared_size, content: &mut file })?;
    }
    Ok(())
}

fn zip_kind<R: Read>(file: &mut zip::read::ZipFile<'_, R>) -> Result<RawKind, BundleError> {
    if file.is_dir() {
        return Ok(RawKind::Directory);
    }
    // Zips made on Windows carry no Unix mode: those entries are plain files.
    let mode = file.unix_mode().unwrap_or(0o100644);
    Ok(match mode & 0o170000 {
        0 | 0o100000 => RawKind::File { mode },
        0o040000 => RawKind::Directory,
        0o120000 => {
            let mut target = Vec::new();
            file.by_ref().take(MAX_ZIP_LINK_TARGET + 1).read_to_end(&mut target).map_err(BundleError::unreadable)?;
            RawKind::Symlink { target }
        }
        0o010000 => RawKind::Unsupported { kind: "fifo" },
        0o020000 => RawKind::Unsupported { kind: "character device" },
        0o060000 => RawKind::Unsupported { kind: "block device" },
        0o140000 => RawKind::Unsupported { kind: "socket" },
        _ => RawKind::Unsupported { kind: "zip entry of an unknown type" },
    })
}

/// Fails reads once more than `left` bytes came through, and records that it did.
struct CappedReader<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Distinguish a stream that ends exactly at the cap from one that goes on.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.exceeded.set(true);
            return Err(io::Error::other("decompressed bundle is over the limit"));
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..want])?;
        self.left -= read as u64;
        Ok(read)
    }
}
