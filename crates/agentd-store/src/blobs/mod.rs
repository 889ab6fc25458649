//! Content-addressed blob storage for bundles and artifacts: a blob is named by the
//! SHA-256 of its bytes (`sha256:<hex>`), so writing the same bytes twice is a no-op and
//! a reader can verify what it got. Two places hold blobs:
//!
//! - a local directory (the default, `<data-dir>/blobs`), enough for one machine or for
//!   replicas sharing a file system;
//! - an S3-compatible bucket (cargo feature `s3`), which lets API replicas on different
//!   machines share bundles and artifacts. Remote workers never talk to it: they fetch
//!   and upload through the API with their worker token.

mod local;
#[cfg(feature = "s3")]
mod s3;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentd_core::ResourceKind;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

pub use local::LocalBlobs;

/// Where blobs live, parsed from `--blob-url` / `AGENTD_BLOB_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// `file:///srv/agentd/blobs` or a plain path.
    Local(PathBuf),
    /// `s3://bucket` or `s3://bucket/prefix`, reached as [`S3Connection`] says.
    S3 { bucket: String, prefix: String },
}

/// How to reach an S3-compatible service: the operator's settings (the binary reads them
/// from the standard `AWS_*` variables). `None` leaves a value to the service's default.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Connection {
    pub region: Option<String>,
    /// A custom endpoint (MinIO, a test server), e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Whether a plain-HTTP endpoint is acceptable.
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("S3Connection")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("session_token", &redacted(&self.session_token))
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl BlobLocation {
    /// Parses a blob URL; `None` and empty strings mean the local default under `data_dir`.
    /// A local path is taken as it is: the caller resolves relative paths at start.
    pub fn parse(url: Option<&str>, data_dir: &Path) -> Result<BlobLocation> {
        let url = url.map(str::trim).filter(|u| !u.is_empty());
        let Some(url) = url else { return Ok(BlobLocation::Local(data_dir.join("blobs"))) };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = !bucket.is_empty()
                && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
            if !valid_bucket {
                return Err(StoreError::Config(format!(
                    "blob URL `{url}`: the bucket name must be lowercase letters, digits, `-` and `.`"
                )));
            }
            let prefix = prefix.trim_matches('/').to_owned();
            return Ok(BlobLocation::S3 { bucket: bucket.to_owned(), prefix });
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        // Another scheme, or a `file://` URL without an absolute path (`file://relative`).
        let relative_file_url = url.starts_with("file://") && !Path::new(path).is_absolute();
        if path.contains("://") || relative_file_url {
            return Err(StoreError::Config(format!(
                "unsupported blob URL `{url}`; use file:///ABSOLUTE/PATH, a path, or s3://BUCKET[/PREFIX]"
            )));
        }
        Ok(BlobLocation::Local(PathBuf::from(path)))
    }
}

impl std::fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobLocation::Local(path) => write!(f, "{}", path.display()),
            BlobLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            BlobLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Handle to the blob store; cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    backend: Arc<Backend>,
}

enum Backend {
    Local(LocalBlobs),
    #[cfg(feature = "s3")]
    S3(s3::S3Blobs),
}

impl Blobs {
    /// Opens the store at `location` (`s3` says how to reach an S3 location); an S3
    /// location fails here when this build lacks the `s3` feature, so a
    /// misconfiguration shows at startup.
    pub fn open(location: &BlobLocation, s3: &S3Connection) -> Result<Blobs> {
        let backend = match location {
            BlobLocation::Local(path) => Backend::Local(LocalBlobs::open(path)?),
            #[cfg(feature = "s3")]
            BlobLocation::S3 { bucket, prefix } => Backend::S3(s3::S3Blobs::connect(bucket, prefix, s3)?),
            #[cfg(not(feature = "s3"))]
            BlobLocation::S3 { .. } => {
                let _ = s3;
                return Err(StoreError::Config(format!(
                    "blob URL `{location}` needs S3 support, which this binary was built without; \
                     rebuild with `cargo build --release --features s3`"
                )));
            }
        };
        Ok(Blobs { backend: Arc::new(backend) })
    }

