//! The audit log in the store: events land with the change that made them, each
//! tenant reads its own, and nothing, not even the tables' owner, changes or removes one.

use agentd_core::{AuditAction, PageBounds, PageRequest};
use agentd_store::AuditFilter;
use agentd_test_support::{Backend, on_both_stores};
use sqlx::Connection;

use crate::{agent_with_version, open, tenant};

fn first_page() -> PageRequest<agentd_core::AuditEventId> {
    PageRequest::after_value(None, PageBounds::RESOURCES)
}

on_both_stores!(audit_events_are_per_tenant_and_can_be_neither_changed_nor_deleted);
async fn audit_events_are_per_tenant_and_can_be_neither_changed_nor_deleted(backend: Backend) {
    let (store, db) = open(backend).await;
    let alpha = tenant(&store, "alpha").await;
    let beta = tenant(&store, "beta").await;
    agent_with_version(&store, &alpha, "echo").await;
    let actions =
        |page: agentd_core::Page<agentd_core::AuditEvent>| page.data.into_iter().map(|e| e.action).collect::<Vec<_>>();
    let of_alpha = actions(store.audit_list(&alpha, &AuditFilter::default(), &first_page()).await.unwrap());
    assert_eq!(of_alpha, [AuditAction::AgentDeploy, AuditAction::AgentCreate, AuditAction::TenantSignup]);
    let of_beta = actions(store.audit_list(&beta, &AuditFilter::default(), &first_page()).await.unwrap());
    assert_eq!(of_beta, [AuditAction::TenantSignup]);

    // As the connecting user, who owns the tables and bypasses row-level security.
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for sql in ["UPDATE audit_events SET action = 'agent.delete'", "DELETE FROM audit_events"] {
        let refused = sqlx::query(sql).execute(&mut conn).await;
        assert!(refused.is_err_and(|e| e.to_string().contains("append-only")), "{sql}");
    }
    let filter = AuditFilter { action: Some(AuditAction::AgentCreate), ..Default::default() };
    let still = store.audit_list(&alpha, &filter, &first_page()).await.unwrap();
    assert_eq!(still.data.len(), 1);
}

agentd_test_support::on_postgres!(the_tenant_role_reads_and_appends_only_its_own_audit_events);
async fn the_tenant_role_reads_and_appends_only_its_own_audit_events() {
    let (store, db) = open(Backend::Postgres).await;
    let alpha = tenant(&store, "alpha").await;
    tenant(&store, "beta").await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query("SET LOCAL ROLE agentd_tenant").execute(&mut conn).await.unwrap();
    sqlx::query("SELECT set_config('agentd.tenant_id', $1, true)")
        .bind(alpha.tenant_id().as_str())
        .execute(&mut conn)
        .await
        .unwrap();
    // No tenant filter in the query: row-level security keeps beta's event out.
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events").fetch_one(&mut conn).await.unwrap();
    assert_eq!(seen, 1);
    for sql in ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"] {
        sqlx::query("SAVEPOINT attempt").execute(&mut conn).await.unwrap();
        let refused = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(refused.to_string().contains("permission denied"), "{sql}: {refused}");
        sqlx::query("ROLLBACK TO SAVEPOINT attempt").execute(&mut conn).await.unwrap();
    }
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
}
