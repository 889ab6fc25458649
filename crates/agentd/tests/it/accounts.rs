//! Signup, login, the caller's identity and API keys.

use agentd_api_types::{Actor, CreateAgentRequest, CreateApiKeyRequest, LoginRequest, Scope, SignupRequest};
use agentd_client::ListOptions;
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;

use crate::harness::TestApp;

on_both_stores!(signup_returns_a_key_shown_once_that_authenticates_as_the_new_tenant);
async fn signup_returns_a_key_shown_once_that_authenticates_as_the_new_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    assert!(alpha.key.starts_with("agd_"));
    let me = alpha.client.me().await.unwrap();
    assert_eq!(me.tenant.slug.as_str(), "alpha");
    assert_eq!(me.tenant.id, alpha.signup.tenant.id);
    assert!(matches!(me.actor, Actor::ApiKey { .. }));
    let keys = alpha.client.api_keys_list(&ListOptions::default()).await.unwrap();
    assert_eq!(keys.data.len(), 1);
    let listed = serde_json::to_string(&keys.data[0]).unwrap();
    assert!(!listed.contains(&alpha.key[alpha.key.len() - 10..]), "a listing must not reveal the secret");
    assert!(alpha.key.contains(&keys.data[0].prefix));
}

on_both_stores!(a_taken_workspace_slug_or_email_is_a_conflict);
async fn a_taken_workspace_slug_or_email_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("alpha").await;
    let mut again = SignupRequest {
        email: "other@example.com".into(),
        password: "long enough password".into(),
        workspace_name: "A".into(),
        workspace_slug: "alpha".into(),
    };
    let err = app.client().signup(&again).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("workspace_slug_taken")));
    again.workspace_slug = "alpha-two".into();
    again.email = "ALPHA@example.com".into();
    let err = app.client().signup(&again).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("email_taken")));
}

on_both_stores!(bad_signups_get_problem_documents_with_a_code_and_the_request_id);
async fn bad_signups_get_problem_documents_with_a_code_and_the_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let base = SignupRequest {
        email: "a@example.com".into(),
        password: "long enough password".into(),
        workspace_name: "A".into(),
        workspace_slug: "a".into(),
    };
    let cases = [
        (SignupRequest { password: "short".into(), ..base.clone() }, 422, "weak_password"),
        (SignupRequest { email: "nope".into(), ..base.clone() }, 422, "invalid_email"),
        (SignupRequest { workspace_slug: "Bad Slug".into(), ..base.clone() }, 422, "invalid_workspace_slug"),
        (SignupRequest { workspace_name: " ".into(), ..base.clone() }, 422, "invalid_workspace_name"),
    ];
    for (request, status, code) in cases {
        let err = app.client().signup(&request).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(status), Some(code)));
    }
    let response = app
        .client()
        .request(Method::POST, "/v1/signup")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let header_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "malformed_json");
    assert_eq!(body["status"], 400);
    assert_eq!(body["request_id"], header_id.as_str());
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    // Nothing was created by the failures: the slug is still free.
    app.signup("a").await;
}

on_both_stores!(login_gives_a_working_session_and_a_wrong_password_is_401);
async fn login_gives_a_working_session_and_a_wrong_password_is_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("alpha").await;
    let login = LoginRequest {
        email: "alpha@example.com".into(),
        password: "correct horse battery staple".into(),
        workspace_slug: None,
    };
    let session = app.client().login(&login).await.unwrap();
    assert!(session.token.starts_with("ags_"));
    let me = app.client().with_token(session.token).me().await.unwrap();
    assert_eq!(me.tenant.slug.as_str(), "alpha");
    assert_eq!(me.user.map(|u| u.email), Some("alpha@example.com".to_owned()));
    let wrong = LoginRequest { password: "not the password".into(), ..login.clone() };
    assert_eq!(app.client().login(&wrong).await.unwrap_err().status(), Some(401));
    let unknown = LoginRequest { email: "nobody@example.com".into(), ..login };
    assert_eq!(app.client().login(&unknown).await.unwrap_err().status(), Some(401));
}

