//! Agents' secrets as the store keeps them: sealed bytes per (agent, name), a quota per
//! agent, tenancy, the claim's read and the fenced reseal of a key rotation.

use std::time::Duration;

use agentd_core::{ResourceKind, Slug};
use agentd_store::{SealedSecret, StoreError};

use agentd_test_support::{Backend, on_both_stores};

use super::{agent_with_version, new_invocation, open, tenant};

fn sealed(byte: u8, key_id: &str) -> SealedSecret {
    SealedSecret { ciphertext: vec![byte; 40], nonce: vec![byte; 24], key_id: key_id.to_owned() }
}

on_both_stores!(a_secret_is_created_replaced_listed_and_deleted_within_its_tenant);
async fn a_secret_is_created_replaced_listed_and_deleted_within_its_tenant(backend: Backend) {
    let (store, _db) = open(backend).await;
    let a = tenant(&store, "alpha").await;
    let b = tenant(&store, "beta").await;
    let (agent, _) = agent_with_version(&store, &a, "echo").await;
    let slug = Slug::parse("echo").unwrap();

    let created = store.secret_put(&a, &agent.id, "API_KEY", &sealed(1, "k1"), 100).await.unwrap();
    assert!(created.created);
    assert_eq!(created.secret.created_at, created.secret.updated_at);
    let replaced = store.secret_put(&a, &agent.id, "API_KEY", &sealed(2, "k1"), 100).await.unwrap();
    assert!(!replaced.created);
    assert_eq!(replaced.secret.created_at, created.secret.created_at);
    assert!(replaced.secret.updated_at > created.secret.updated_at, "every write moves updated_at");
    store.secret_put(&a, &agent.id, "OTHER", &sealed(3, "k1"), 100).await.unwrap();

    let names: Vec<String> = store.secrets_list(&a, &slug).await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["API_KEY", "OTHER"]);

    // Another tenant finds neither the agent nor its secrets, and cannot write them.
    assert!(matches!(store.secrets_list(&b, &slug).await, Err(StoreError::NotFound(ResourceKind::Agent))));
    assert!(matches!(store.secret_delete(&b, &slug, "API_KEY").await, Err(StoreError::NotFound(ResourceKind::Agent))));
    let stolen = store.secret_put(&b, &agent.id, "API_KEY", &sealed(9, "k1"), 100).await;
    assert!(matches!(stolen, Err(StoreError::NotFound(ResourceKind::Agent))), "{stolen:?}");

    store.secret_delete(&a, &slug, "OTHER").await.unwrap();
    let again = store.secret_delete(&a, &slug, "OTHER").await;
    assert!(matches!(again, Err(StoreError::NotFound(ResourceKind::Secret))), "{again:?}");
    assert_eq!(store.secrets_list(&a, &slug).await.unwrap().len(), 1);
}

on_both_stores!(an_agent_has_at_most_its_quota_of_secrets_and_replacing_one_is_not_another);
async fn an_agent_has_at_most_its_quota_of_secrets_and_replacing_one_is_not_another(backend: Backend) {
    let (store, _db) = open(backend).await;
    let a = tenant(&store, "alpha").await;
    let (agent, _) = agent_with_version(&store, &a, "echo").await;
    for name in ["A", "B"] {
        store.secret_put(&a, &agent.id, name, &sealed(1, "k1"), 2).await.unwrap();
    }
    let third = store.secret_put(&a, &agent.id, "C", &sealed(1, "k1"), 2).await;
    assert!(matches!(third, Err(StoreError::QuotaReached { count: 2 })), "{third:?}");
    store.secret_put(&a, &agent.id, "B", &sealed(2, "k1"), 2).await.unwrap();
}

on_both_stores!(a_claimed_run_reads_its_agents_secrets_and_a_deleted_agent_takes_them_along);
async fn a_claimed_run_reads_its_agents_secrets_and_a_deleted_agent_takes_them_along(backend: Backend) {
    let (store, _db) = open(backend).await;
    let a = tenant(&store, "alpha").await;
    let (agent, version) = agent_with_version(&store, &a, "echo").await;
    let (other, _) = agent_with_version(&store, &a, "other").await;
    store.secret_put(&a, &agent.id, "API_KEY", &sealed(1, "k1"), 100).await.unwrap();
    store.secret_put(&a, &other.id, "NOT_MINE", &sealed(2, "k1"), 100).await.unwrap();
    store.invocation_enqueue(&a, &agent, &version, new_invocation(0, None), 100).await.unwrap();
    let run = super::claim(&store, "w", Duration::from_secs(30)).await.unwrap();
    assert!(run.secrets.is_empty(), "the store hands out no value");
    let secrets = store.secrets_for_run_unscoped(&run.invocation_id).await.unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        (secrets[0].name.as_str(), &secrets[0].agent_id, &secrets[0].tenant_id),
        ("API_KEY", &agent.id, a.tenant_id())
    );
    assert_eq!(secrets[0].sealed, sealed(1, "k1"));

    store.agent_delete(&a, &Slug::parse("echo").unwrap()).await.unwrap();
    assert!(store.secrets_for_run_unscoped(&run.invocation_id).await.unwrap().is_empty());
    assert_eq!(store.secret_key_ids_unscoped().await.unwrap(), [("k1".to_owned(), 1)]);
}

on_both_stores!(a_reseal_replaces_the_sealing_unless_a_write_came_first);
async fn a_reseal_replaces_the_sealing_unless_a_write_came_first(backend: Backend) {
    let (store, _db) = open(backend).await;
    let a = tenant(&store, "alpha").await;
    let b = tenant(&store, "beta").await;
    let (agent_a, _) = agent_with_version(&store, &a, "echo").await;
    let (agent_b, _) = agent_with_version(&store, &b, "echo").await;
    for (ctx, agent) in [(&a, &agent_a), (&b, &agent_b)] {
        for name in ["ONE", "TWO"] {
            store.secret_put(ctx, &agent.id, name, &sealed(1, "old"), 100).await.unwrap();
        }
    }
    let first = store.secrets_sealed_with_unscoped("old", None, 3).await.unwrap();
    assert_eq!(first.len(), 3, "every tenant's, a page at a time");
    let last = first.last().map(|s| (s.agent_id.clone(), s.name.clone())).unwrap();
    let rest = store.secrets_sealed_with_unscoped("old", Some(&last), 3).await.unwrap();
    assert_eq!(rest.len(), 1);

    assert!(store.secret_reseal_unscoped(&first[0], &sealed(5, "new")).await.unwrap());
    // A PUT between the read and the reseal wins.
    let ctx = if first[1].tenant_id == *a.tenant_id() { &a } else { &b };
    store.secret_put(ctx, &first[1].agent_id, &first[1].name, &sealed(6, "new"), 100).await.unwrap();
    assert!(!store.secret_reseal_unscoped(&first[1], &sealed(7, "new")).await.unwrap());
    assert_eq!(store.secret_key_ids_unscoped().await.unwrap(), [("new".to_owned(), 2), ("old".to_owned(), 2)]);
    let resealed: Vec<SealedSecret> =
        store.secrets_sealed_with_unscoped("new", None, 10).await.unwrap().into_iter().map(|s| s.sealed).collect();
    assert!(resealed.contains(&sealed(5, "new")) && resealed.contains(&sealed(6, "new")), "{resealed:?}");
}
