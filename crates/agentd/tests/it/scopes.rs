//! The route table of docs/API.md ("Routes and scopes") is the truth about who may call
//! what, and this walk holds the server to it. It keeps no list of its own: the routes
//! come from the table, and the routes the server serves come from the router's source
//! (every `.route("…"` under `agentd-api/src/v1` and `src/worker`, nested at `/v1`),
//! each probed with every method to see which it answers. Then, for each route, a key
//! with every scope but the one needed (and not `admin`, which implies the others) is
//! refused `403 insufficient_scope`, a key with only that scope gets through (a session
//! of the least role, for session routes), and sessions of lesser roles are refused.

use std::collections::BTreeSet;
use std::path::Path;

use agentd_api_types::{CreateApiKeyRequest, LoginRequest, Role, Scope};
use agentd_client::Client;
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, TestTenant};
use crate::members::join_as;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const PASSWORD: &str = "correct horse battery staple";

/// What a route asks of its caller, as the table says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Needs {
    Nothing,
    Worker,
    /// An operator token (`agentd admin operator create-token`); no workspace credential.
    Operator,
    Scope {
        scope: Scope,
        session_only: bool,
    },
}

#[derive(Debug, Clone)]
struct Row {
    method: String,
    path: String,
    needs: Needs,
    min_role: Option<Role>,
}

fn repo_file(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

/// The rows of the table under `## Routes and scopes` in docs/API.md.
fn route_table() -> Vec<Row> {
    let doc = std::fs::read_to_string(repo_file("docs/API.md")).unwrap();
    let section = doc.split("\n## Routes and scopes\n").nth(1).expect("docs/API.md has `## Routes and scopes`");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 5, "a row has method, path, scope, minimum role, run token: {line}");
        let needs = match cells[2] {
            "none" => Needs::Nothing,
            "worker" => Needs::Worker,
            "operator" => Needs::Operator,
            other => {
                let (word, session_only) = match other.strip_suffix(" (session)") {
                    Some(word) => (word, true),
                    None => (other, false),
                };
                Needs::Scope { scope: Scope::parse(word).unwrap(), session_only }
            }
        };
        let min_role = match cells[3] {
            "—" => None,
            role => Some(Role::parse(role).unwrap()),
        };
        assert!(matches!(cells[4], "yes" | "no"), "{line}");
        rows.push(Row {
            method: cells[0].trim_matches('`').into(),
            path: cells[1].trim_matches('`').into(),
            needs,
            min_role,
        });
    }
    assert!(rows.len() > 40, "the table was not found whole: {} rows", rows.len());
    rows
}

/// Every path the router declares under `/v1`, from its source.
pub(crate) fn served_paths() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for dir in ["crates/agentd-api/src/v1", "crates/agentd-api/src/worker"] {
        for entry in std::fs::read_dir(repo_file(dir)).unwrap().flatten() {
            let source = std::fs::read_to_string(entry.path()).unwrap();
            for after in source.split(".route(").skip(1) {
                let literal = after.trim_start().strip_prefix('"').and_then(|rest| rest.split('"').next());
                let literal = literal.expect("a route's path is a string literal");
                // A catch-all `{*name}` reads as `{name}` in the docs.
                paths.insert(format!("/v1{}", literal.replace("{*", "{")));
            }
        }
    }
    paths
}

