//! Bad input gets a clear error and changes nothing: every JSON route refuses bodies that
//! are not objects and fields it does not know, naming them; lists refuse limits out of
//! range and cursors they did not hand out; the data dir is private to the server.

use std::os::unix::fs::PermissionsExt;

use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, invoke_and_wait};

async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

on_both_stores!(every_json_route_refuses_unknown_fields_and_bodies_that_are_not_objects);
async fn every_json_route_refuses_unknown_fields_and_bodies_that_are_not_objects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_example(&alpha, "shell-wc").await;
    let anonymous = app.client();
    let worker = app.client().with_token(app.create_worker_token());
    let routes = [
        (&anonymous, Method::POST, "/v1/signup"),
        (&anonymous, Method::POST, "/v1/auth/login"),
        (&alpha.client, Method::POST, "/v1/api-keys"),
        (&alpha.client, Method::POST, "/v1/agents"),
        (&alpha.client, Method::PATCH, "/v1/agents/shell-wc"),
        (&alpha.client, Method::PUT, "/v1/agents/shell-wc/secrets/API_KEY"),
        (&alpha.client, Method::POST, "/v1/agents/shell-wc/invoke"),
        (&alpha.client, Method::POST, "/v1/invocations/inv_00000000000000000000000000000000/respond"),
        (&alpha.client, Method::POST, "/v1/threads"),
        (&alpha.client, Method::PATCH, "/v1/threads/thr_00000000000000000000000000000000"),
        (&alpha.client, Method::POST, "/v1/threads/thr_00000000000000000000000000000000/state"),
        (&alpha.client, Method::PUT, "/v1/store/items"),
        (&alpha.client, Method::POST, "/v1/store/items/search"),
        (&alpha.client, Method::POST, "/v1/store/namespaces"),
        (&alpha.client, Method::POST, "/v1/invites"),
        (&alpha.client, Method::PATCH, "/v1/members/usr_00000000000000000000000000000000"),
        (&alpha.client, Method::POST, "/v1/auth/switch"),
        (&anonymous, Method::POST, "/v1/invites/agi_unknown/accept"),
        (&worker, Method::POST, "/v1/worker/claim"),
        (&worker, Method::POST, "/v1/worker/heartbeat"),
        (&worker, Method::POST, "/v1/worker/events"),
        (&worker, Method::POST, "/v1/worker/complete"),
        (&worker, Method::POST, "/v1/worker/release"),
        (&worker, Method::POST, "/v1/worker/builds/claim"),
        (&worker, Method::POST, "/v1/worker/builds/log"),
        (&worker, Method::POST, "/v1/worker/builds/fail"),
    ];
    for (client, method, path) in routes {
        let (status, body) =
            problem(client.request(method.clone(), path).json(&json!({"evil": 1})).send().await.unwrap()).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("invalid_body")), "{method} {path}: {body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("evil"), "the error names the field: {body}");
        for not_an_object in [json!([1, 2]), json!("text"), json!(7), Value::Null] {
            let (status, body) =
                problem(client.request(method.clone(), path).json(&not_an_object).send().await.unwrap()).await;
            assert_eq!((status, body["code"].as_str()), (422, Some("invalid_body")), "{method} {path} {not_an_object}");
        }
    }
    // A field beside valid ones, and one that looks plausible but does not exist.
    let invoke = json!({"input": {}, "evil": 1});
    let response = alpha.client.request(Method::POST, "/v1/agents/shell-wc/invoke").json(&invoke).send().await.unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, 422, "{body}");
    let key = json!({"name": "ci", "expires_at": "2030-01-01T00:00:00Z"});
    let (status, body) =
        problem(alpha.client.request(Method::POST, "/v1/api-keys").json(&key).send().await.unwrap()).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap_or("").contains("expires_at"), "{body}");
    // Nothing was made meanwhile.
    let invocations = alpha.client.invocations_list(&Default::default()).await.unwrap();
    assert!(invocations.data.is_empty(), "{:?}", invocations.data);
    let keys = alpha.client.api_keys_list(&Default::default()).await.unwrap();
    assert_eq!(keys.data.len(), 1);
    assert!(alpha.client.secrets_list("shell-wc").await.unwrap().data.is_empty());
    // Query strings too.
    let (status, body) = problem(alpha.client.request(Method::GET, "/v1/agents?evil=1").send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_query")), "{body}");
    let path = "/v1/store/items?namespace=a&key=k&evil=1";
    let (status, body) = problem(alpha.client.request(Method::GET, path).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_query")), "{body}");
}

on_both_stores!(lists_refuse_limits_out_of_range_and_cursors_they_did_not_hand_out);
async fn lists_refuse_limits_out_of_range_and_cursors_they_did_not_hand_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_example(&alpha, "shell-wc").await;
    let inv = invoke_and_wait(&alpha, "shell-wc", json!({})).await.id;
    let thread = alpha.client.thread_create(&Default::default()).await.unwrap().id;
    let lists = [
        "/v1/threads".to_owned(),
        format!("/v1/threads/{thread}/history"),
        "/v1/agents".to_owned(),
        "/v1/api-keys".to_owned(),
        "/v1/members".to_owned(),
        "/v1/invites".to_owned(),
        "/v1/invocations".to_owned(),
        "/v1/agents/shell-wc/versions".to_owned(),
        format!("/v1/invocations/{inv}/artifacts"),
    ];
    for list in &lists {
        for (query, code) in [
            ("limit=0", "invalid_limit"),
            ("limit=100000", "invalid_limit"),
            ("limit=201", "invalid_limit"),
            ("cursor=garbage%00", "invalid_cursor"),
        ] {
            let path = format!("{list}?{query}");
            let (status, body) = problem(alpha.client.request(Method::GET, &path).send().await.unwrap()).await;
            assert_eq!((status, body["code"].as_str()), (400, Some(code)), "{path}: {body}");
        }
        let path = format!("{list}?limit=200");
        assert_eq!(alpha.client.request(Method::GET, &path).send().await.unwrap().status(), 200, "{path}");
    }
    for list in ["/v1/agents", "/v1/invocations", "/v1/api-keys", "/v1/threads"] {
        let path = format!("{list}?cursor=garbage");
        let (status, body) = problem(alpha.client.request(Method::GET, &path).send().await.unwrap()).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_cursor")), "{path}: {body}");
    }
    for query in ["limit=0", "limit=1001"] {
        let path = format!("/v1/invocations/{inv}/logs?{query}");
        let (status, body) = problem(alpha.client.request(Method::GET, &path).send().await.unwrap()).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_limit")), "{path}: {body}");
    }
}

