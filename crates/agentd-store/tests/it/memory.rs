//! The memory store on both engines: writes keep the tenant's byte count exact, prefix
//! and filter matching agree between SQLite and PostgreSQL, namespaces are cut and
//! sorted alike, and expired items vanish at once and give their bytes back when swept.

use agentd_core::{MemoryKey, Namespace, OffsetPage, PageBounds, Timestamp};
use agentd_store::{MemorySearch, MemoryWrite, NamespaceListing, StoreError, memory_item_size};
use serde_json::{Map, Value, json};

use agentd_test_support::{Backend, on_both_stores};

use super::{open, tenant};

fn namespace(dotted: &str) -> Namespace {
    Namespace::parse_dotted(dotted).unwrap()
}

fn key(raw: &str) -> MemoryKey {
    MemoryKey::parse(raw.to_owned()).unwrap()
}

fn write(dotted: &str, k: &str, value: Value) -> MemoryWrite {
    MemoryWrite { namespace: namespace(dotted), key: key(k), value_json: value.to_string(), expires_at: None }
}

fn size(dotted: &str, k: &str, value: &Value) -> u64 {
    memory_item_size(&namespace(dotted), &key(k), &value.to_string())
}

fn search(prefix: &str, filter: Value) -> MemorySearch {
    let filter: Map<String, Value> = serde_json::from_value(filter).unwrap();
    MemorySearch {
        prefix: Namespace::parse_partial(prefix.split('.').filter(|l| !l.is_empty()).map(str::to_owned).collect())
            .unwrap(),
        filter,
        page: OffsetPage::parse(Some(100), None, PageBounds::MEMORY_ITEMS).unwrap(),
    }
}

fn keys(items: &[agentd_core::MemoryItem]) -> Vec<String> {
    items.iter().map(|i| format!("{}/{}", i.namespace.join("."), i.key)).collect()
}

on_both_stores!(puts_and_deletes_keep_the_byte_count_exact);
async fn puts_and_deletes_keep_the_byte_count_exact(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let other = tenant(&store, "beta").await;
    let big = json!({"text": "x".repeat(100)});
    let small = json!({"text": "y"});
    let first = store.memory_put(&ctx, &write("users.ada", "prefs", big.clone()), 10_000).await.unwrap();
    assert!(first.created);
    assert_eq!(store.memory_usage(&ctx).await.unwrap(), size("users.ada", "prefs", &big));
    let replaced = store.memory_put(&ctx, &write("users.ada", "prefs", small.clone()), 10_000).await.unwrap();
    assert!(!replaced.created);
    assert_eq!(replaced.item.created_at, first.item.created_at);
    assert_eq!(replaced.item.value, small);
    assert_eq!(store.memory_usage(&ctx).await.unwrap(), size("users.ada", "prefs", &small));
    assert_eq!(store.memory_usage(&other).await.unwrap(), 0, "another tenant's count is its own");

    // Past the quota nothing changes, and the error says what is held and what was asked.
    let held = store.memory_usage(&ctx).await.unwrap();
    let refused = store.memory_put(&ctx, &write("users.ada", "notes", big.clone()), held + 10).await.unwrap_err();
    let adding = size("users.ada", "notes", &big);
    assert!(matches!(refused, StoreError::BytesQuotaReached { used, adding: a } if used == held && a == adding));
    assert!(matches!(
        store.memory_get(&ctx, &namespace("users.ada"), &key("notes")).await,
        Err(StoreError::NotFound(_))
    ));

    store.memory_delete(&ctx, &namespace("users.ada"), &key("prefs")).await.unwrap();
    assert_eq!(store.memory_usage(&ctx).await.unwrap(), 0);
    let again = store.memory_delete(&ctx, &namespace("users.ada"), &key("prefs")).await.unwrap_err();
    assert!(matches!(again, StoreError::NotFound(_)));
}

