//! Dependency builds in the store: one per tenant and digest, claimed under a lease,
//! fenced on `(id, lease_owner, attempt)`, put back when the worker vanished, and
//! activating the versions that waited for them unless a newer one is active.

use std::time::Duration;

use agentd_core::queue::{BuildLease, BuildOutcome};
use agentd_core::{BuildStatus, Slug, TenantScope, Visibility};
use agentd_store::{NewAgent, NewBuild, NewVersion, Store};
use agentd_test_support::{Backend, on_both_stores};

use super::{open, tenant};

fn wanted(digest: &str) -> NewBuild {
    NewBuild {
        digest: digest.into(),
        bundle_digest: "sha256:aa".into(),
        runtime: "python".into(),
        plan: serde_json::json!({"installer": "pip"}),
        installer: "pip install -r requirements.txt".into(),
        warnings: vec![],
    }
}

async fn agent(store: &Store, ctx: &TenantScope, slug: &str) -> Slug {
    let slug = Slug::parse(slug).unwrap();
    let new = NewAgent {
        slug: slug.clone(),
        name: "a".into(),
        description: None,
        tags: vec![],
        visibility: Visibility::Private,
    };
    store.agent_create(ctx, new, 10).await.unwrap();
    slug
}

async fn deploy(store: &Store, ctx: &TenantScope, slug: &Slug, build: Option<NewBuild>) -> agentd_core::AgentVersion {
    let new = NewVersion {
        digest: "sha256:aa".into(),
        manifest: serde_json::json!({}),
        size_bytes: 1,
        activate: true,
        build,
    };
    store.version_create(ctx, slug, new).await.unwrap()
}

fn ready() -> BuildOutcome {
    BuildOutcome::Ready { archive_digest: "sha256:bb".into(), installed_bytes: 10 }
}

on_both_stores!(one_build_per_tenant_and_digest_activates_its_waiting_versions_when_ready);
async fn one_build_per_tenant_and_digest_activates_its_waiting_versions_when_ready(backend: Backend) {
    let (store, _db) = open(backend).await;
    let alpha = tenant(&store, "alpha").await;
    let beta = tenant(&store, "beta").await;
    let slug = agent(&store, &alpha, "a").await;
    let other = agent(&store, &alpha, "b").await;
    let theirs = agent(&store, &beta, "a").await;
    let plain = deploy(&store, &alpha, &slug, None).await;
    assert_eq!((plain.build.status, plain.build.id), (BuildStatus::Ready, None));
    let v2 = deploy(&store, &alpha, &slug, Some(wanted("sha256:d1"))).await;
    assert_eq!(v2.build.status, BuildStatus::Pending);
    assert_eq!(store.agent_get(&alpha, &slug).await.unwrap().active_version, Some(1), "not active before ready");
    let shared = deploy(&store, &alpha, &other, Some(wanted("sha256:d1"))).await;
    assert_eq!(shared.build.id, v2.build.id, "the tenant's agents share one build");
    let foreign = deploy(&store, &beta, &theirs, Some(wanted("sha256:d1"))).await;
    assert_ne!(foreign.build.id, v2.build.id, "never across tenants");

    let first = store.build_claim_unscoped("w1", Duration::from_secs(30)).await.unwrap().unwrap();
    let second = store.build_claim_unscoped("w1", Duration::from_secs(30)).await.unwrap().unwrap();
    assert!(store.build_claim_unscoped("w1", Duration::from_secs(30)).await.unwrap().is_none());
    let mine = if Some(&first.build_id) == v2.build.id.as_ref() { first } else { second };
    let lease = BuildLease { build_id: mine.build_id.clone(), lease_owner: "w1".into(), attempt: mine.attempt };
    let stale = BuildLease { attempt: mine.attempt + 1, ..lease.clone() };
    assert!(!store.build_finish(&stale, &ready()).await.unwrap(), "fenced on the attempt");
    let lines = [("stdout".to_owned(), "Collecting six".to_owned())];
    assert!(store.build_log_append(&lease, &lines, Duration::from_secs(30)).await.unwrap());
    assert!(store.build_finish(&lease, &ready()).await.unwrap());
    assert!(!store.build_finish(&lease, &ready()).await.unwrap(), "finishes once");
    assert!(!store.build_log_append(&lease, &lines, Duration::from_secs(30)).await.unwrap(), "no log after the end");

    assert_eq!(store.agent_get(&alpha, &slug).await.unwrap().active_version, Some(2));
    assert_eq!(store.agent_get(&alpha, &other).await.unwrap().active_version, Some(1));
    assert_eq!(store.agent_get(&beta, &theirs).await.unwrap().active_version, None, "beta's build is its own");
    let log = store.build_log(&alpha, &mine.build_id, 0, 100).await.unwrap();
    assert_eq!(log.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(), ["Collecting six"]);
    assert!(store.build_get(&beta, &mine.build_id).await.is_err(), "another tenant's build is not found");
    let cached = deploy(&store, &alpha, &slug, Some(wanted("sha256:d1"))).await;
    assert_eq!(cached.build.status, BuildStatus::Ready, "a ready build is reused at once");
    assert_eq!(store.agent_get(&alpha, &slug).await.unwrap().active_version, Some(3));
}

on_both_stores!(a_build_whose_worker_vanished_starts_again_then_fails);
async fn a_build_whose_worker_vanished_starts_again_then_fails(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let slug = agent(&store, &ctx, "a").await;
    let version = deploy(&store, &ctx, &slug, Some(wanted("sha256:d1"))).await;
    for start in 1..=3 {
        let claim = store.build_claim_unscoped("gone", Duration::from_millis(1)).await.unwrap().unwrap();
        assert_eq!(claim.attempt, start);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.builds_recover_expired_unscoped().await.unwrap(), 1);
    }
    assert!(store.build_claim_unscoped("w", Duration::from_secs(30)).await.unwrap().is_none());
    let agent = store.agent_get(&ctx, &slug).await.unwrap();
    let failed = store.version_get(&ctx, &agent, version.version).await.unwrap();
    assert_eq!(failed.build.status, BuildStatus::Failed);
    assert!(failed.build.error.unwrap_or_default().contains("lost 3 times"));
    let retried = deploy(&store, &ctx, &slug, Some(wanted("sha256:d1"))).await;
    assert_eq!(retried.build.status, BuildStatus::Pending, "a failed build is never reused: deploying builds anew");
    assert_ne!(retried.build.id, version.build.id);
}

on_both_stores!(a_released_build_is_pending_again_without_spending_a_start);
async fn a_released_build_is_pending_again_without_spending_a_start(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let slug = agent(&store, &ctx, "a").await;
    deploy(&store, &ctx, &slug, Some(wanted("sha256:d1"))).await;
    let claim = store.build_claim_unscoped("w1", Duration::from_secs(30)).await.unwrap().unwrap();
    let lease = BuildLease { build_id: claim.build_id.clone(), lease_owner: "w1".into(), attempt: claim.attempt };
    assert!(store.build_release(&lease).await.unwrap());
    assert!(!store.build_release(&lease).await.unwrap(), "released once");
    let again = store.build_claim_unscoped("w2", Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!((again.build_id, again.attempt), (claim.build_id, 1));
}