    /// Whether a write of a new blob would succeed now: a file written and removed in a
    /// local directory; in S3 a small fixed object (`readiness probe`, the same key each
    /// time), which S3 writes anew on every put.
    pub async fn probe_write(&self) -> Result<()> {
        match &*self.backend {
            Backend::Local(local) => {
                let local = local.clone();
                let probed = tokio::task::spawn_blocking(move || local.probe_write()).await;
                probed.map_err(|e| StoreError::Config(format!("probing the blob store panicked: {e}")))?
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => {
                let probe = Bytes::from_static(b"agentd readiness probe\n");
                s3.put(&digest_of(&probe), probe).await
            }
        }
    }

    /// Stores `bytes` and returns their digest, `sha256:<hex>`.
    pub async fn put(&self, bytes: Bytes) -> Result<String> {
        let digest = digest_of(&bytes);
        match &*self.backend {
            Backend::Local(local) => {
                let local = local.clone();
                let stored = tokio::task::spawn_blocking(move || local.put(&bytes)).await;
                stored.map_err(|e| StoreError::Config(format!("writing a blob panicked: {e}")))??;
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.put(&digest, bytes).await?,
        }
        Ok(digest)
    }

    /// The bytes of the blob `digest`, verified against it. A missing blob is
    /// `NotFound { what: "blob" }`.
    pub async fn get(&self, digest: &str) -> Result<Bytes> {
        let key_hex = digest_hex(digest)?.to_owned();
        let bytes = match &*self.backend {
            Backend::Local(local) => {
                let local = local.clone();
                let digest = digest.to_owned();
                let read = tokio::task::spawn_blocking(move || local.get(&digest)).await;
                Bytes::from(read.map_err(|e| StoreError::Config(format!("reading a blob panicked: {e}")))??)
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.get(&key_hex).await?,
        };
        if hex::encode(Sha256::digest(&bytes)) != key_hex {
            return Err(StoreError::corrupt("blob", format!("{digest} does not match its bytes")));
        }
        Ok(bytes)
    }

    /// Every blob held, with its size and when it was last written. Local temporary
    /// files older than `stale_before` (of writers that died) are removed on the way.
    pub async fn list(&self, stale_before: agentd_core::Timestamp) -> Result<Vec<StoredBlob>> {
        match &*self.backend {
            Backend::Local(local) => {
                let local = local.clone();
                let listed = tokio::task::spawn_blocking(move || local.list(stale_before.unix_ms())).await;
                listed.map_err(|e| StoreError::Config(format!("listing blobs panicked: {e}")))?
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.list().await,
        }
    }

    /// Deletes the blob `digest` (gone already: no error). Only the blob sweep calls this,
    /// under the lock that keeps it from racing a writer (`Store::blob_collect_unscoped`).
    pub(crate) async fn delete(&self, digest: &str) -> Result<()> {
        let hex = digest_hex(digest)?;
        match &*self.backend {
            Backend::Local(local) => {
                let local = local.clone();
                let digest = format!("sha256:{hex}");
                let deleted = tokio::task::spawn_blocking(move || local.delete(&digest)).await;
                deleted.map_err(|e| StoreError::Config(format!("deleting a blob panicked: {e}")))?
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.delete(hex).await,
        }
    }
}

/// A blob as the blob store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub digest: String,
    pub size: u64,
    /// When it was last written, unix ms (as the file system or the bucket says).
    pub modified_ms: i64,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:<hex>` digest; anything else is rejected, so a digest can
/// never name a path or key outside the blob namespace.
fn digest_hex(digest: &str) -> Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .ok_or_else(|| StoreError::NotFound(ResourceKind::Blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_urls_parse_to_locations() {
        let data = Path::new("/data");
        assert_eq!(BlobLocation::parse(None, data).unwrap(), BlobLocation::Local("/data/blobs".into()));
        assert_eq!(BlobLocation::parse(Some(" "), data).unwrap(), BlobLocation::Local("/data/blobs".into()));
        assert_eq!(BlobLocation::parse(Some("file:///srv/b"), data).unwrap(), BlobLocation::Local("/srv/b".into()));
        assert_eq!(
            BlobLocation::parse(Some("s3://my-bucket/agentd/"), data).unwrap(),
            BlobLocation::S3 { bucket: "my-bucket".into(), prefix: "agentd".into() }
        );
        assert_eq!(
            BlobLocation::parse(Some("s3://b"), data).unwrap(),
            BlobLocation::S3 { bucket: "b".into(), prefix: String::new() }
        );
        assert!(BlobLocation::parse(Some("s3://"), data).is_err());
        assert!(BlobLocation::parse(Some("s3://Bad_Bucket"), data).is_err());
        assert!(BlobLocation::parse(Some("gs://bucket"), data).is_err());
        assert!(BlobLocation::parse(Some("file://relative/dir"), data).is_err());
        assert_eq!(BlobLocation::parse(Some("./blobs"), data).unwrap(), BlobLocation::Local("./blobs".into()));
    }

    #[test]
    fn only_sha256_digests_name_blobs() {
        let hex = "a".repeat(64);
        assert_eq!(digest_hex(&format!("sha256:{hex}")).unwrap(), hex);
        assert!(digest_hex(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(digest_hex("sha256:../../etc/passwd").is_err());
        assert!(digest_hex(&hex).is_err());
    }
}
