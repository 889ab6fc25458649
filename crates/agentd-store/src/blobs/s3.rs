//! Blobs in an S3-compatible bucket through `object_store`. Keys are
//! `<prefix>/sha256/<hex>`, the same layout as the local directory, so a bucket can be
//! seeded by copying a data dir's `blobs/` into it.

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

use crate::{Result, StoreError};

pub(super) struct S3Blobs {
    bucket: AmazonS3,
    prefix: String,
}

impl S3Blobs {
    /// Credentials, region and endpoint come from the standard `AWS_*` variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
    /// `AWS_ALLOW_HTTP` for a plain-HTTP endpoint such as a local MinIO).
    pub(super) fn from_env(bucket: &str, prefix: &str) -> Result<S3Blobs> {
        // The HTTP client needs a TLS provider; the binary installs ring at start, and a
        // library user may not have, so make sure one is there (a second install is a no-op).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bucket = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| StoreError::Config(format!("S3 blob store s3://{bucket}: {e}")))?;
        Ok(S3Blobs { bucket, prefix: prefix.to_owned() })
    }

    fn key(&self, hex: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(format!("sha256/{hex}"))
        } else {
            ObjectPath::from(format!("{}/sha256/{hex}", self.prefix))
        }
    }

    pub(super) async fn put(&self, digest: &str, bytes: Bytes) -> Result<()> {
        let hex = digest.trim_start_matches("sha256:");
        let key = self.key(hex);
        self.bucket.put(&key, PutPayload::from_bytes(bytes)).await.map_err(|e| object_err(&key, e))?;
        Ok(())
    }

    pub(super) async fn get(&self, hex: &str) -> Result<Bytes> {
        let key = self.key(hex);
        let fetched = async { self.bucket.get(&key).await?.bytes().await };
        fetched.await.map_err(|e| object_err(&key, e))
    }
}

fn object_err(key: &ObjectPath, err: object_store::Error) -> StoreError {
    match err {
        object_store::Error::NotFound { .. } => StoreError::NotFound { what: "blob" },
        other => StoreError::ObjectStore { key: key.to_string(), detail: other.to_string() },
    }
}
