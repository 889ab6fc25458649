//! The machine-readable contract: `/openapi.json` describes every route the router
//! serves under `/v1` (the worker protocol aside), validates as OpenAPI 3.1, and holds
//! against a live server under schemathesis; `/docs` serves Swagger UI from the binary.
//!
//! The routes come from the router's source, as `scopes.rs` reads them, each probed with
//! every method: no list is kept here. The Python tools (`openapi-spec-validator`,
//! `schemathesis`) are found through `AGENTD_TEST_OPENAPI_SPEC_VALIDATOR` and
//! `AGENTD_TEST_SCHEMATHESIS` (`.ci/run` installs them in a venv) or on `PATH`; a test
//! whose tool is absent is skipped, except under `CI`, where it fails.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::Value;

use crate::harness::TestApp;
use crate::scopes::{body, concrete, served_paths};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Operations schemathesis leaves out: see where it runs.
const EXCLUDED: [&str; 6] =
    ["events_stream", "builds_stream", "keys_revoke", "members_remove", "accounts_revoke_session", "accounts_logout"];

async fn document(app: &TestApp) -> Value {
    let response = app.client().request(Method::GET, "/openapi.json").send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The tool at `$var`, or `name` on `PATH`; `None` (after saying so) outside CI.
fn python_tool(var: &str, name: &str) -> Option<PathBuf> {
    let found = std::env::var_os(var).map(PathBuf::from).or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{name} is missing (pip install {name}, or set {var})");
        eprintln!("skipping: {name} is not installed (pip install {name}, or set {var})");
    }
    found
}

on_both_stores!(every_served_route_is_in_the_openapi_document);
async fn every_served_route_is_in_the_openapi_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut described = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method.to_lowercase()).is_some() {
                described.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let mut served = BTreeSet::new();
    for path in served_paths().into_iter().filter(|p| !p.starts_with("/v1/worker/")) {
        for method in METHODS {
            let mut request = app.client().request(Method::from_bytes(method.as_bytes()).unwrap(), &concrete(&path));
            if let Some(body) = body(method, &path) {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let problem: Value = response.json().await.unwrap_or(Value::Null);
            if status != 405 && problem["code"] != "route_not_found" {
                served.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let missing: Vec<_> = served.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "served but not in /openapi.json (add #[utoipa::path] and the module's Doc): {missing:?}"
    );
    let stale: Vec<_> = described.difference(&served).collect();
    assert!(stale.is_empty(), "in /openapi.json but not served: {stale:?}");
    assert!(!described.iter().any(|(_, p)| p.starts_with("/v1/worker")), "the worker protocol is not published");
}

on_both_stores!(every_operation_documents_its_problem_documents_and_the_bearer_scheme);
async fn every_operation_documents_its_problem_documents_and_the_bearer_scheme(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let problem = &doc["components"]["schemas"]["Problem"]["properties"];
    for field in ["type", "title", "status", "detail", "code", "request_id"] {
        assert!(problem.get(field).is_some(), "Problem has `{field}`");
    }
    assert_eq!(doc["servers"][0]["url"], "/", "try it calls the server that serves the document");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in ["400", "401", "404", "500"] {
                let content = &operation["responses"][status]["content"]["application/problem+json"];
                assert!(content.is_object(), "{method} {path} documents {status} as a problem document");
            }
        }
    }
    let events = &doc["paths"]["/v1/invocations/{id}/events"]["get"]["responses"]["200"]["content"];
    assert!(events.get("text/event-stream").is_some(), "the SSE route is text/event-stream: {events}");
    let upload = &doc["paths"]["/v1/agents/{slug}/versions"]["post"]["requestBody"]["content"];
    assert!(upload.get("application/gzip").is_some() && upload.get("application/zip").is_some(), "{upload}");
    let list = &doc["paths"]["/v1/agents"]["get"]["parameters"];
    let names: Vec<_> = list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["limit", "cursor"], "lists take `limit` and `cursor`");
    assert_eq!(doc["paths"]["/v1/signup"]["post"]["security"], serde_json::json!([{}]), "signup needs no credential");
}

on_both_stores!(the_document_validates_as_openapi_3_1);
async fn the_document_validates_as_openapi_3_1(backend: Backend) {
    let Some(validator) = python_tool("AGENTD_TEST_OPENAPI_SPEC_VALIDATOR", "openapi-spec-validator") else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let file = app.data_dir.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&document(&app).await).unwrap()).unwrap();
    let output = Command::new(validator).arg(&file).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "openapi-spec-validator: {text}");
}

on_both_stores!(the_docs_page_and_its_assets_come_from_the_binary);
async fn the_docs_page_and_its_assets_come_from_the_binary(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let get = |path: &'static str| {
        let client = app.client();
        async move {
            let response = client.request(Method::GET, path).send().await.unwrap();
            let status = response.status().as_u16();
            let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            (status, kind, response.text().await.unwrap_or_default())
        }
    };
    let (status, kind, html) = get("/docs/").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://"), "the page loads nothing from elsewhere: {html}");
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/swagger-initializer.js"] {
        let (status, _, text) = get(asset).await;
        assert_eq!(status, 200, "{asset}");
        assert!(text.len() > 20, "{asset} has content");
    }
    let (_, _, initializer) = get("/docs/swagger-initializer.js").await;
    assert!(initializer.contains("/openapi.json"), "the UI reads this server's document: {initializer}");
}

on_both_stores!(schemathesis_finds_no_server_error_schema_mismatch_or_undocumented_status);
async fn schemathesis_finds_no_server_error_schema_mismatch_or_undocumented_status(backend: Backend) {
    let Some(schemathesis) = python_tool("AGENTD_TEST_SCHEMATHESIS", "schemathesis") else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("fuzzed").await;
    let output = Command::new(schemathesis)
        .current_dir(&app.data_dir)
        .args(["run", &format!("{}/openapi.json", app.base_url)])
        .args(["--header", &format!("Authorization: Bearer {}", tenant.key)])
        .args(["--checks", "not_a_server_error,response_schema_conformance,status_code_conformance"])
        .args(["--max-examples", "10", "--phases", "examples,fuzzing", "--request-timeout", "30"])
        .args(["--generation-deterministic", "--no-color"])
        // Streams never end; the rest would end the fuzzer's own credential (it learns ids
        // from the lists) or are an operator's.
        .args(["--exclude-path-regex", "^/v1/admin/"])
        .args(EXCLUDED.iter().flat_map(|id| ["--exclude-operation-id", id]))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found problems:\n{text}");
}
