//! The blob store (local directory and S3) and artifact records.

use std::time::Duration;

use agentd_core::{Artifact, ArtifactName, PageBounds, PageRequest, ResourceKind};
use agentd_store::{BlobLocation, Blobs, NewArtifact, S3Connection, StoreError, digest_of};
use bytes::Bytes;

use agentd_test_support::{Backend, on_both_stores};
#[cfg(feature = "s3")]
use agentd_test_support::{S3Server, aws_env};

use crate::{agent_with_version, claim, new_invocation, open, tenant};

async fn round_trip(blobs: &Blobs) {
    let bytes = Bytes::from_static(b"bundle bytes");
    let digest = blobs.put(bytes.clone()).await.unwrap();
    assert_eq!(digest, digest_of(&bytes));
    assert_eq!(blobs.put(bytes.clone()).await.unwrap(), digest, "storing the same bytes again is a no-op");
    assert_eq!(blobs.get(&digest).await.unwrap(), bytes);
    let absent = digest_of(b"never stored");
    assert!(matches!(blobs.get(&absent).await, Err(StoreError::NotFound(ResourceKind::Blob))));
    assert!(matches!(blobs.get("sha256:../../etc/passwd").await, Err(StoreError::NotFound { .. })));
}

#[tokio::test]
async fn local_blobs_round_trip_and_refuse_bytes_that_do_not_match_their_digest() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::open(&BlobLocation::Local(dir.path().to_path_buf()), &S3Connection::default()).unwrap();
    round_trip(&blobs).await;
    let digest = blobs.put(Bytes::from_static(b"original")).await.unwrap();
    let file = dir.path().join("sha256").join(digest.trim_start_matches("sha256:"));
    std::fs::write(&file, b"tampered").unwrap();
    assert!(matches!(blobs.get(&digest).await, Err(StoreError::Corrupt { .. })));
}

#[cfg(feature = "s3")]
#[tokio::test]
async fn s3_blobs_round_trip_through_an_s3_compatible_server() {
    let Some(server) = S3Server::start("agentd-blobs") else { return };
    let env: std::collections::HashMap<_, _> = aws_env(&server).into_iter().collect();
    let connection = S3Connection {
        region: env.get("AWS_REGION").cloned(),
        endpoint: env.get("AWS_ENDPOINT_URL").cloned(),
        access_key_id: env.get("AWS_ACCESS_KEY_ID").cloned(),
        secret_access_key: env.get("AWS_SECRET_ACCESS_KEY").cloned(),
        session_token: None,
        allow_http: true,
    };
    let location = BlobLocation::parse(Some("s3://agentd-blobs/tenant-data"), "/unused".as_ref()).unwrap();
    let blobs = Blobs::open(&location, &connection).unwrap();
    round_trip(&blobs).await;
}

on_both_stores!(artifacts_are_recorded_under_the_lease_and_read_only_by_their_tenant);
async fn artifacts_are_recorded_under_the_lease_and_read_only_by_their_tenant(backend: Backend) {
    let (store, _db) = open(backend).await;
    let a = tenant(&store, "alpha").await;
    let b = tenant(&store, "beta").await;
    let (agent, version) = agent_with_version(&store, &a, "echo").await;
    let inv =
        store.invocation_enqueue(&a, &agent, &version, new_invocation(5, None), 100).await.unwrap().into_invocation();
    let run = claim(&store, "w1", Duration::from_secs(30)).await.unwrap();
    let lease = run.lease();
    let report = NewArtifact { name: artifact_name("out/report.txt"), size: 5, digest: digest_of(b"hello") };
    assert!(store.artifact_record(&lease, &report).await.unwrap());
    let mut stale = lease.clone();
    stale.lease_owner = "someone-else".into();
    let other = NewArtifact { name: artifact_name("other.txt"), size: 1, digest: digest_of(b"x") };
    assert!(!store.artifact_record(&stale, &other).await.unwrap(), "a lease that is not current writes nothing");
    assert!(ArtifactName::parse("../escape").is_none(), "a name that is not a clean path cannot be recorded");
    // Written again (a later attempt would do this), the name keeps one row.
    let newer = NewArtifact { name: artifact_name("out/report.txt"), size: 6, digest: digest_of(b"hello!") };
    assert!(store.artifact_record(&lease, &newer).await.unwrap());

    let listed =
        store.artifacts_list(&a, &inv.id, &PageRequest::after_value(None, PageBounds::RESOURCES)).await.unwrap();
    assert_eq!(listed.data.len(), 1);
    let got: &Artifact = &listed.data[0];
    assert_eq!((got.name.as_str(), got.size, got.attempt), ("out/report.txt", 6, 1));
    assert_eq!(
        store.artifact_get(&a, &inv.id, &artifact_name("out/report.txt")).await.unwrap().digest,
        digest_of(b"hello!")
    );
    assert!(matches!(
        store.artifacts_list(&b, &inv.id, &PageRequest::after_value(None, PageBounds::RESOURCES)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.artifact_get(&b, &inv.id, &artifact_name("out/report.txt")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.artifact_get(&a, &inv.id, &artifact_name("missing")).await,
        Err(StoreError::NotFound { .. })
    ));
}

fn artifact_name(name: &str) -> ArtifactName {
    ArtifactName::parse(name).unwrap()
}