on_both_stores!(search_matches_prefixes_by_label_and_filters_by_json_equality);
async fn search_matches_prefixes_by_label_and_filters_by_json_equality(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let items = [
        ("a.b", "1", json!({"kind": "note", "n": 1, "ok": true, "tags": ["x", "y"], "meta": {"b": 2, "a": 1}})),
        ("a.b.c", "2", json!({"kind": "note", "n": 1.0, "ok": false, "none": null})),
        ("a.bc", "3", json!({"kind": "note", "n": "1"})),
        ("a", "4", json!(["kind", "note"])),
        ("a-b", "5", json!("note")),
    ];
    for (ns, k, value) in &items {
        store.memory_put(&ctx, &write(ns, k, value.clone()), u64::MAX >> 2).await.unwrap();
    }
    let found = |prefix: &'static str, filter: Value| {
        let store = store.clone();
        let ctx = ctx.clone();
        async move {
            let mut found = keys(&store.memory_search(&ctx, &search(prefix, filter)).await.unwrap());
            found.sort();
            found
        }
    };
    assert_eq!(found("a.b", json!({})).await, ["a.b.c/2", "a.b/1"], "a prefix matches whole labels only");
    assert_eq!(found("", json!({})).await.len(), 5);
    assert_eq!(found("a", json!({"kind": "note"})).await, ["a.b.c/2", "a.b/1", "a.bc/3"]);
    assert_eq!(found("", json!({"n": 1})).await, ["a.b.c/2", "a.b/1"], "numbers compare by value, not as text");
    assert_eq!(found("", json!({"n": "1"})).await, ["a.bc/3"]);
    assert_eq!(found("", json!({"ok": true})).await, ["a.b/1"]);
    assert_eq!(found("", json!({"ok": 1})).await, Vec::<String>::new(), "a boolean is not a number");
    assert_eq!(found("", json!({"none": null})).await, ["a.b.c/2"], "null matches null, not a missing field");
    assert_eq!(found("", json!({"tags": ["x", "y"]})).await, ["a.b/1"]);
    assert_eq!(found("", json!({"tags": ["x"]})).await, Vec::<String>::new(), "equality, not containment");
    assert_eq!(found("", json!({"meta": {"a": 1, "b": 2}})).await, ["a.b/1"]);
    assert_eq!(found("", json!({"kind": "note", "ok": false})).await, ["a.b.c/2"], "every field must match");
    assert_eq!(found("", json!({"missing": 1})).await, Vec::<String>::new());
}

