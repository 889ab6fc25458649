//! Rate limits: `requests_per_second` per credential with its headers on every
//! authenticated response, `invocations_per_minute` per workspace (an idempotent retry
//! is never refused), operator overrides, a bucket that holds across two replicas on
//! one PostgreSQL, and the per-address limits of signup and login. Each refusal is a
//! `429` with its own code and a `Retry-After`.
//!
//! No test here times anything: they count what was accepted and compare it with what
//! the limit allows over the duration they measured.

use std::time::Instant;

use agentd_api_types::{CreateApiKeyRequest, InvokeRequest, LoginRequest, Scope, SignupRequest};
use agentd_client::{Client, InvokeOptions};
use agentd_test_support::{Backend, on_both_stores, on_postgres};
use reqwest::{Method, Response};

use crate::harness::TestApp;

fn header(response: &Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn me(client: &Client) -> Response {
    client.request(Method::GET, "/v1/me").send().await.expect("GET /v1/me")
}

/// Asserts a `429` problem document with `code` and a whole `Retry-After` of at least 1.
async fn assert_rate_limited(response: Response, code: &str) -> u64 {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = header(&response, "retry-after").parse().expect("Retry-After is whole seconds");
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert_eq!(header(&response, "x-ratelimit-remaining"), "0");
    let problem: serde_json::Value = response.json().await.expect("problem document");
    assert_eq!(problem["code"], code, "{problem}");
    retry_after
}

/// Sends `GET /v1/me` until one is refused (at most `max`); returns the accepted count,
/// the seconds it took and the refusal.
async fn until_refused(client: &Client, max: usize) -> (u64, f64, Option<Response>) {
    let started = Instant::now();
    let mut accepted = 0;
    for _ in 0..max {
        let response = me(client).await;
        if response.status() == 429 {
            return (accepted, started.elapsed().as_secs_f64(), Some(response));
        }
        assert_eq!(response.status(), 200);
        accepted += 1;
    }
    (accepted, started.elapsed().as_secs_f64(), None)
}

on_both_stores!(a_key_over_its_requests_per_second_gets_429_and_every_response_says_what_is_left);
async fn a_key_over_its_requests_per_second_gets_429_and_every_response_says_what_is_left(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_REQUESTS_PER_SECOND", "3")]).await;
    let alpha = app.signup("hasty").await;
    let began = Instant::now();
    let first = me(&alpha.client).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "ratelimit-policy"), "\"requests_per_second\";q=3;w=1");
    assert_eq!(header(&first, "ratelimit"), "\"requests_per_second\";r=2;t=1");
    assert_eq!(header(&first, "x-ratelimit-limit"), "3");
    assert_eq!(header(&first, "x-ratelimit-remaining"), "2");
    assert_eq!(header(&first, "x-ratelimit-reset"), "1");
    // A second key of the workspace has a bucket of its own.
    let request = CreateApiKeyRequest { name: "other".into(), scopes: Some(vec![Scope::Read]), expires_in_days: None };
    let other = alpha.client.api_key_create(&request).await.expect("a second key");
    let other = app.client().with_token(other.secret);

    let (accepted, _, refused) = until_refused(&alpha.client, 100).await;
    let elapsed = began.elapsed().as_secs_f64();
    let refused = refused.expect("100 requests in a row pass 3 per second");
    // Two were spent above; the bucket holds 3 and refills 3 per second.
    assert!((accepted + 2) as f64 <= 3.0 + 3.0 * elapsed + 1.0, "{accepted} accepted in {elapsed} s");
    assert_eq!(header(&refused, "ratelimit-policy"), "\"requests_per_second\";q=3;w=1");
    assert!(header(&refused, "ratelimit").starts_with("\"requests_per_second\";r=0;t="));
    assert_rate_limited(refused, "requests_per_second").await;
    assert_eq!(me(&other).await.status(), 200, "another key is not held back");
    // Unauthenticated routes carry no rate-limit headers.
    let health = app.client().request(Method::GET, "/healthz").send().await.expect("healthz");
    assert!(health.headers().get("ratelimit").is_none());
}

on_both_stores!(an_override_raises_a_workspaces_requests_per_second_at_once);
async fn an_override_raises_a_workspaces_requests_per_second_at_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_REQUESTS_PER_SECOND", "1")]).await;
    let alpha = app.signup("raised").await;
    let (_, _, refused) = until_refused(&alpha.client, 100).await;
    assert_rate_limited(refused.expect("1 per second is passed"), "requests_per_second").await;
    let set = app.admin(&["limits", "set", "raised", "requests_per_second=1000"], &[]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let response = me(&alpha.client).await;
    assert_eq!(response.status(), 200, "the override starts a full bucket of its own");
    assert_eq!(header(&response, "x-ratelimit-limit"), "1000");
    let (accepted, _, refused) = until_refused(&alpha.client, 20).await;
    assert!(refused.is_none() && accepted == 20);
}