on_both_stores!(revoked_unknown_and_missing_credentials_get_401);
async fn revoked_unknown_and_missing_credentials_get_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let created =
        alpha.client.api_key_create(&CreateApiKeyRequest { name: "ci".into(), ..Default::default() }).await.unwrap();
    let ci = app.client().with_token(created.secret.clone());
    ci.me().await.unwrap();
    alpha.client.api_key_revoke(created.key.id.as_str()).await.unwrap();
    assert_eq!(ci.me().await.unwrap_err().status(), Some(401));
    for token in ["agd_bogus_key", "agd_nounderscore", "ags_nosuchsession", "plain"] {
        let err = app.client().with_token(token).me().await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(401), Some("unauthorized")), "{token}");
    }
    let response = app.client().request(Method::GET, "/v1/me").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

on_both_stores!(a_key_can_do_only_what_its_scopes_allow);
async fn a_key_can_do_only_what_its_scopes_allow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let request =
        CreateApiKeyRequest { name: "reader".into(), scopes: Some(vec![Scope::Read]), expires_in_days: Some(1) };
    let reader = app.client().with_token(alpha.api_key(request).await);
    reader.agents_list(&ListOptions::default()).await.unwrap();
    let err = reader.agent_create(&CreateAgentRequest { slug: "x".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("insufficient_scope")));
    let err = reader
        .api_key_create(&CreateApiKeyRequest { name: "escalate".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
}

impl crate::harness::TestTenant {
    async fn api_key(&self, request: CreateApiKeyRequest) -> String {
        self.client.api_key_create(&request).await.unwrap().secret
    }
}

on_both_stores!(sessions_are_listed_revoked_and_ended_by_logout);
async fn sessions_are_listed_revoked_and_ended_by_logout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    let login = LoginRequest {
        email: "alpha@example.com".into(),
        password: "correct horse battery staple".into(),
        workspace_slug: None,
    };
    let laptop = app.client().with_token(app.client().login(&login).await.unwrap().token);
    let phone = app.client().with_token(app.client().login(&login).await.unwrap().token);
    let listed = laptop.sessions_list().await.unwrap().data;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed.iter().filter(|s| s.current).count(), 1, "{listed:?}");
    let phone_id = listed.iter().find(|s| !s.current).map(|s| s.id.to_string()).unwrap();

    // Another user cannot end it, nor can a key: sessions are their user's.
    let beta_login = LoginRequest { email: "beta@example.com".into(), ..login.clone() };
    let beta_session = app.client().with_token(app.client().login(&beta_login).await.unwrap().token);
    assert_eq!(beta_session.session_revoke(&phone_id).await.unwrap_err().status(), Some(404));
    let by_key = alpha.client.sessions_list().await.unwrap_err();
    assert_eq!((by_key.status(), by_key.code()), (Some(403), Some("session_required")));
    assert_eq!(beta.client.logout().await.unwrap_err().code(), Some("session_required"));
    assert_eq!(laptop.session_revoke("ses_nonsense").await.unwrap_err().status(), Some(404));

    laptop.session_revoke(&phone_id).await.unwrap();
    assert_eq!(phone.me().await.unwrap_err().status(), Some(401), "a revoked session is refused");
    laptop.logout().await.unwrap();
    assert_eq!(laptop.me().await.unwrap_err().status(), Some(401), "logged out");
    assert!(alpha.client.me().await.is_ok(), "keys are not sessions");
}

on_both_stores!(wrong_passwords_in_a_row_make_logins_wait_with_a_truthful_retry_after);
async fn wrong_passwords_in_a_row_make_logins_wait_with_a_truthful_retry_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("alpha").await;
    let right = LoginRequest {
        email: "alpha@example.com".into(),
        password: "correct horse battery staple".into(),
        workspace_slug: None,
    };
    let wrong = LoginRequest { password: "not the password".into(), ..right.clone() };
    for _ in 0..5 {
        assert_eq!(app.client().login(&wrong).await.unwrap_err().status(), Some(401));
    }
    // Locked for a second now, whatever the password.
    let response = app.client().request(Method::POST, "/v1/auth/login").json(&right).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, 1);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "login_throttled");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.client().login(&right).await.expect("the right password after the wait");
    // The success reset the count: one wrong password is just wrong again.
    assert_eq!(app.client().login(&wrong).await.unwrap_err().status(), Some(401));
    app.client().login(&right).await.expect("not locked");
}
