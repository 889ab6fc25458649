//! Row-level security on PostgreSQL: the `agentd_tenant` role sees and writes only the
//! rows of the tenant in `agentd.tenant_id`, whatever the query says, while the
//! connecting user (the tables' owner) still sees everything for the unscoped paths.

use std::time::Duration;

use agentd_core::{InvocationStatus, TenantScope};
use agentd_store::{InvocationFilter, Store};
use sqlx::{Connection, PgConnection, Row};

use agentd_test_support::{Backend, TestDb, on_postgres};

use super::{agent_with_version, claim, new_invocation, tenant};

/// Two tenants: `alpha` with one agent and two invocations, `beta` with one agent and
/// three.
async fn two_tenants(store: &Store) -> (TenantScope, TenantScope) {
    let a = tenant(store, "alpha").await;
    let b = tenant(store, "beta").await;
    for (ctx, runs) in [(&a, 2), (&b, 3)] {
        let (agent, version) = agent_with_version(store, ctx, "echo").await;
        for _ in 0..runs {
            store.invocation_enqueue(ctx, &agent, &version, new_invocation(0, None), 100).await.unwrap();
        }
    }
    (a, b)
}

fn first_page() -> agentd_core::PageRequest<agentd_core::InvocationId> {
    agentd_core::PageRequest::after_value(None, agentd_core::PageBounds::RESOURCES)
}

async fn count(conn: &mut PgConnection, table: &str) -> i64 {
    // The table name is one of ours, never input.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"))).fetch_one(conn).await.unwrap()
}

/// Begins a transaction as `agentd_tenant`, with `tenant` in `agentd.tenant_id` if given.
async fn become_tenant(conn: &mut PgConnection, tenant: Option<&str>) {
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query("SET LOCAL ROLE agentd_tenant").execute(&mut *conn).await.unwrap();
    if let Some(tenant) = tenant {
        sqlx::query("SELECT set_config('agentd.tenant_id', $1, true)").bind(tenant).execute(&mut *conn).await.unwrap();
    }
}

async fn rollback(conn: &mut PgConnection) {
    sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
}

