//! The memory store (`/v1/store`) over HTTP on both engines: items written, replaced,
//! read and deleted; namespaces, keys and bodies checked; search by prefix and filter
//! with paging; namespaces by prefix, suffix and depth; TTLs; both size limits and the
//! byte count behind them; scopes.

use std::time::Duration;

use agentd_api_types::{CreateApiKeyRequest, ListNamespacesRequest, Scope, SearchMemoryItemsRequest};
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, TestTenant};

/// Status and body of a JSON request.
async fn send(tenant: &TestTenant, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = tenant.client.request(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn put(tenant: &TestTenant, body: Value) -> (u16, Value) {
    send(tenant, Method::PUT, "/v1/store/items", Some(body)).await
}

async fn search(tenant: &TestTenant, body: Value) -> (u16, Value) {
    send(tenant, Method::POST, "/v1/store/items/search", Some(body)).await
}

async fn namespaces(tenant: &TestTenant, body: Value) -> (u16, Value) {
    send(tenant, Method::POST, "/v1/store/namespaces", Some(body)).await
}

/// `namespace/key` of every item in a search answer, in its order.
fn found(body: &Value) -> Vec<String> {
    let items = body["data"].as_array().unwrap_or_else(|| panic!("not a search answer: {body}"));
    items
        .iter()
        .map(|item| {
            let labels: Vec<&str> = item["namespace"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            format!("{}/{}", labels.join("."), item["key"].as_str().unwrap())
        })
        .collect()
}

fn joined(body: &Value) -> Vec<String> {
    let spaces = body["data"].as_array().unwrap_or_else(|| panic!("not a namespace list: {body}"));
    spaces
        .iter()
        .map(|ns| ns.as_array().unwrap().iter().filter_map(Value::as_str).collect::<Vec<_>>().join("."))
        .collect()
}

on_both_stores!(items_are_created_replaced_read_and_deleted);
async fn items_are_created_replaced_read_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let item = json!({"namespace": ["users", "ada"], "key": "prefs", "value": {"theme": "dark", "size": 3}});
    let (status, created) = put(&alpha, item).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["namespace"], json!(["users", "ada"]));
    assert_eq!((created["key"].clone(), created["expires_at"].clone()), (json!("prefs"), Value::Null));

    let read = alpha.client.store_item_get(&["users", "ada"], "prefs").await.unwrap();
    assert_eq!(read.value, json!({"theme": "dark", "size": 3}));
    assert_eq!(read.created_at, read.updated_at);

    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, replaced) =
        put(&alpha, json!({"namespace": ["users", "ada"], "key": "prefs", "value": ["now", "a", "list"]})).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["created_at"], created["created_at"], "a replaced item keeps when it was created");
    assert_ne!(replaced["updated_at"], created["updated_at"]);
    let read = alpha.client.store_item_get(&["users", "ada"], "prefs").await.unwrap();
    assert_eq!(read.value, json!(["now", "a", "list"]));

    // Keys may hold dots and other punctuation; the query string carries them encoded.
    let odd = json!({"namespace": ["users", "ada & bob"], "key": "v1.2/x?y#z", "value": 7});
    assert_eq!(put(&alpha, odd).await.0, 201);
    assert_eq!(alpha.client.store_item_get(&["users", "ada & bob"], "v1.2/x?y#z").await.unwrap().value, json!(7));

    let response = alpha.client.request(Method::DELETE, "/v1/store/items?namespace=users.ada&key=prefs").send();
    assert_eq!(response.await.unwrap().status(), 204);
    for method in [Method::GET, Method::DELETE] {
        let (status, problem) =
            send(&alpha, method.clone(), "/v1/store/items?namespace=users.ada&key=prefs", None).await;
        assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")), "{method}: {problem}");
    }
    let missing = alpha.client.store_item_get(&["users", "nobody"], "prefs").await.unwrap_err();
    assert_eq!(missing.status(), Some(404));
}