on_both_stores!(search_pages_newest_updated_first);
async fn search_pages_newest_updated_first(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    for k in ["k1", "k2", "k3"] {
        store.memory_put(&ctx, &write("docs", k, json!({})), u64::MAX >> 2).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    store.memory_put(&ctx, &write("docs", "k1", json!({"v": 2})), u64::MAX >> 2).await.unwrap();
    let page = |limit, offset| {
        let mut request = search("docs", json!({}));
        request.page = OffsetPage::parse(Some(limit), Some(offset), PageBounds::MEMORY_ITEMS).unwrap();
        let store = store.clone();
        let ctx = ctx.clone();
        async move { keys(&store.memory_search(&ctx, &request).await.unwrap()) }
    };
    assert_eq!(page(2, 0).await, ["docs/k1", "docs/k3"]);
    assert_eq!(page(2, 2).await, ["docs/k2"]);
    assert_eq!(page(2, 3).await, Vec::<String>::new());
}

on_both_stores!(namespaces_are_cut_to_depth_deduplicated_and_sorted_bytewise);
async fn namespaces_are_cut_to_depth_deduplicated_and_sorted_bytewise(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    for ns in ["users.ada.prefs", "users.ada.notes", "users.bob.prefs", "users", "teams.core.prefs", "users-old.x"] {
        store.memory_put(&ctx, &write(ns, "k", json!({})), u64::MAX >> 2).await.unwrap();
    }
    let list = |prefix: &str, suffix: &str, max_depth: usize, limit: i64, offset: i64| {
        let labels = |dotted: &str| dotted.split('.').filter(|l| !l.is_empty()).map(str::to_owned).collect();
        let listing = NamespaceListing {
            prefix: Namespace::parse_partial(labels(prefix)).unwrap(),
            suffix: Namespace::parse_partial(labels(suffix)).unwrap(),
            max_depth,
            page: OffsetPage::parse(Some(limit), Some(offset), PageBounds::MEMORY_NAMESPACES).unwrap(),
        };
        let store = store.clone();
        let ctx = ctx.clone();
        async move {
            store.memory_namespaces(&ctx, &listing).await.unwrap().iter().map(Namespace::dotted).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list("", "", 10, 100, 0).await,
        ["teams.core.prefs", "users", "users-old.x", "users.ada.notes", "users.ada.prefs", "users.bob.prefs"]
    );
    assert_eq!(list("", "", 1, 100, 0).await, ["teams", "users", "users-old"]);
    assert_eq!(list("users", "", 2, 100, 0).await, ["users", "users.ada", "users.bob"]);
    assert_eq!(list("", "prefs", 10, 100, 0).await, ["teams.core.prefs", "users.ada.prefs", "users.bob.prefs"]);
    assert_eq!(list("users", "ada.prefs", 10, 100, 0).await, ["users.ada.prefs"]);
    assert_eq!(list("", "refs", 10, 100, 0).await, Vec::<String>::new(), "a suffix matches whole labels");
    assert_eq!(list("", "", 10, 2, 1).await, ["users", "users-old.x"]);
}

on_both_stores!(expired_items_vanish_at_once_and_the_sweep_gives_their_bytes_back);
async fn expired_items_vanish_at_once_and_the_sweep_gives_their_bytes_back(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let value = json!({"v": 1});
    let mut expiring = write("cache", "soon", value.clone());
    expiring.expires_at = Some(Timestamp::now().plus_ms(-1));
    store.memory_put(&ctx, &expiring, 10_000).await.unwrap();
    store.memory_put(&ctx, &write("cache", "kept", value.clone()), 10_000).await.unwrap();
    let both = size("cache", "soon", &value) + size("cache", "kept", &value);
    assert_eq!(store.memory_usage(&ctx).await.unwrap(), both, "an expired item counts until it is swept");
    assert!(matches!(store.memory_get(&ctx, &namespace("cache"), &key("soon")).await, Err(StoreError::NotFound(_))));
    assert_eq!(keys(&store.memory_search(&ctx, &search("cache", json!({}))).await.unwrap()), ["cache/kept"]);
    let delete = store.memory_delete(&ctx, &namespace("cache"), &key("soon")).await;
    assert!(matches!(delete, Err(StoreError::NotFound(_))));

    assert_eq!(store.memory_expire_unscoped().await.unwrap(), 1);
    assert_eq!(store.memory_usage(&ctx).await.unwrap(), size("cache", "kept", &value));
    assert_eq!(store.memory_expire_unscoped().await.unwrap(), 0, "a second sweep finds nothing");

    // Writing over an expired item that is not swept yet creates it anew.
    let mut stale = write("cache", "stale", value.clone());
    stale.expires_at = Some(Timestamp::now().plus_ms(-1));
    store.memory_put(&ctx, &stale, 10_000).await.unwrap();
    let renewed = store.memory_put(&ctx, &write("cache", "stale", value.clone()), 10_000).await.unwrap();
    assert!(renewed.created && renewed.item.expires_at.is_none());
    let kept_and_stale = size("cache", "kept", &value) + size("cache", "stale", &value);
    assert_eq!(store.memory_usage(&ctx).await.unwrap(), kept_and_stale, "the stale bytes were replaced, not added");
}

on_both_stores!(concurrent_writes_of_one_tenant_keep_the_count_exact);
async fn concurrent_writes_of_one_tenant_keep_the_count_exact(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let writes = (0..24).map(|n: usize| {
        let (store, ctx) = (store.clone(), ctx.clone());
        tokio::spawn(async move {
            let name = format!("k{}", n % 3);
            let value = json!("v".repeat(n * 7));
            store.memory_put(&ctx, &write("race", &name, value), u64::MAX >> 2).await.unwrap();
            if n.is_multiple_of(5) {
                // A delete racing the writes: the item may be there or not, either is fine.
                let _ = store.memory_delete(&ctx, &namespace("race"), &key(&name)).await;
            }
        })
    });
    for write in writes.collect::<Vec<_>>() {
        write.await.unwrap();
    }
    let mut expected = 0;
    for k in ["k0", "k1", "k2"] {
        if let Ok(item) = store.memory_get(&ctx, &namespace("race"), &key(k)).await {
            expected += size("race", k, &item.value);
        }
    }
    assert_eq!(store.memory_usage(&ctx).await.unwrap(), expected);
}
