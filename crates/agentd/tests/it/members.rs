//! Members, roles and invites: who may do what in a workspace, and how people join it.

use agentd_api_types::{AcceptInviteRequest, CreateApiKeyRequest, CreateInviteRequest, LoginRequest, Role, Scope};
use agentd_client::{Client, ListOptions};
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::json;

use crate::harness::{TestApp, TestTenant};

const PASSWORD: &str = "correct horse battery staple";

/// Invites `email` as `role` into `tenant` and accepts as a new user: their session.
pub async fn join_as(app: &TestApp, tenant: &TestTenant, email: &str, role: Role) -> Client {
    let invite = tenant.client.invite_create(&CreateInviteRequest { email: email.into(), role }).await.unwrap();
    let request = AcceptInviteRequest { password: Some(PASSWORD.into()), ..Default::default() };
    let joined = app.client().invite_accept(&invite.token, &request).await.unwrap();
    assert_eq!(joined.role, role);
    app.client().with_token(joined.token)
}

pub async fn owner_session(app: &TestApp, slug: &str) -> Client {
    let login = LoginRequest { email: format!("{slug}@example.com"), password: PASSWORD.into(), workspace_slug: None };
    app.client().with_token(app.client().login(&login).await.unwrap().token)
}

on_both_stores!(an_invite_is_accepted_once_and_the_member_is_listed_changed_and_removed);
async fn an_invite_is_accepted_once_and_the_member_is_listed_changed_and_removed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let owner = owner_session(&app, "alpha").await;
    let invite = owner
        .invite_create(&CreateInviteRequest { email: "Dev@Example.com".into(), role: Role::Developer })
        .await
        .unwrap();
    assert!(invite.token.starts_with("agi_"));
    assert_eq!(invite.invite.email, "dev@example.com");
    let pending = owner.invites_list(&ListOptions::default()).await.unwrap();
    assert_eq!(pending.data.len(), 1);
    assert!(!serde_json::to_string(&pending).unwrap().contains(&invite.token), "a listing never shows the token");

    let new_user = AcceptInviteRequest { password: Some(PASSWORD.into()), ..Default::default() };
    let joined = app.client().invite_accept(&invite.token, &new_user).await.unwrap();
    let dev = app.client().with_token(joined.token);
    let me = dev.me().await.unwrap();
    assert_eq!((me.tenant.slug.as_str(), me.role), ("alpha", Some(Role::Developer)));
    let again = app.client().invite_accept(&invite.token, &new_user).await.unwrap_err();
    assert_eq!((again.status(), again.code()), (Some(409), Some("invite_used")));
    let unknown = app.client().invite_accept("agi_nosuchinvite", &new_user).await.unwrap_err();
    assert_eq!(unknown.status(), Some(404));
    assert!(owner.invites_list(&ListOptions::default()).await.unwrap().data.is_empty());

    let members = owner.members_list(&ListOptions::default()).await.unwrap().data;
    let emails: Vec<(&str, Role)> = members.iter().map(|m| (m.email.as_str(), m.role)).collect();
    assert_eq!(emails, [("dev@example.com", Role::Developer), ("alpha@example.com", Role::Owner)]);
    let dev_id = joined.user.id.to_string();

    // A developer cannot manage members, keys or invites.
    let refused = dev.member_set_role(&dev_id, Role::Admin).await.unwrap_err();
    assert_eq!((refused.status(), refused.code()), (Some(403), Some("insufficient_scope")));
    let refused = dev.invite_create(&CreateInviteRequest { email: "x@example.com".into(), role: Role::Viewer }).await;
    assert_eq!(refused.unwrap_err().code(), Some("insufficient_scope"));
    assert_eq!(dev.api_keys_list(&ListOptions::default()).await.unwrap_err().code(), Some("insufficient_scope"));

    // Roles decide the session's scopes at once.
    let admin = owner.member_set_role(&dev_id, Role::Admin).await.unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert!(dev.me().await.unwrap().scopes.allows(Scope::Admin));
    let key = dev.api_key_create(&CreateApiKeyRequest { name: "dev's".into(), ..Default::default() }).await.unwrap();
    let dev_key = app.client().with_token(key.secret);
    dev_key.me().await.unwrap();
    // A key made with that key names it as its creator, and goes with it.
    let made = dev_key.api_key_create(&CreateApiKeyRequest { name: "by key".into(), ..Default::default() }).await;
    let key_of_key = app.client().with_token(made.unwrap().secret);
    // An admin may not grant owner, nor touch an owner.
    let owner_id = alpha.signup.user.id.to_string();
    for refused in [dev.member_set_role(&dev_id, Role::Owner).await, dev.member_set_role(&owner_id, Role::Viewer).await]
    {
        assert_eq!(refused.unwrap_err().code(), Some("owner_required"));
    }
    let refused = dev.invite_create(&CreateInviteRequest { email: "o@example.com".into(), role: Role::Owner }).await;
    assert_eq!(refused.unwrap_err().code(), Some("owner_required"));
    assert_eq!(dev.member_remove(&owner_id).await.unwrap_err().code(), Some("owner_required"));

    // Removal ends the member's sessions and revokes the keys they made.
    owner.member_remove(&dev_id).await.unwrap();
    assert_eq!(dev.me().await.unwrap_err().status(), Some(401));
    assert_eq!(dev_key.me().await.unwrap_err().status(), Some(401));
    assert_eq!(key_of_key.me().await.unwrap_err().status(), Some(401));
    assert_eq!(owner.member_get(&dev_id).await.unwrap_err().status(), Some(404));
    assert_eq!(owner.members_list(&ListOptions::default()).await.unwrap().data.len(), 1);
}