on_both_stores!(namespaces_keys_and_bodies_are_checked_naming_the_field);
async fn namespaces_keys_and_bodies_are_checked_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let body = |namespace: Value, key: Value| json!({"namespace": namespace, "key": key, "value": {}});
    let long_label = "l".repeat(129);
    let refusals = [
        (body(json!([]), json!("k")), "invalid_namespace", "namespace"),
        (body(json!(["a.b"]), json!("k")), "invalid_namespace", "`.`"),
        (body(json!(["a", ""]), json!("k")), "invalid_namespace", "label 2 is empty"),
        (body(Value::from(vec!["a"; 11]), json!("k")), "invalid_namespace", "at most 10"),
        (body(json!([long_label]), json!("k")), "invalid_namespace", "128"),
        (body(json!(["a\u{1}"]), json!("k")), "invalid_namespace", "control"),
        (body(json!(["a"]), json!("")), "invalid_key", "key"),
        (body(json!(["a"]), json!("k".repeat(513))), "invalid_key", "512"),
        (json!({"namespace": ["a"], "key": "k", "value": 1, "ttl_s": 0}), "invalid_ttl", "ttl_s"),
        (json!({"namespace": ["a"], "key": "k", "value": 1, "ttl_s": 31_536_001}), "invalid_ttl", "ttl_s"),
        (json!({"namespace": ["a"], "key": "k", "value": 1, "index": false}), "invalid_body", "index"),
        (json!({"namespace": ["a"], "key": "k"}), "invalid_body", "value"),
        (json!({"namespace": "a.b", "key": "k", "value": 1}), "invalid_body", "namespace"),
        (json!({"namespace": ["a"], "key": "k", "value": {"text": "nul\u{0}"}}), "invalid_value", "NUL"),
    ];
    for (body, code, named) in refusals {
        let (status, problem) = put(&alpha, body.clone()).await;
        assert_eq!((status, problem["code"].as_str()), (422, Some(code)), "{body}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or("");
        assert!(detail.contains(named), "the detail of {body} names {named}: {detail}");
    }
    let search_refusals = [
        (json!({"namespace_prefix": ["a.b"]}), "invalid_namespace", "namespace_prefix"),
        (json!({"filter": {"a.b": 1}}), "invalid_filter", "a.b"),
        (json!({"filter": {"x": 1}, "query": "semantic"}), "invalid_body", "query"),
        (json!({"filter": {"x": "nul\u{0}"}}), "invalid_filter", "NUL"),
    ];
    for (body, code, named) in search_refusals {
        let (status, problem) = search(&alpha, body.clone()).await;
        assert_eq!((status, problem["code"].as_str()), (422, Some(code)), "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap_or("").contains(named), "{body}: {problem}");
    }
    for (body, code, named) in [
        (json!({"prefix": [""]}), "invalid_namespace", "prefix"),
        (json!({"suffix": ["a.b"]}), "invalid_namespace", "suffix"),
        (json!({"max_depth": 0}), "invalid_max_depth", "max_depth"),
    ] {
        let (status, problem) = namespaces(&alpha, body.clone()).await;
        assert_eq!((status, problem["code"].as_str()), (422, Some(code)), "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap_or("").contains(named), "{body}: {problem}");
    }
    for (query, status, code) in [
        ("namespace=a..b&key=k", 422, "invalid_namespace"),
        ("namespace=a&key=", 422, "invalid_key"),
        ("namespace=a", 400, "invalid_query"),
        ("namespace=a&key=k&evil=1", 400, "invalid_query"),
    ] {
        for method in [Method::GET, Method::DELETE] {
            let path = format!("/v1/store/items?{query}");
            let (got, problem) = send(&alpha, method.clone(), &path, None).await;
            assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{method} {path}: {problem}");
        }
    }
    let (status, body) = search(&alpha, json!({})).await;
    assert_eq!((status, body["data"].clone()), (200, json!([])), "nothing was written meanwhile");
}

on_both_stores!(search_finds_items_by_prefix_and_filter_and_pages_with_limit_and_offset);
async fn search_finds_items_by_prefix_and_filter_and_pages_with_limit_and_offset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let items = [
        (json!(["docs", "a"]), "1", json!({"kind": "note", "stars": 5})),
        (json!(["docs", "a", "old"]), "2", json!({"kind": "note", "stars": 4})),
        (json!(["docs", "ab"]), "3", json!({"kind": "draft", "stars": 5})),
        (json!(["docs"]), "4", json!("a string has no fields")),
    ];
    for (namespace, key, value) in items {
        assert_eq!(put(&alpha, json!({"namespace": namespace, "key": key, "value": value})).await.0, 201);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let (_, all) = search(&alpha, json!({"namespace_prefix": ["docs"]})).await;
    assert_eq!(found(&all), ["docs/4", "docs.ab/3", "docs.a.old/2", "docs.a/1"], "newest-updated first");
    let (_, under_a) = search(&alpha, json!({"namespace_prefix": ["docs", "a"]})).await;
    assert_eq!(found(&under_a), ["docs.a.old/2", "docs.a/1"], "a prefix is whole labels: not docs.ab");
    let (_, notes) = search(&alpha, json!({"namespace_prefix": ["docs"], "filter": {"kind": "note"}})).await;
    assert_eq!(found(&notes), ["docs.a.old/2", "docs.a/1"]);
    let (_, five) = search(&alpha, json!({"filter": {"stars": 5, "kind": "note"}})).await;
    assert_eq!(found(&five), ["docs.a/1"]);
    let (_, none) = search(&alpha, json!({"filter": {"stars": "5"}})).await;
    assert_eq!(found(&none), Vec::<String>::new(), "a string is not a number");
    // Nested values compare as JSON, whatever order their fields were sent in.
    let nested = r#"{"namespace": ["nested"], "key": "n", "value": {"meta": {"b": [1, {"d": 2, "c": 3}], "a": "x"}}}"#;
    let response =
        alpha.client.request(Method::PUT, "/v1/store/items").header("content-type", "application/json").body(nested);
    assert_eq!(response.send().await.unwrap().status(), 201);
    let (_, by_meta) = search(&alpha, json!({"filter": {"meta": {"a": "x", "b": [1, {"c": 3, "d": 2}]}}})).await;
    assert_eq!(found(&by_meta), ["nested/n"]);
    let (_, not_meta) = search(&alpha, json!({"filter": {"meta": {"a": "x"}}})).await;
    assert_eq!(found(&not_meta), Vec::<String>::new(), "equality, not containment");
    alpha.client.store_item_delete(&["nested"], "n").await.unwrap();
    let typed = alpha.client.store_items_search(&SearchMemoryItemsRequest::default()).await.unwrap();
    assert_eq!(typed.data.len(), 4);

    let (_, page) = search(&alpha, json!({"limit": 2, "offset": 1})).await;
    assert_eq!(found(&page), ["docs.ab/3", "docs.a.old/2"]);
    let (_, past) = search(&alpha, json!({"offset": 10})).await;
    assert_eq!(found(&past), Vec::<String>::new());
    for (body, code) in [
        (json!({"limit": 0}), "invalid_limit"),
        (json!({"limit": 101}), "invalid_limit"),
        (json!({"limit": -1}), "invalid_limit"),
        (json!({"offset": -1}), "invalid_offset"),
    ] {
        let (status, problem) = search(&alpha, body.clone()).await;
        assert_eq!((status, problem["code"].as_str()), (400, Some(code)), "{body}: {problem}");
    }
    for n in 0..12 {
        put(&alpha, json!({"namespace": ["many"], "key": format!("k{n}"), "value": n})).await;
    }
    let (_, default_page) = search(&alpha, json!({"namespace_prefix": ["many"]})).await;
    assert_eq!(found(&default_page).len(), 10, "the default limit is 10");
    let (_, hundred) = search(&alpha, json!({"limit": 100})).await;
    assert_eq!(found(&hundred).len(), 16);
}

on_both_stores!(namespaces_are_listed_by_prefix_suffix_and_depth);
async fn namespaces_are_listed_by_prefix_suffix_and_depth(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    for namespace in ["users.ada.prefs", "users.ada.notes", "users.bob.prefs", "teams.core.prefs", "users"] {
        let labels: Vec<&str> = namespace.split('.').collect();
        for key in ["k1", "k2"] {
            put(&alpha, json!({"namespace": labels, "key": key, "value": {}})).await;
        }
    }
    let (_, all) = namespaces(&alpha, json!({})).await;
    assert_eq!(joined(&all), ["teams.core.prefs", "users", "users.ada.notes", "users.ada.prefs", "users.bob.prefs"]);
    let (_, top) = namespaces(&alpha, json!({"max_depth": 1})).await;
    assert_eq!(joined(&top), ["teams", "users"], "cut and deduplicated");
    let (_, users) = namespaces(&alpha, json!({"prefix": ["users"], "max_depth": 2})).await;
    assert_eq!(joined(&users), ["users", "users.ada", "users.bob"]);
    let (_, prefs) = namespaces(&alpha, json!({"suffix": ["prefs"]})).await;
    assert_eq!(joined(&prefs), ["teams.core.prefs", "users.ada.prefs", "users.bob.prefs"]);
    let (_, both) = namespaces(&alpha, json!({"prefix": ["users"], "suffix": ["prefs"], "max_depth": 2})).await;
    assert_eq!(joined(&both), ["users.ada", "users.bob"]);
    let (_, page) = namespaces(&alpha, json!({"limit": 2, "offset": 1})).await;
    assert_eq!(joined(&page), ["users", "users.ada.notes"]);
    let (status, problem) = namespaces(&alpha, json!({"limit": 101})).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_limit")), "{problem}");
    let typed = alpha.client.store_namespaces(&ListNamespacesRequest::default()).await.unwrap();
    assert_eq!(typed.data.len(), 5);
    assert_eq!(typed.data[0], ["teams", "core", "prefs"]);
}

on_both_stores!(items_with_a_ttl_vanish_at_once_and_the_sweep_gives_their_bytes_back);
async fn items_with_a_ttl_vanish_at_once_and_the_sweep_gives_their_bytes_back(backend: Backend) {
    let env = [("AGENTD_STORE_SWEEP_S", "1"), ("AGENTD_LIMITS_MAX_STORE_BYTES", "1000")];
    let app = TestApp::spawn_with(backend, &env).await;
    let alpha = app.signup("alpha").await;
    let value = json!("x".repeat(590));
    let (status, item) = put(&alpha, json!({"namespace": ["cache"], "key": "soon", "value": value, "ttl_s": 1})).await;
    assert_eq!(status, 201, "{item}");
    assert!(item["expires_at"].is_string(), "{item}");
    assert_eq!(alpha.client.store_item_get(&["cache"], "soon").await.unwrap().value, value);
    let second = json!({"namespace": ["cache"], "key": "later", "value": value});
    let (status, problem) = put(&alpha, second.clone()).await;
    assert_eq!((status, problem["code"].as_str()), (413, Some("store_bytes_limit")), "{problem}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while alpha.client.store_item_get(&["cache"], "soon").await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "the item outlived its TTL");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, searched) = search(&alpha, json!({})).await;
    assert_eq!(found(&searched), Vec::<String>::new(), "an expired item is not found by search");
    let (_, listed) = namespaces(&alpha, json!({})).await;
    assert_eq!(joined(&listed), Vec::<String>::new(), "nor is its namespace listed");

    // Its bytes come back once the sweep has deleted it.
    loop {
        let (status, body) = put(&alpha, second.clone()).await;
        if status == 201 {
            break;
        }
        assert_eq!(body["code"], "store_bytes_limit", "{body}");
        assert!(tokio::time::Instant::now() < deadline, "the sweep never gave the expired item's bytes back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A write without ttl_s clears the TTL of the item it replaces.
    put(&alpha, json!({"namespace": ["cache"], "key": "later", "value": 1, "ttl_s": 3600})).await;
    let (_, cleared) = put(&alpha, json!({"namespace": ["cache"], "key": "later", "value": 2})).await;
    assert_eq!(cleared["expires_at"], Value::Null, "{cleared}");
}

on_both_stores!(both_size_limits_have_their_codes_and_writes_give_bytes_back);
async fn both_size_limits_have_their_codes_and_writes_give_bytes_back(backend: Backend) {
    let env = [("AGENTD_LIMITS_MAX_STORE_ITEM_BYTES", "1024"), ("AGENTD_LIMITS_MAX_STORE_BYTES", "3000")];
    let app = TestApp::spawn_with(backend, &env).await;
    let alpha = app.signup("alpha").await;
    // A 1,024-byte value fits (1,022 characters and two quotes); one more byte does not.
    let item = |key: &str, chars: usize| json!({"namespace": ["n"], "key": key, "value": "v".repeat(chars)});
    let (status, problem) = put(&alpha, item("big", 1023)).await;
    assert_eq!((status, problem["code"].as_str()), (413, Some("store_item_too_large")), "{problem}");
    assert!(problem["detail"].as_str().unwrap_or("").contains("max_store_item_bytes"), "{problem}");
    // Each of these counts 1,024 + 1 (namespace) + 1 (key) bytes.
    assert_eq!(put(&alpha, item("a", 1022)).await.0, 201);
    assert_eq!(put(&alpha, item("b", 1022)).await.0, 201);
    let (status, problem) = put(&alpha, item("c", 1022)).await;
    assert_eq!((status, problem["code"].as_str()), (413, Some("store_bytes_limit")), "{problem}");
    let detail = problem["detail"].as_str().unwrap_or("");
    assert!(detail.contains("2052 of its 3000 bytes") && detail.contains("max_store_bytes"), "{detail}");
    assert!(alpha.client.store_item_get(&["n"], "c").await.is_err(), "a refused write changes nothing");

    // Overwriting with less gives the difference back; a delete gives all of it back.
    assert_eq!(put(&alpha, item("a", 10)).await.0, 200);
    assert_eq!(put(&alpha, item("c", 1022)).await.0, 201, "a now holds 1,012 bytes less");
    assert_eq!(put(&alpha, item("d", 1022)).await.0, 413);
    alpha.client.store_item_delete(&["n"], "b").await.unwrap();
    assert_eq!(put(&alpha, item("d", 1022)).await.0, 201, "b's bytes came back");
    // Writing the same size again, or less, passes even with the store full.
    assert_eq!(put(&alpha, item("d", 1022)).await.0, 200);

    // The body limit of PUT follows the default item limit: far larger values are refused
    // before they are read.
    let huge = json!({"namespace": ["n"], "key": "huge", "value": "v".repeat(2 * 1024 * 1024)});
    let (status, problem) = put(&alpha, huge).await;
    assert_eq!((status, problem["code"].as_str()), (413, Some("max_request_body_bytes")), "{problem}");
}

on_both_stores!(a_read_only_key_reads_the_store_but_cannot_write_it);
async fn a_read_only_key_reads_the_store_but_cannot_write_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    put(&alpha, json!({"namespace": ["shared"], "key": "k", "value": {"v": 1}})).await;
    let request = CreateApiKeyRequest { name: "reader".into(), scopes: Some(vec![Scope::Read]), expires_in_days: None };
    let key = alpha.client.api_key_create(&request).await.unwrap();
    let reader =
        TestTenant { client: app.client().with_token(key.secret.clone()), key: key.secret, signup: alpha.signup };
    let (status, problem) = put(&reader, json!({"namespace": ["shared"], "key": "k", "value": 2})).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("insufficient_scope")), "{problem}");
    let (status, problem) = send(&reader, Method::DELETE, "/v1/store/items?namespace=shared&key=k", None).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("insufficient_scope")), "{problem}");
    assert_eq!(reader.client.store_item_get(&["shared"], "k").await.unwrap().value, json!({"v": 1}));
    assert_eq!(found(&search(&reader, json!({})).await.1), ["shared/k"]);
    assert_eq!(joined(&namespaces(&reader, json!({})).await.1), ["shared"]);
}
