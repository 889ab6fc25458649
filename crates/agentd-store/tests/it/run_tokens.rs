//! Run tokens and sub-invocations in the store: each claim replaces the invocation's token
//! hash with its attempt's, the lookup reports the run as it is, and a sub-invocation
//! keeps its parent and depth, listed under its parent.

use std::time::Duration;

use agentd_core::{InvocationStatus, PageBounds, PageRequest, Secret};
use agentd_store::{InvocationFilter, ParentRun, Store, hash_secret};

use agentd_test_support::{Backend, on_both_stores};

use super::{agent_with_version, new_invocation, open, retry_now, tenant};

fn succeeded() -> agentd_store::Completion {
    agentd_store::Completion {
        status: InvocationStatus::Succeeded,
        output: None,
        error: None,
        usage: Default::default(),
        fault: Default::default(),
        interrupt: None,
        state: None,
    }
}

async fn claim_with(store: &Store, token: &str) -> agentd_store::ClaimedRun {
    store.queue_claim_unscoped("w", Duration::from_secs(30), &Secret::new(token)).await.unwrap().unwrap()
}

on_both_stores!(each_claim_replaces_the_run_token_and_the_lookup_reports_the_run_as_it_is);
async fn each_claim_replaces_the_run_token_and_the_lookup_reports_the_run_as_it_is(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let (agent, version) = agent_with_version(&store, &ctx, "echo").await;
    let inv =
        store.invocation_enqueue(&ctx, &agent, &version, new_invocation(0, None), 100).await.unwrap().into_invocation();
    let first = claim_with(&store, "agr_first").await;
    assert_eq!(first.run_token.expose(), "agr_first");
    let found = store.run_token_authenticate_unscoped(&hash_secret("agr_first")).await.unwrap().unwrap();
    assert_eq!(
        (&found.invocation_id, found.attempt, found.status, found.lease_live),
        (&inv.id, 1, InvocationStatus::Running, true)
    );
    assert_eq!((found.agent.as_str(), found.depth, &found.tenant.id), ("echo", 0, ctx.tenant_id()));
    // The attempt fails and runs again: the second attempt's token replaces the first's.
    let failure = agentd_store::Completion { status: InvocationStatus::Failed, ..succeeded() };
    assert!(store.queue_complete(&first.lease(), failure, &retry_now()).await.unwrap());
    let between = store.run_token_authenticate_unscoped(&hash_secret("agr_first")).await.unwrap().unwrap();
    assert_eq!(between.status, InvocationStatus::Retrying);
    let second = claim_with(&store, "agr_second").await;
    assert!(store.run_token_authenticate_unscoped(&hash_secret("agr_first")).await.unwrap().is_none());
    let found = store.run_token_authenticate_unscoped(&hash_secret("agr_second")).await.unwrap().unwrap();
    assert_eq!((found.attempt, found.status), (2, InvocationStatus::Running));
    assert!(store.queue_complete(&second.lease(), succeeded(), &retry_now()).await.unwrap());
    let ended = store.run_token_authenticate_unscoped(&hash_secret("agr_second")).await.unwrap().unwrap();
    assert_eq!((ended.status, ended.lease_live), (InvocationStatus::Succeeded, false));
}

on_both_stores!(a_sub_invocation_keeps_its_parent_and_depth_and_is_listed_under_it);
async fn a_sub_invocation_keeps_its_parent_and_depth_and_is_listed_under_it(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let (agent, version) = agent_with_version(&store, &ctx, "echo").await;
    let parent =
        store.invocation_enqueue(&ctx, &agent, &version, new_invocation(0, None), 100).await.unwrap().into_invocation();
    let mut sub = new_invocation(0, None);
    sub.parent = Some(ParentRun { id: parent.id.clone(), depth: 1 });
    let child = store.invocation_enqueue(&ctx, &agent, &version, sub, 100).await.unwrap().into_invocation();
    assert_eq!((child.parent_id.as_ref(), child.depth), (Some(&parent.id), 1));
    assert_eq!((parent.parent_id.as_ref(), parent.depth), (None, 0));
    let page = PageRequest::parse(None, None, PageBounds::RESOURCES).unwrap();
    let filter = InvocationFilter { parent_id: Some(parent.id.clone()), ..Default::default() };
    let listed = store.invocations_list(&ctx, &filter, &page).await.unwrap();
    assert_eq!(listed.data.iter().map(|i| &i.id).collect::<Vec<_>>(), [&child.id]);
    let beta = tenant(&store, "beta").await;
    assert!(store.invocations_list(&beta, &filter, &page).await.unwrap().data.is_empty());
}
