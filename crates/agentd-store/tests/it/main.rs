//! Store tests against real SQLite files and PostgreSQL databases (from
//! `agentd-test-support`): tenancy filters, pagination, the queue's lease and fencing rules.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on the first surprise")]

use std::time::Duration;

use agentd_core::{
    Actor, Fault, InvocationStatus, PageBounds, PageRequest, RequestId, Role, Slug, TenantLimits, TenantScope,
    Timestamp, Usage, Visibility,
};
use agentd_store::{
    Completion, Enqueued, NewAgent, NewApiKey, NewInvocation, NewSignup, NewVersion, RetryPlan, Store, StoreError,
};

use agentd_test_support::{Backend, TestDb, on_both_stores};

async fn open(backend: Backend) -> (Store, TestDb) {
    let db = TestDb::create(backend);
    let store = Store::open(&db.url).await.unwrap();
    (store, db)
}

mod audit;
mod blob_collection;
mod blobs_artifacts;
mod builds;
mod members;
mod memory;
mod queue;
mod rls;
mod run_tokens;
mod schedules;
mod secrets;

async fn tenant(store: &Store, slug: &str) -> TenantScope {
    tenant_with_limits(store, slug, TenantLimits::default()).await
}

async fn tenant_with_limits(store: &Store, slug: &str, limits: TenantLimits) -> TenantScope {
    let signed_up = store
        .signup(NewSignup {
            tenant_name: slug.into(),
            tenant_slug: Slug::parse(slug).unwrap(),
            email: format!("{slug}@example.com"),
            password_hash: "x".into(),
            limits,
            first_key: NewApiKey {
                name: "first".into(),
                prefix: format!("p{slug}"),
                key_hash: "h".into(),
                scopes: Role::Owner.scopes(),
                expires_at: None,
            },
            origin: agentd_core::RequestOrigin::new(agentd_core::RequestId::generate(), None),
        })
        .await
        .unwrap();
    TenantScope::new(signed_up.tenant.id, Actor::User { id: signed_up.user.id }, RequestId::generate())
}

/// Claims the next run for `worker` with a fresh run token, as the domain does.
async fn claim(store: &Store, worker: &str, lease: Duration) -> Option<agentd_store::ClaimedRun> {
    let token = agentd_core::Secret::new(format!("agr_{}", RequestId::generate()));
    store.queue_claim_unscoped(worker, lease, &token).await.unwrap()
}

/// Retries due at once; three recoveries, as the domain's default policy has.
fn retry_now() -> RetryPlan {
    RetryPlan { retry_at: Timestamp::now(), max_recoveries: 3 }
}

/// A page of `limit` after `cursor`, as a client would ask.
fn page<C: agentd_core::Cursor>(limit: Option<u32>, cursor: Option<&str>) -> PageRequest<C> {
    PageRequest::parse(limit, cursor, PageBounds::RESOURCES).unwrap()
}

fn succeeded() -> Completion {
    Completion {
        status: InvocationStatus::Succeeded,
        output: Some(serde_json::json!(1)),
        error: None,
        usage: Usage::default(),
        fault: Fault::Agent,
        interrupt: None,
        state: None,
    }
}

async fn agent_with_version(
    store: &Store,
    ctx: &TenantScope,
    slug: &str,
) -> (agentd_core::Agent, agentd_core::AgentVersion) {
    agent_with_bundle(store, ctx, slug, "sha256:00").await
}

/// An agent `slug` whose one, active version's bundle is `digest`.
async fn agent_with_bundle(
    store: &Store,
    ctx: &TenantScope,
    slug: &str,
    digest: &str,
) -> (agentd_core::Agent, agentd_core::AgentVersion) {
    let slug = Slug::parse(slug).unwrap();
    let new = NewAgent {
        slug: slug.clone(),
        name: "a".into(),
        description: None,
        tags: vec![],
        visibility: Visibility::Private,
    };
    store.agent_create(ctx, new, 10).await.unwrap();
    let version = NewVersion {
        digest: digest.into(),
        manifest: serde_json::json!({}),
        size_bytes: 1,
        activate: true,
        build: None,
    };
    let version = store.version_create(ctx, &slug, version).await.unwrap();
    (store.agent_get(ctx, &slug).await.unwrap(), version)
}

fn new_invocation(priority: u8, key: Option<&str>) -> NewInvocation {
    NewInvocation {
        input: serde_json::json!({"p": priority}),
        thread: None,
        priority,
        max_attempts: 2,
        timeout_s: 10,
        idempotency_key: key.map(str::to_owned),
        metadata: serde_json::json!({}),
        env: Default::default(),
        input_timeout_s: None,
        parent: None,
        webhook_url: None,
        schedule: None,
    }
}

