//! Blobs in an S3-compatible bucket through `object_store`. Keys are
//! `<prefix>/sha256/<hex>`, the same layout as the local directory, so a bucket can be
//! seeded by copying a data dir's `blobs/` into it.

use agentd_core::ResourceKind;
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{S3Connection, StoredBlob};
use crate::{Result, StoreError};

pub(super) struct S3Blobs {
    bucket: AmazonS3,
    prefix: String,
}

impl S3Blobs {
    /// A client of `bucket` as `connection` says; nothing is read from the environment.
    pub(super) fn connect(bucket: &str, prefix: &str, connection: &S3Connection) -> Result<S3Blobs> {
        // The HTTP client needs a TLS provider; the binary installs ring at start, and a
        // library user may not have, so make sure one is there (a second install is a no-op).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket).with_allow_http(connection.allow_http);
        let settings = [
            (AmazonS3ConfigKey::Region, &connection.region),
            (AmazonS3ConfigKey::Endpoint, &connection.endpoint),
            (AmazonS3ConfigKey::AccessKeyId, &connection.access_key_id),
            (AmazonS3ConfigKey::SecretAccessKey, &connection.secret_access_key),
            (AmazonS3ConfigKey::Token, &connection.session_token),
        ];
        for (key, value) in settings {
            if let Some(value) = value {
                builder = builder.with_config(key, value);
            }
        }
        let bucket = builder.build().map_err(|e| StoreError::Config(format!("S3 blob store s3://{bucket}: {e}")))?;
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

impl S3Blobs {
    /// Every blob under the prefix (one listing, paged by the client).
    pub(super) async fn list(&self) -> Result<Vec<StoredBlob>> {
        let dir = self.key("");
        let objects: Vec<object_store::ObjectMeta> =
            self.bucket.list(Some(&dir)).try_collect().await.map_err(|e| object_err(&dir, e))?;
        Ok(objects
            .into_iter()
            .filter_map(|meta| {
                let hex = meta.location.filename()?.to_owned();
                let digest = format!("sha256:{hex}");
                super::digest_hex(&digest).ok()?;
                Some(StoredBlob { digest, size: meta.size, modified_ms: meta.last_modified.timestamp_millis() })
            })
            .collect())
    }

    /// Deletes one blob; one already gone is no error.
    pub(super) async fn delete(&self, hex: &str) -> Result<()> {
        let key = self.key(hex);
        match self.bucket.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(object_err(&key, e)),
        }
    }
}

fn object_err(key: &ObjectPath, err: object_store::Error) -> StoreError {
    match err {
        object_store::Error::NotFound { .. } => StoreError::NotFound(ResourceKind::Blob),
        other => StoreError::ObjectStore { key: key.to_string(), detail: other.to_string() },
    }
}