/// A path with syntactically valid ids that name nothing.
pub(crate) fn concrete(path: &str) -> String {
    let mut out = Vec::new();
    let mut previous = "";
    for segment in path.split('/') {
        let value = match segment {
            "{id}" => match previous {
                "members" => "usr_00000000000000000000000000000000".to_owned(),
                "invites" => "ivt_00000000000000000000000000000000".to_owned(),
                "sessions" => "ses_00000000000000000000000000000000".to_owned(),
                "api-keys" => "key_00000000000000000000000000000000".to_owned(),
                "invocations" => "inv_00000000000000000000000000000000".to_owned(),
                "threads" => "thr_00000000000000000000000000000000".to_owned(),
                "schedules" => "sch_00000000000000000000000000000000".to_owned(),
                "tenants" => "ten_00000000000000000000000000000000".to_owned(),
                "triggers" => "trg_00000000000000000000000000000000".to_owned(),
                "webhooks" => "whk_00000000000000000000000000000000".to_owned(),
                other => panic!("no fake id for `{other}/{{id}}`: add one here"),
            },
            "{delivery_id}" => "dlv_00000000000000000000000000000000".to_owned(),
            "{token}" => "agi_nosuchinvitetoken".to_owned(),
            "{slug}" => "ghost".to_owned(),
            "{n}" => "1".to_owned(),
            "{name}" => "NAME".to_owned(),
            "{digest}" => "0".repeat(64),
            other => other.to_owned(),
        };
        previous = segment;
        out.push(value);
    }
    let path = out.join("/");
    if path == "/v1/store/items" { format!("{path}?namespace=probe&key=k") } else { path }
}

/// A body that passes parsing, so what answers is the authorization.
pub(crate) fn body(method: &str, path: &str) -> Option<Value> {
    let body = match (method, path) {
        ("GET" | "DELETE", _) => return None,
        ("POST", "/v1/agents/{slug}/versions") => return None,
        ("POST", "/v1/api-keys") => json!({"name": "probe"}),
        ("POST", "/v1/agents") => json!({"slug": "probe"}),
        ("PATCH", "/v1/agents/{slug}") => json!({"name": "probe"}),
        ("PUT", "/v1/agents/{slug}/secrets/{name}") => json!({"value": "probe"}),
        ("POST", "/v1/agents/{slug}/triggers") => json!({"mode": "github"}),
        ("POST", "/v1/agents/{slug}/invoke") => json!({"input": {}}),
        ("POST", "/v1/invocations/{id}/respond") => json!({"answer": 1}),
        ("PATCH", "/v1/threads/{id}") => json!({"metadata": {}}),
        ("POST", "/v1/threads/{id}/state") => json!({"state": 1}),
        ("POST", "/v1/schedules") => json!({"agent": "ghost", "cron": "* * * * *", "timezone": "UTC"}),
        ("PUT", "/v1/store/items") => json!({"namespace": ["probe"], "key": "k", "value": 1}),
        ("POST", "/v1/invites") => json!({"email": "probe@example.com", "role": "viewer"}),
        ("PATCH", "/v1/members/{id}") => json!({"role": "viewer"}),
        ("POST", "/v1/auth/switch") => json!({"workspace_slug": "nowhere"}),
        ("POST", "/v1/admin/tenants") => json!({"slug": "probe", "owner_email": "probe@example.com"}),
        ("PUT", "/v1/admin/tenants/{id}/limits") => json!({"set": {"max_agents": 1}}),
        ("POST", "/v1/webhooks") => json!({"url": "https://93.184.216.34/hook", "events": ["invocation.failed"]}),
        _ => json!({}),
    };
    Some(body)
}