on_both_stores!(the_last_owner_can_neither_leave_nor_be_demoted);
async fn the_last_owner_can_neither_leave_nor_be_demoted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let owner = owner_session(&app, "alpha").await;
    let owner_id = alpha.signup.user.id.to_string();
    for refused in [owner.member_remove(&owner_id).await, owner.member_set_role(&owner_id, Role::Admin).await.map(drop)]
    {
        let err = refused.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(409), Some("last_owner")));
    }
    // With a second owner, the first may step down, and a viewer may leave by themselves.
    let second = join_as(&app, &alpha, "second@example.com", Role::Viewer).await;
    let second_id = second.me().await.unwrap().user.unwrap().id.to_string();
    owner.member_set_role(&second_id, Role::Owner).await.unwrap();
    owner.member_set_role(&owner_id, Role::Viewer).await.unwrap();
    let err = second.member_remove(&second_id).await.unwrap_err();
    assert_eq!(err.code(), Some("last_owner"));
    owner.member_remove(&owner_id).await.unwrap();
    assert_eq!(owner.me().await.unwrap_err().status(), Some(401));
    let left = second.members_list(&ListOptions::default()).await.unwrap().data;
    assert_eq!(left.iter().map(|m| m.role).collect::<Vec<_>>(), [Role::Owner]);
}

on_both_stores!(a_user_of_two_workspaces_switches_between_them_and_existing_users_accept_invites);
async fn a_user_of_two_workspaces_switches_between_them_and_existing_users_accept_invites(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    let gamma = app.signup("gamma").await;
    // beta's owner joins alpha with email and password, and gamma with their session.
    let invite =
        alpha.client.invite_create(&CreateInviteRequest { email: "beta@example.com".into(), role: Role::Viewer }).await;
    let by_password = AcceptInviteRequest { email: Some("beta@example.com".into()), password: Some(PASSWORD.into()) };
    let joined = app.client().invite_accept(&invite.unwrap().token, &by_password).await.unwrap();
    assert_eq!(joined.tenant.slug.as_str(), "alpha");
    let in_alpha = app.client().with_token(joined.token);
    let request = CreateInviteRequest { email: "beta@example.com".into(), role: Role::Admin };
    let token = gamma.client.invite_create(&request).await.unwrap().token;
    // A new account for an email that has one is refused; so is someone else's session.
    let new_user = AcceptInviteRequest { password: Some(PASSWORD.into()), ..Default::default() };
    assert_eq!(app.client().invite_accept(&token, &new_user).await.unwrap_err().code(), Some("email_taken"));
    let other = owner_session(&app, "alpha").await;
    let err = other.invite_accept(&token, &AcceptInviteRequest::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("invite_email_mismatch")));
    let joined = in_alpha.invite_accept(&token, &AcceptInviteRequest::default()).await.unwrap();
    assert_eq!((joined.tenant.slug.as_str(), joined.role), ("gamma", Role::Admin));

    // Switching gives a session in the other workspace, with the role there.
    let to_beta = in_alpha.workspace_switch("beta").await.unwrap();
    let me = app.client().with_token(to_beta.token).me().await.unwrap();
    assert_eq!((me.tenant.slug.as_str(), me.role), ("beta", Some(Role::Owner)));
    let in_gamma = app.client().with_token(in_alpha.workspace_switch("gamma").await.unwrap().token);
    assert_eq!(in_gamma.me().await.unwrap().role, Some(Role::Admin));
    assert_eq!(in_alpha.me().await.unwrap().role, Some(Role::Viewer), "the session switched from stays");
    // Not a member, or no such workspace: 404; a key has no session to switch.
    let err = app.signup("delta").await;
    assert_eq!(in_alpha.workspace_switch("delta").await.unwrap_err().status(), Some(404));
    assert_eq!(in_alpha.workspace_switch("nowhere").await.unwrap_err().status(), Some(404));
    assert_eq!(err.client.workspace_switch("alpha").await.unwrap_err().code(), Some("session_required"));
    let _ = beta;
}

