//! The blob sweep: a blob no row refers to goes, one a row refers to or a writer marked
//! within the grace period stays; a deleted agent's versions are purged once no run needs
//! them. On both engines, with the local directory and with S3.

use std::time::{Duration, SystemTime};

use agentd_core::{Slug, Timestamp};
use agentd_store::{BlobLocation, Blobs, S3Connection, Store};
use bytes::Bytes;

use agentd_test_support::{Backend, on_both_stores};

use crate::{agent_with_bundle, new_invocation, open, tenant};

const HOUR_MS: i64 = 3600 * 1000;

/// Three blobs written "two hours ago": one nothing refers to, one a version refers to,
/// one a writer marked just now. A sweep with an hour's grace deletes the first only.
async fn sweep_keeps_referenced_and_marked_blobs(store: &Store, blobs: &Blobs, backdate: impl Fn(&str)) {
    let ctx = tenant(store, "alpha").await;
    let orphan = blobs.put(Bytes::from_static(b"nobody's")).await.unwrap();
    let bundle = blobs.put(Bytes::from_static(b"a version's bundle")).await.unwrap();
    agent_with_bundle(store, &ctx, "kept", &bundle).await;
    let marked = agentd_store::digest_of(b"being written");
    store.blob_write_mark_unscoped(&marked).await.unwrap();
    blobs.put(Bytes::from_static(b"being written")).await.unwrap();
    for digest in [&orphan, &bundle, &marked] {
        backdate(digest);
    }
    let cutoff = Timestamp::now().plus_ms(-HOUR_MS);
    let collected = store.blobs_collect_unscoped(blobs, cutoff).await.unwrap();
    assert_eq!((collected.deleted, collected.failed), (1, 0), "{collected:?}");
    assert!(blobs.get(&orphan).await.is_err(), "nothing referred to it");
    assert!(blobs.get(&bundle).await.is_ok(), "a version refers to it");
    assert!(blobs.get(&marked).await.is_ok(), "its writer marked it within the grace period");

    // Once the mark is older than the grace period, the unreferenced blob goes too.
    let later = Timestamp::now().plus_ms(1000);
    assert_eq!(store.blobs_collect_unscoped(blobs, later).await.unwrap().deleted, 1);
    assert!(blobs.get(&marked).await.is_err());
    assert!(blobs.get(&bundle).await.is_ok());
}

on_both_stores!(the_sweep_deletes_only_blobs_no_row_or_fresh_mark_holds_in_a_directory);
async fn the_sweep_deletes_only_blobs_no_row_or_fresh_mark_holds_in_a_directory(backend: Backend) {
    let (store, _db) = open(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::open(&BlobLocation::Local(dir.path().to_path_buf()), &S3Connection::default()).unwrap();
    // A temporary file of a writer that died long ago goes as well.
    let stale_tmp = dir.path().join("sha256/.abc.1.0.tmp");
    std::fs::write(&stale_tmp, b"half").unwrap();
    let backdate = |path: &std::path::Path| {
        let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(two_hours_ago).unwrap();
    };
    backdate(&stale_tmp);
    let root = dir.path().to_path_buf();
    sweep_keeps_referenced_and_marked_blobs(&store, &blobs, |digest| {
        backdate(&root.join("sha256").join(digest.trim_start_matches("sha256:")))
    })
    .await;
    assert!(!stale_tmp.exists());
}

#[cfg(feature = "s3")]
on_both_stores!(the_sweep_deletes_only_blobs_no_row_or_fresh_mark_holds_in_s3);
#[cfg(feature = "s3")]
async fn the_sweep_deletes_only_blobs_no_row_or_fresh_mark_holds_in_s3(backend: Backend) {
    let Some(server) = agentd_test_support::S3Server::start("agentd-sweep") else { return };
    let env: std::collections::HashMap<_, _> = agentd_test_support::aws_env(&server).into_iter().collect();
    let connection = S3Connection {
        region: env.get("AWS_REGION").cloned(),
        endpoint: env.get("AWS_ENDPOINT_URL").cloned(),
        access_key_id: env.get("AWS_ACCESS_KEY_ID").cloned(),
        secret_access_key: env.get("AWS_SECRET_ACCESS_KEY").cloned(),
        session_token: None,
        allow_http: true,
    };
    let location = BlobLocation::parse(Some("s3://agentd-sweep/swept"), "/unused".as_ref()).unwrap();
    let blobs = Blobs::open(&location, &connection).unwrap();
    let (store, _db) = open(backend).await;
    // An object's time cannot be set back; instead the sweep below looks from the future,
    // with marks made "now" still within its grace period.
    let ctx = tenant(&store, "alpha").await;
    let orphan = blobs.put(Bytes::from_static(b"nobody's")).await.unwrap();
    let bundle = blobs.put(Bytes::from_static(b"a version's bundle")).await.unwrap();
    agent_with_bundle(&store, &ctx, "kept", &bundle).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = Timestamp::now();
    let marked = agentd_store::digest_of(b"being written");
    store.blob_write_mark_unscoped(&marked).await.unwrap();
    blobs.put(Bytes::from_static(b"being written")).await.unwrap();
    assert_eq!(blobs.list(cutoff).await.unwrap().len(), 3);
    // Only blobs written before the cutoff are candidates: the marked one is newer.
    let collected = store.blobs_collect_unscoped(&blobs, cutoff).await.unwrap();
    assert_eq!(collected.deleted, 1, "{collected:?}");
    assert!(blobs.get(&orphan).await.is_err());
    assert!(blobs.get(&bundle).await.is_ok());
    assert!(blobs.get(&marked).await.is_ok());
}

on_both_stores!(a_deleted_agents_versions_are_purged_once_no_unfinished_run_needs_them);
async fn a_deleted_agents_versions_are_purged_once_no_unfinished_run_needs_them(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    agent_with_bundle(&store, &ctx, "idle", "sha256:01").await;
    let (busy, version) = agent_with_bundle(&store, &ctx, "busy", "sha256:02").await;
    store.invocation_enqueue(&ctx, &busy, &version, new_invocation(1, None), 100).await.unwrap();
    for slug in ["idle", "busy"] {
        store.agent_delete(&ctx, &Slug::parse(slug).unwrap()).await.unwrap();
    }
    let (used, _) = store.storage_used(&ctx, "").await.unwrap();
    assert_eq!(used, 0, "a deleted agent's versions count no more");
    // Within the grace period since the deletion, nothing goes.
    let an_hour_ago = Timestamp::now().plus_ms(-HOUR_MS);
    assert_eq!(store.versions_of_deleted_agents_purge_unscoped(an_hour_ago).await.unwrap(), 0);
    // After it, the idle agent's version goes; the queued run keeps the busy one's.
    let later = Timestamp::now().plus_ms(1000);
    assert_eq!(store.versions_of_deleted_agents_purge_unscoped(later).await.unwrap(), 1);
    assert_eq!(store.versions_of_deleted_agents_purge_unscoped(later).await.unwrap(), 0);
}