on_both_stores!(invocations_per_minute_refuses_the_next_invoke_but_never_an_idempotent_retry);
async fn invocations_per_minute_refuses_the_next_invoke_but_never_an_idempotent_retry(backend: Backend) {
    let env = [("AGENTD_WORKER_SLOTS", "0"), ("AGENTD_LIMITS_INVOCATIONS_PER_MINUTE", "2")];
    let app = TestApp::spawn_with(backend, &env).await;
    let alpha = app.signup("busy").await;
    app.deploy_script(&alpha, "waits", "cat > /dev/null; echo hi").await;
    let request = InvokeRequest::default();
    let keyed = InvokeOptions { idempotency_key: Some("once".into()), ..Default::default() };
    let plain = InvokeOptions::default();
    let first = alpha.client.invoke("waits", &request, &keyed).await.expect("first");
    alpha.client.invoke("waits", &request, &plain).await.expect("second");

    let refused = alpha
        .client
        .request(Method::POST, "/v1/agents/waits/invoke")
        .json(&serde_json::json!({"input": {}}))
        .send()
        .await
        .expect("third");
    assert!(header(&refused, "ratelimit-policy").starts_with("\"invocations_per_minute\";q=2;w=60"));
    let retry_after = assert_rate_limited(refused, "invocations_per_minute").await;
    // One invocation comes back every 30 s.
    assert!(retry_after <= 30, "Retry-After {retry_after}");

    let again = alpha.client.invoke("waits", &request, &keyed).await.expect("a retry is never refused");
    assert_eq!(again.id, first.id);

    let set = app.admin(&["limits", "set", "busy", "invocations_per_minute=10"], &[]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    alpha.client.invoke("waits", &request, &plain).await.expect("the override lets more in");
}

on_both_stores!(signup_and_login_are_limited_per_client_address);
async fn signup_and_login_are_limited_per_client_address(backend: Backend) {
    let env = [("AGENTD_SIGNUPS_PER_HOUR_PER_IP", "2"), ("AGENTD_LOGINS_PER_MINUTE_PER_IP", "3")];
    let app = TestApp::spawn_with(backend, &env).await;
    app.signup("first").await;
    app.signup("second").await;
    let body = SignupRequest {
        email: "third@example.com".into(),
        password: "correct horse battery staple".into(),
        workspace_name: "Third".into(),
        workspace_slug: "third".into(),
    };
    let refused = app.client().request(Method::POST, "/v1/signup").json(&body).send().await.expect("signup");
    let retry_after = assert_rate_limited(refused, "signup_rate_limited").await;
    assert!(retry_after <= 1800, "one signup comes back every 30 minutes: {retry_after}");

    let login = |password: &str| LoginRequest {
        email: "first@example.com".into(),
        password: password.into(),
        workspace_slug: None,
    };
    app.client().login(&login("correct horse battery staple")).await.expect("a login");
    let wrong = app.client().login(&login("wrong password here")).await.expect_err("a wrong password");
    assert_eq!(wrong.status(), Some(401));
    app.client().login(&login("correct horse battery staple")).await.expect("a third attempt");
    let refused = app
        .client()
        .request(Method::POST, "/v1/auth/login")
        .json(&login("correct horse battery staple"))
        .send()
        .await
        .expect("login");
    assert_rate_limited(refused, "login_rate_limited").await;
}

on_postgres!(a_keys_requests_per_second_holds_across_two_replicas_on_one_postgres);
/// Two replicas on one database, one key hammered through both at once: what both
/// accept together stays within one bucket, not one bucket per replica.
async fn a_keys_requests_per_second_holds_across_two_replicas_on_one_postgres() {
    const RATE: f64 = 20.0;
    let app = TestApp::spawn_with(Backend::Postgres, &[("AGENTD_LIMITS_REQUESTS_PER_SECOND", "20")]).await;
    let replica = app.replica().await;
    let alpha = app.signup("shared").await;
    let clients = [app.client().with_token(alpha.key.clone()), replica.client().with_token(alpha.key.clone())];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in clients.iter().cycle().take(8) {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let (mut accepted, mut refused) = (0u64, 0u64);
            for _ in 0..100 {
                match me(&client).await.status().as_u16() {
                    200 => accepted += 1,
                    429 => refused += 1,
                    other => panic!("unexpected status {other}"),
                }
            }
            (accepted, refused)
        }));
    }
    let (mut accepted, mut refused) = (0, 0);
    for task in tasks {
        let (a, r) = task.await.expect("join");
        accepted += a;
        refused += r;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowance = RATE * elapsed + RATE + 1.0;
    assert!(accepted as f64 <= allowance, "{accepted} accepted in {elapsed:.2} s; at most {allowance:.1} allowed");
    assert!(accepted >= RATE as u64 && refused > 0, "{accepted} accepted, {refused} refused in {elapsed:.2} s");
}
