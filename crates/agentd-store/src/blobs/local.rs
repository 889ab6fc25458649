//! The local-directory blob store (`<root>/sha256/<hex>`). Writes go to
//! a temporary file first and are renamed into place, so a blob is complete or absent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use agentd_core::ResourceKind;
use sha2::{Digest, Sha256};

use super::StoredBlob;
use crate::{Result, StoreError};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Opens (creating) the directory. Blobs are tenants' code and output: the
    /// directories are created 0700 and the files 0600, readable by this user alone.
    pub fn open(root: &Path) -> Result<LocalBlobs> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = root.join("sha256");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|source| blob_err(&dir, source))?;
        Ok(LocalBlobs { root: root.to_path_buf() })
    }

    /// Writes, syncs and removes a hidden file where blobs go: whether a put would work
    /// now (a put of stored bytes writes nothing, so it cannot tell).
    pub fn probe_write(&self) -> Result<()> {
        let writer = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let probe = self.root.join("sha256").join(format!(".probe.{}.{writer}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&probe)?;
            file.write_all(b"probe")?;
            file.sync_all()?;
            std::fs::remove_file(&probe)
        };
        write().map_err(|source| blob_err(&probe, source))
    }

    /// Stores `bytes` and returns their digest, `sha256:<hex>`. Storing the same bytes
    /// twice is a no-op.
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let hex = hex::encode(Sha256::digest(bytes));
        let path = self.root.join("sha256").join(&hex);
        if !path.exists() {
            // Unique per writer, so two concurrent puts of the same bytes never share a temp file.
            let writer = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = self.root.join("sha256").join(format!(".{hex}.{}.{writer}.tmp", std::process::id()));
            let write = || -> std::io::Result<()> {
                use std::os::unix::fs::OpenOptionsExt;
                let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
                file.write_all(bytes)?;
                file.sync_all()?;
                std::fs::rename(&tmp, &path)
            };
            write().map_err(|source| blob_err(&path, source))?;
        }
        Ok(format!("sha256:{hex}"))
    }

    pub fn get(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.path(digest)?;
        std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound(ResourceKind::Blob),
            _ => blob_err(&path, source),
        })
    }

    /// Every complete blob in the directory. Temporary files of writes still under way (or
    /// of writers that died) are left out; the ones older than `stale_before_ms` (unix ms)
    /// are removed, since no writer takes that long.
    pub fn list(&self, stale_before_ms: i64) -> Result<Vec<StoredBlob>> {
        let dir = self.root.join("sha256");
        let entries = std::fs::read_dir(&dir).map_err(|source| blob_err(&dir, source))?;
        let mut blobs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| blob_err(&dir, source))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                // Removed since the listing (another replica's sweep): nothing to do.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(blob_err(&entry.path(), source)),
            };
            let modified_ms = meta.modified().ok().map_or(i64::MAX, unix_ms);
            if name.starts_with('.') && name.ends_with(".tmp") {
                if modified_ms < stale_before_ms {
                    remove_if_present(&entry.path())?;
                }
                continue;
            }
            let digest = format!("sha256:{name}");
            if self.path(&digest).is_ok() {
                blobs.push(StoredBlob { digest, size: meta.len(), modified_ms });
            }
        }
        Ok(blobs)
    }

    /// Deletes the blob `digest`; one already gone is no error.
    pub fn delete(&self, digest: &str) -> Result<()> {
        remove_if_present(&self.path(digest)?)
    }

    /// Where the blob with `digest` lives; rejects anything that is not a sha256 digest.
    pub fn path(&self, digest: &str) -> Result<PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| StoreError::corrupt("digest", digest))?;
        Ok(self.root.join("sha256").join(hex))
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(blob_err(path, e)),
        _ => Ok(()),
    }
}

fn unix_ms(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn blob_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::File { path: path.display().to_string(), source }
}