async fn call(client: &Client, row: &Row) -> (u16, Value) {
    let method = Method::from_bytes(row.method.as_bytes()).unwrap();
    let mut request = client.request(method, &concrete(&row.path));
    if let Some(body) = body(&row.method, &row.path) {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A key of `tenant` holding exactly `scopes`.
async fn key_with(app: &TestApp, tenant: &TestTenant, scopes: Vec<Scope>) -> Client {
    let request = CreateApiKeyRequest { name: "walk".into(), scopes: Some(scopes), ..Default::default() };
    app.client().with_token(tenant.client.api_key_create(&request).await.unwrap().secret)
}

/// Every scope that does not grant `needed`.
fn all_but(needed: Scope) -> Vec<Scope> {
    Scope::ALL.into_iter().filter(|s| *s != needed && *s != Scope::Admin).collect()
}

const ROLES: [Role; 4] = [Role::Viewer, Role::Developer, Role::Admin, Role::Owner];

fn rank(role: Role) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap()
}

on_both_stores!(every_route_is_in_the_table_and_needs_exactly_the_scope_and_role_it_says);
async fn every_route_is_in_the_table_and_needs_exactly_the_scope_and_role_it_says(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let table = route_table();

    // (a) The table and the router agree, route by route and method by method.
    let mut served = BTreeSet::new();
    for path in served_paths() {
        for method in METHODS {
            let row = Row { method: method.into(), path: path.clone(), needs: Needs::Nothing, min_role: None };
            let (status, problem) = call(&app.client(), &row).await;
            let unserved = status == 405 || problem["code"] == "route_not_found";
            if !unserved {
                served.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let listed: BTreeSet<(String, String)> = table.iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    assert!(missing.is_empty(), "served but not in docs/API.md's route table: {missing:?}");
    let unserved: Vec<_> = listed.difference(&served).collect();
    assert!(unserved.is_empty(), "in docs/API.md's route table but not served: {unserved:?}");

    // The roles' sessions, and keys by scope.
    let mut sessions = Vec::new();
    for role in [Role::Viewer, Role::Developer, Role::Admin] {
        sessions.push((role, join_as(&app, &alpha, &format!("{}@example.com", role.as_str()), role).await));
    }
    let owner_login =
        LoginRequest { email: "alpha@example.com".into(), password: PASSWORD.into(), workspace_slug: None };
    sessions.push((Role::Owner, app.client().with_token(app.client().login(&owner_login).await.unwrap().token)));
    let fresh_session = |role: Role| {
        let email =
            if role == Role::Owner { "alpha@example.com".to_owned() } else { format!("{}@example.com", role.as_str()) };
        let login = LoginRequest { email, password: PASSWORD.into(), workspace_slug: None };
        let app = &app;
        async move { app.client().with_token(app.client().login(&login).await.unwrap().token) }
    };
    let mut without = Vec::new();
    let mut only = Vec::new();
    for scope in Scope::ALL {
        without.push((scope, key_with(&app, &alpha, all_but(scope)).await));
        only.push((scope, key_with(&app, &alpha, vec![scope]).await));
    }
    let key_for = |keys: &[(Scope, Client)], scope: Scope| keys.iter().find(|(s, _)| *s == scope).unwrap().1.clone();

    for row in &table {
        let what = format!("{} {}", row.method, row.path);
        match &row.needs {
            Needs::Nothing => {
                let (status, body) = call(&app.client(), row).await;
                assert!(status != 401 && status != 403, "{what} needs no credential: {status} {body}");
            }
            Needs::Worker => {
                let (status, body) = call(&alpha.client, row).await;
                assert_eq!(status, 401, "{what} takes a worker token, not an API key: {body}");
            }
            Needs::Operator => {
                let (status, body) = call(&alpha.client, row).await;
                assert_eq!((status, body["code"].as_str()), (403, Some("operator_required")), "{what}: {body}");
            }
            Needs::Scope { scope, session_only } => {
                // (b) Every other scope is refused; the scope alone gets through.
                let (status, body) = call(&key_for(&without, *scope), row).await;
                assert_eq!((status, body["code"].as_str()), (403, Some("insufficient_scope")), "{what}: {body}");
                let (status, body) = call(&key_for(&only, *scope), row).await;
                if *session_only {
                    assert_eq!((status, body["code"].as_str()), (403, Some("session_required")), "{what}: {body}");
                } else {
                    assert!(status != 401 && status != 403, "{what} with a `{}` key: {status} {body}", scope.as_str());
                }
                // (c) Sessions of roles below the least one are refused; it gets through.
                let least = row.min_role.expect("a scoped route names its least role");
                assert_eq!(ROLES.iter().find(|r| r.scopes().allows(*scope)), Some(&least), "{what}: the least role");
                for (role, session) in &sessions {
                    if rank(*role) < rank(least) {
                        let (status, body) = call(session, row).await;
                        assert_eq!(status, 403, "{what} with a {} session: {body}", role.as_str());
                    }
                }
                // A fresh session, since some routes end the one they are called with.
                let (status, body) = call(&fresh_session(least).await, row).await;
                assert!(status != 401 && status != 403, "{what} with a {} session: {status} {body}", least.as_str());
            }
        }
    }
}