on_both_stores!(revoked_and_expired_invites_are_refused_with_their_own_codes);
async fn revoked_and_expired_invites_are_refused_with_their_own_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let request = |email: &str| CreateInviteRequest { email: email.into(), role: Role::Viewer };
    let revoked = alpha.client.invite_create(&request("r@example.com")).await.unwrap();
    let revoke = alpha.client.invite_revoke(revoked.invite.id.as_str()).await.unwrap();
    assert_eq!(revoke.status, agentd_api_types::InviteStatus::Revoked);
    let expired = alpha.client.invite_create(&request("e@example.com")).await.unwrap();
    app.execute_sql(&format!("UPDATE invites SET expires_at = 1 WHERE id = '{}'", expired.invite.id)).await;
    let new_user = AcceptInviteRequest { password: Some(PASSWORD.into()), ..Default::default() };
    for (token, code) in [(&revoked.token, "invite_revoked"), (&expired.token, "invite_expired")] {
        let err = app.client().invite_accept(token, &new_user).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(409), Some(code)));
    }
    let member = alpha.client.invite_create(&request("alpha@example.com")).await.unwrap_err();
    assert_eq!((member.status(), member.code()), (Some(409), Some("already_member")));
    let body = json!({"password": PASSWORD, "evil": 1});
    let path = format!("/v1/invites/{}/accept", revoked.token);
    let response = app.client().request(Method::POST, &path).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 422);
}

on_both_stores!(roles_and_key_scopes_bound_what_a_credential_may_do);
async fn roles_and_key_scopes_bound_what_a_credential_may_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_example(&alpha, "shell-wc").await;
    let viewer = join_as(&app, &alpha, "viewer@example.com", Role::Viewer).await;
    let invoke = json!({"input": {}});
    let response = viewer.request(Method::POST, "/v1/agents/shell-wc/invoke").json(&invoke).send().await.unwrap();
    assert_eq!(response.status(), 403, "a viewer cannot invoke");
    let bundle = agentd_bundle::pack_dir(&crate::harness::examples_dir().join("shell-wc")).unwrap();
    let err = viewer.version_upload("shell-wc", bundle, true).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("insufficient_scope")), "a viewer cannot deploy");
    viewer.agent_get("shell-wc").await.unwrap();

    let read_only = CreateApiKeyRequest { name: "ro".into(), scopes: Some(vec![Scope::Read]), ..Default::default() };
    let read_key = app.client().with_token(alpha.client.api_key_create(&read_only).await.unwrap().secret);
    let response = read_key.request(Method::POST, "/v1/agents/shell-wc/invoke").json(&invoke).send().await.unwrap();
    assert_eq!(response.status(), 403, "a read key cannot invoke");
    // A key never holds a scope its creator lacks.
    let wide = CreateApiKeyRequest { name: "wide".into(), scopes: Some(vec![Scope::Deploy]), ..Default::default() };
    let err = read_key.api_key_create(&wide).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    let developer = join_as(&app, &alpha, "dev@example.com", Role::Developer).await;
    assert_eq!(developer.api_key_create(&wide).await.unwrap_err().code(), Some("insufficient_scope"));

    let expiring = CreateApiKeyRequest { name: "soon".into(), expires_in_days: Some(1), ..Default::default() };
    let created = alpha.client.api_key_create(&expiring).await.unwrap();
    let soon = app.client().with_token(created.secret);
    soon.me().await.unwrap();
    app.execute_sql(&format!("UPDATE api_keys SET expires_at = 1 WHERE id = '{}'", created.key.id)).await;
    let err = soon.me().await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(401), Some("unauthorized")), "an expired key");
}