on_both_stores!(control_characters_are_refused_in_names_and_recorded_safely_in_agent_lines);
async fn control_characters_are_refused_in_names_and_recorded_safely_in_agent_lines(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    for body in [json!({"slug": "a", "name": "bad\u{0}name"}), json!({"slug": "b", "description": "nul\u{0}"})] {
        let (status, problem) =
            problem(alpha.client.request(Method::POST, "/v1/agents").json(&body).send().await.unwrap()).await;
        assert_eq!((status, problem["code"].as_str()), (422, Some("invalid_field")), "{body}: {problem}");
    }
    for query in ["thread_id=%00", "parent_id=%00", "parent_id=inv_short"] {
        let path = format!("/v1/invocations?{query}");
        let (status, body) = problem(alpha.client.request(Method::GET, &path).send().await.unwrap()).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_query")), "{path}: {body}");
    }
    app.deploy_script(&alpha, "nul", "printf 'before\\000after\\n'\nprintf '{\"type\":\"output\",\"data\":1}\\n' >&3")
        .await;
    let done = invoke_and_wait(&alpha, "nul", json!({})).await;
    assert_eq!(done.status, agentd_api_types::InvocationStatus::Succeeded, "{done:?}");
    let lines = crate::harness::log_messages(&alpha, done.id.as_str()).await;
    assert!(lines.iter().any(|l| l == "before\u{fffd}after"), "{lines:?}");
}

#[tokio::test]
async fn the_data_dir_the_database_and_the_blobs_are_private_to_the_server() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let alpha = app.signup("alpha").await;
    app.deploy_example(&alpha, "shell-wc").await;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&app.data_dir), 0o700, "the data dir");
    let database = app.sqlite_path().unwrap();
    assert_eq!(mode(&database), 0o600, "the database");
    let blobs = app.data_dir.join("blobs/sha256");
    assert_eq!(mode(&blobs), 0o700, "the blob directory");
    for blob in std::fs::read_dir(&blobs).unwrap().flatten() {
        assert_eq!(mode(&blob.path()), 0o600, "{}", blob.path().display());
    }
}