on_both_stores!(another_tenants_agent_is_not_found_and_lists_are_separate);
async fn another_tenants_agent_is_not_found_and_lists_are_separate(backend: Backend) {
    let (store, _db) = open(backend).await;
    let a = tenant(&store, "alpha").await;
    let b = tenant(&store, "beta").await;
    agent_with_version(&store, &a, "echo").await;
    let slug = Slug::parse("echo").unwrap();
    assert!(matches!(store.agent_get(&b, &slug).await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.agents_list(&b, &page(None, None)).await.unwrap().data.len(), 0);
    assert_eq!(store.agents_list(&a, &page(None, None)).await.unwrap().data.len(), 1);
}

on_both_stores!(lists_paginate_with_a_cursor_newest_first);
async fn lists_paginate_with_a_cursor_newest_first(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    for i in 0..5 {
        let new = NewAgent {
            slug: Slug::parse(&format!("a{i}")).unwrap(),
            name: "a".into(),
            description: None,
            tags: vec![],
            visibility: Visibility::Private,
        };
        store.agent_create(&ctx, new, 10).await.unwrap();
    }
    let first = store.agents_list(&ctx, &page(Some(2), None)).await.unwrap();
    assert_eq!(first.data.iter().map(|a| a.slug.as_str()).collect::<Vec<_>>(), ["a4", "a3"]);
    let second = store.agents_list(&ctx, &page(Some(2), first.next_cursor.as_deref())).await.unwrap();
    assert_eq!(second.data.iter().map(|a| a.slug.as_str()).collect::<Vec<_>>(), ["a2", "a1"]);
    let third = store.agents_list(&ctx, &page(Some(2), second.next_cursor.as_deref())).await.unwrap();
    assert_eq!(third.data.len(), 1);
    assert!(third.next_cursor.is_none());
}

on_both_stores!(claims_follow_priority_and_a_late_worker_cannot_complete);
async fn claims_follow_priority_and_a_late_worker_cannot_complete(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let (agent, version) = agent_with_version(&store, &ctx, "echo").await;
    store.invocation_enqueue(&ctx, &agent, &version, new_invocation(1, None), 100).await.unwrap();
    let high =
        store.invocation_enqueue(&ctx, &agent, &version, new_invocation(9, None), 100).await.unwrap().into_invocation();
    let run = claim(&store, "w1", Duration::from_millis(1)).await.unwrap();
    assert_eq!(run.invocation_id, high.id);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.queue_recover_expired_unscoped(3).await.unwrap(), 1);
    let again = claim(&store, "w2", Duration::from_secs(30)).await.unwrap();
    assert_eq!((again.invocation_id.clone(), again.attempt), (high.id.clone(), 2));
    assert!(!store.queue_complete(&run.lease(), succeeded(), &retry_now()).await.unwrap());
    assert!(store.queue_complete(&again.lease(), succeeded(), &retry_now()).await.unwrap());
    assert_eq!(store.invocation_get(&ctx, &high.id).await.unwrap().status, InvocationStatus::Succeeded);
}

on_both_stores!(an_idempotency_key_returns_the_first_invocation);
async fn an_idempotency_key_returns_the_first_invocation(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let (agent, version) = agent_with_version(&store, &ctx, "echo").await;
    let first = store.invocation_enqueue(&ctx, &agent, &version, new_invocation(0, Some("k1")), 100).await.unwrap();
    assert!(matches!(first, Enqueued::Created(_)));
    let second = store.invocation_enqueue(&ctx, &agent, &version, new_invocation(0, Some("k1")), 100).await.unwrap();
    assert!(matches!(second, Enqueued::Existing(_)));
    assert_eq!(first.invocation().id, second.invocation().id);
}

on_both_stores!(a_tenants_backlog_does_not_delay_another_tenants_run);
async fn a_tenants_backlog_does_not_delay_another_tenants_run(backend: Backend) {
    let (store, _db) = open(backend).await;
    let busy = tenant(&store, "busy").await;
    let quiet = tenant(&store, "quiet").await;
    let (agent, version) = agent_with_version(&store, &busy, "echo").await;
    for _ in 0..30 {
        store.invocation_enqueue(&busy, &agent, &version, new_invocation(9, None), 100).await.unwrap();
    }
    let (quiet_agent, quiet_version) = agent_with_version(&store, &quiet, "echo").await;
    let single = store
        .invocation_enqueue(&quiet, &quiet_agent, &quiet_version, new_invocation(0, None), 100)
        .await
        .unwrap()
        .into_invocation();
    let mut claimed = Vec::new();
    for _ in 0..2 {
        claimed.push(claim(&store, "w", Duration::from_secs(30)).await.unwrap().invocation_id);
    }
    assert!(claimed.contains(&single.id), "the quiet tenant's run is among the first two claims");
}

on_both_stores!(a_tenants_concurrency_limit_holds_across_claims);
async fn a_tenants_concurrency_limit_holds_across_claims(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let (agent, version) = agent_with_version(&store, &ctx, "echo").await;
    let limit = TenantLimits::default().max_concurrent_invocations as usize;
    for _ in 0..limit + 3 {
        store.invocation_enqueue(&ctx, &agent, &version, new_invocation(0, None), 100).await.unwrap();
    }
    let mut held = Vec::new();
    while let Some(run) = claim(&store, "w", Duration::from_secs(30)).await {
        held.push(run);
    }
    assert_eq!(held.len(), limit);
    assert!(store.queue_complete(&held[0].lease(), succeeded(), &retry_now()).await.unwrap());
    assert!(claim(&store, "w", Duration::from_secs(30)).await.is_some(), "a finished run frees a slot");
}