on_both_stores!(invite_signup_refuses_signup_and_lets_invited_people_in);
async fn invite_signup_refuses_signup_and_lets_invited_people_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let mut app = app;
    app.set_env("AGENTD_SIGNUP", Some("invite"));
    app.restart().await;
    // The restarted server listens on another port.
    let alpha = TestTenant { client: app.client().with_token(alpha.key.clone()), ..alpha };
    let signup = agentd_api_types::SignupRequest {
        email: "new@example.com".into(),
        password: PASSWORD.into(),
        workspace_name: "New".into(),
        workspace_slug: "new".into(),
    };
    let err = app.client().signup(&signup).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("signup_disabled")));
    let viewer = join_as(&app, &alpha, "viewer@example.com", Role::Viewer).await;
    viewer.me().await.unwrap();

    // Closed: invites are for existing accounts only.
    app.set_env("AGENTD_SIGNUP", Some("closed"));
    app.restart().await;
    let alpha = TestTenant { client: app.client().with_token(alpha.key.clone()), ..alpha };
    let request = CreateInviteRequest { email: "n@example.com".into(), role: Role::Viewer };
    let token = alpha.client.invite_create(&request).await.unwrap().token;
    let new_user = AcceptInviteRequest { password: Some(PASSWORD.into()), ..Default::default() };
    let err = app.client().invite_accept(&token, &new_user).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("signup_disabled")));

    // Except an operator's owner invite for a new workspace.
    let out = app.admin(
        &["tenants", "create", "--slug", "acme", "--name", "Acme", "--owner-email", "boss@acme.example"],
        &[("AGENTD_PUBLIC_URL", "https://agentd.example")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let token = lines.next().unwrap().to_owned();
    assert_eq!(lines.next(), Some(format!("https://agentd.example/v1/invites/{token}/accept").as_str()));
    let joined = app.client().invite_accept(&token, &new_user).await.unwrap();
    assert_eq!((joined.tenant.slug.as_str(), joined.role), ("acme", Role::Owner));
    let owner = app.client().with_token(joined.token);
    let members = owner.members_list(&ListOptions::default()).await.unwrap().data;
    assert_eq!(members.iter().map(|m| m.email.as_str()).collect::<Vec<_>>(), ["boss@acme.example"]);
}

on_both_stores!(the_cli_invites_lists_changes_and_removes_members);
async fn the_cli_invites_lists_changes_and_removes_members(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = crate::cli::Shell::new(&app.base_url);
    shell.signup().await;
    let created = shell.ok(&["invites", "create", "ops@example.com", "--role", "viewer"]).await;
    let token = created.stdout.lines().next().unwrap().to_owned();
    assert!(token.starts_with("agi_"), "{created:?}");
    assert!(shell.ok(&["invites", "list"]).await.stdout.contains("ops@example.com"));
    let new_user = AcceptInviteRequest { password: Some(PASSWORD.into()), ..Default::default() };
    let joined = app.client().invite_accept(&token, &new_user).await.unwrap();
    let id = joined.user.id.to_string();
    let listed = shell.ok(&["members", "list"]).await.stdout;
    assert!(listed.contains("ops@example.com") && listed.contains("viewer"), "{listed}");
    shell.ok(&["members", "role", &id, "developer"]).await;
    let member = app.client().with_token(joined.token.clone()).me().await.unwrap();
    assert_eq!(member.role, Some(Role::Developer));
    shell.ok(&["members", "remove", &id]).await;
    assert_eq!(app.client().with_token(joined.token).me().await.unwrap_err().status(), Some(401));
}