on_postgres!(the_tenant_role_sees_only_its_tenants_rows_even_without_a_filter);
async fn the_tenant_role_sees_only_its_tenants_rows_even_without_a_filter() {
    let db = TestDb::create(Backend::Postgres);
    let store = Store::open(&db.url).await.unwrap();
    let (a, b) = two_tenants(&store).await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();

    // The owner is not confined: the unscoped paths (claim, reaper, signup) need all rows.
    assert_eq!(count(&mut conn, "invocations").await, 5);
    assert_eq!(count(&mut conn, "tenants").await, 2);

    become_tenant(&mut conn, Some(a.tenant_id().as_str())).await;
    assert_eq!(count(&mut conn, "invocations").await, 2);
    assert_eq!(count(&mut conn, "agents").await, 1);
    assert_eq!(count(&mut conn, "agent_versions").await, 1);
    assert_eq!(count(&mut conn, "api_keys").await, 1);
    assert_eq!(count(&mut conn, "memberships").await, 1);
    let tenants: Vec<String> = sqlx::query_scalar("SELECT id FROM tenants").fetch_all(&mut conn).await.unwrap();
    assert_eq!(tenants, [a.tenant_id().as_str()]);
    let touched = sqlx::query("UPDATE invocations SET priority = 9 WHERE tenant_id = $1")
        .bind(b.tenant_id().as_str())
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(touched.rows_affected(), 0, "another tenant's rows cannot be updated");
    rollback(&mut conn).await;

    become_tenant(&mut conn, None).await;
    for table in ["invocations", "agents", "agent_versions", "tenants", "api_keys", "invocation_events"] {
        assert_eq!(count(&mut conn, table).await, 0, "{table} with no tenant set");
    }
    rollback(&mut conn).await;

    become_tenant(&mut conn, Some(a.tenant_id().as_str())).await;
    let refused = sqlx::query(
        "INSERT INTO agents (id, tenant_id, slug, name, created_at, updated_at) VALUES ('agt_x', $1, 'x', 'x', 0, 0)",
    )
    .bind(b.tenant_id().as_str())
    .execute(&mut conn)
    .await
    .unwrap_err();
    let refused = refused.as_database_error().unwrap();
    assert_eq!(refused.code().as_deref(), Some("42501"), "{refused}");
    rollback(&mut conn).await;

    // Tables of no tenant are out of the role's reach altogether.
    for table in ["users", "worker_tokens", "schema_migrations"] {
        become_tenant(&mut conn, Some(a.tenant_id().as_str())).await;
        let denied =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT 1 FROM {table}"))).execute(&mut conn).await.unwrap_err();
        assert_eq!(denied.as_database_error().unwrap().code().as_deref(), Some("42501"), "{table}");
        rollback(&mut conn).await;
    }

    // Members' emails come only through a view that shows the tenant its own members.
    for (tenant, members) in [(Some(a.tenant_id().as_str()), 1), (None, 0)] {
        become_tenant(&mut conn, tenant).await;
        assert_eq!(count(&mut conn, "workspace_members").await, members, "{tenant:?}");
        rollback(&mut conn).await;
    }

    // Scoped store methods pass the policies' WITH CHECK and see their own rows.
    let listed = store.invocations_list(&a, &InvocationFilter::default(), &first_page()).await.unwrap();
    assert_eq!(listed.data.len(), 2);
    let cancelled = store.invocation_cancel(&b, &listed.data[0].id).await;
    assert!(cancelled.is_err(), "another tenant's invocation is not found");
    let cancelled = store.invocation_cancel(&a, &listed.data[0].id).await.unwrap();
    assert_eq!(cancelled.status, InvocationStatus::Cancelled);

    // The role and the setting end with the scoped transaction: connections go back to the
    // pool as the owner, so the cross-tenant claim still sees both tenants' runs.
    let mut claimed = Vec::new();
    while let Some(run) = claim(&store, "w", Duration::from_secs(30)).await {
        claimed.push(run.tenant_id);
    }
    assert_eq!(claimed.len(), 4);
    assert!(claimed.contains(a.tenant_id()) && claimed.contains(b.tenant_id()));
    conn.close().await.unwrap();
    store.close().await;
}

on_postgres!(every_table_with_a_tenant_id_has_row_level_security);
async fn every_table_with_a_tenant_id_has_row_level_security() {
    let db = TestDb::create(Backend::Postgres);
    let store = Store::open(&db.url).await.unwrap();
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let uncovered: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
           AND (c.relname = 'tenants' OR EXISTS (
                SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
           AND (NOT c.relrowsecurity
                OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(uncovered.is_empty(), "tables with tenant data but no row-level security: {uncovered:?}");
    let covered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relrowsecurity",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(covered >= 8, "only {covered} tables have row-level security");
    conn.close().await.unwrap();
    store.close().await;
}

on_postgres!(scoped_methods_work_for_a_table_owner_that_is_not_a_superuser);
/// A deployment whose database user owns the tables but is not a superuser: the
/// migration grants it the tenant role, and scoped methods still work end to end.
async fn scoped_methods_work_for_a_table_owner_that_is_not_a_superuser() {
    let db = TestDb::create_postgres_with_own_user();
    let store = Store::open(&db.url).await.unwrap();
    let (a, b) = two_tenants(&store).await;
    let listed = store.invocations_list(&a, &InvocationFilter::default(), &first_page()).await.unwrap();
    assert_eq!(listed.data.len(), 2);
    assert_eq!(store.invocations_list(&b, &InvocationFilter::default(), &first_page()).await.unwrap().data.len(), 3);
    assert_eq!(store.tenant_get(&a).await.unwrap().id, *a.tenant_id());

    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let superuser: bool = sqlx::query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert!(!superuser);
    become_tenant(&mut conn, Some(b.tenant_id().as_str())).await;
    assert_eq!(count(&mut conn, "invocations").await, 3);
    rollback(&mut conn).await;
    conn.close().await.unwrap();
    store.close().await;
}
