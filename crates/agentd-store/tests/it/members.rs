//! A workspace keeps an owner, whatever changes race.

use agentd_core::{Actor, Role, Timestamp, UserId};
use agentd_store::{Invitee, NewInvite, NewSession, StoreError};
use agentd_test_support::{Backend, on_both_stores};

use crate::{open, tenant};

/// Makes `email` a member of `ctx`'s tenant as `role`, through an accepted invite.
async fn add_member(store: &agentd_store::Store, ctx: &agentd_core::TenantScope, email: &str, role: Role) -> UserId {
    let token_hash = format!("hash-of-{email}");
    let expires_at = Timestamp::now().plus_ms(60_000);
    let invite = NewInvite { email: email.into(), role, token_hash: token_hash.clone(), expires_at };
    store.invite_create(ctx, invite).await.unwrap();
    let found = store.invite_by_token_unscoped(&token_hash).await.unwrap().unwrap();
    let session = NewSession { token_hash: format!("session-of-{email}"), expires_at };
    let invitee = Invitee::NewUser { password_hash: "x".into() };
    let origin = agentd_core::RequestOrigin::new(agentd_core::RequestId::generate(), None);
    store.invite_accept_unscoped(&found, invitee, session, &origin).await.unwrap().user.id
}

on_both_stores!(two_owners_demoting_each_other_at_once_leave_one_owner);
async fn two_owners_demoting_each_other_at_once_leave_one_owner(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let Actor::User { id: first } = ctx.actor().clone() else { panic!("signup acts as its user") };
    let second = add_member(&store, &ctx, "second@example.com", Role::Owner).await;
    let (a, b) = tokio::join!(
        store.member_set_role(&ctx, &first, Role::Owner, Role::Viewer),
        store.member_set_role(&ctx, &second, Role::Owner, Role::Viewer),
    );
    let refused =
        [&a, &b].iter().filter(|r| matches!(r, Err(StoreError::Conflict(agentd_store::Conflict::LastOwner)))).count();
    assert_eq!((refused, a.is_ok() || b.is_ok()), (1, true), "{a:?} {b:?}");
    let page = agentd_core::PageRequest::after_value(None, agentd_core::PageBounds::RESOURCES);
    let members = store.members_list(&ctx, &page).await.unwrap().data;
    assert_eq!(members.iter().filter(|m| m.role == Role::Owner).count(), 1, "{members:?}");
}
