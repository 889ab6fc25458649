//! Forward-only numbered migrations, one set per engine, embedded in the binary and
//! applied at start. On PostgreSQL an advisory lock keeps replicas starting together
//! from applying the same migration twice.

use sqlx::AnyPool;

use crate::{Backend, Result};

/// A version, its name and its SQL. Versions need not be contiguous: each is applied
/// once, in the order listed, and recorded by number.
type Migration = (i64, &'static str, &'static str);

const SQLITE: &[Migration] = &[
    (1, "foundation", include_str!("../migrations/sqlite/0001_foundation.sql")),
    (2, "worker_tokens", include_str!("../migrations/sqlite/0002_worker_tokens.sql")),
    (3, "row_level_security", include_str!("../migrations/sqlite/0003_row_level_security.sql")),
    (4, "artifacts", include_str!("../migrations/sqlite/0004_artifacts.sql")),
    (5, "queue_speed", include_str!("../migrations/sqlite/0005_queue_speed.sql")),
    (6, "recoveries", include_str!("../migrations/sqlite/0006_recoveries.sql")),
    (7, "dependency_builds", include_str!("../migrations/sqlite/0007_dependency_builds.sql")),
    (8, "configuration", include_str!("../migrations/sqlite/0008_configuration.sql")),
    (9, "interrupts", include_str!("../migrations/sqlite/0009_interrupts.sql")),
    (10, "threads", include_str!("../migrations/sqlite/0010_threads.sql")),
    (11, "memory_items", include_str!("../migrations/sqlite/0011_memory_items.sql")),
    (12, "run_tokens", include_str!("../migrations/sqlite/0012_run_tokens.sql")),
    (13, "agent_secrets", include_str!("../migrations/sqlite/0013_agent_secrets.sql")),
    (14, "login_throttle", include_str!("../migrations/sqlite/0014_login_throttle.sql")),
    (15, "invites", include_str!("../migrations/sqlite/0015_invites.sql")),
    (16, "limit_overrides", include_str!("../migrations/sqlite/0016_limit_overrides.sql")),
    (19, "operators", include_str!("../migrations/sqlite/0019_operators.sql")),
    (21, "audit_events", include_str!("../migrations/sqlite/0021_audit_events.sql")),
    (22, "blob_collection", include_str!("../migrations/sqlite/0022_blob_collection.sql")),
    (23, "schedules", include_str!("../migrations/sqlite/0023_schedules.sql")),
    (24, "webhooks", include_str!("../migrations/sqlite/0024_webhooks.sql")),
    (25, "triggers", include_str!("../migrations/sqlite/0025_triggers.sql")),
];
const POSTGRES: &[Migration] = &[
    (1, "foundation", include_str!("../migrations/postgres/0001_foundation.sql")),
    (2, "worker_tokens", include_str!("../migrations/postgres/0002_worker_tokens.sql")),
    (3, "row_level_security", include_str!("../migrations/postgres/0003_row_level_security.sql")),
    (4, "artifacts", include_str!("../migrations/postgres/0004_artifacts.sql")),
    (5, "queue_speed", include_str!("../migrations/postgres/0005_queue_speed.sql")),
    (6, "recoveries", include_str!("../migrations/postgres/0006_recoveries.sql")),
    (7, "dependency_builds", include_str!("../migrations/postgres/0007_dependency_builds.sql")),
    (8, "configuration", include_str!("../migrations/postgres/0008_configuration.sql")),
    (9, "interrupts", include_str!("../migrations/postgres/0009_interrupts.sql")),
    (10, "threads", include_str!("../migrations/postgres/0010_threads.sql")),
    (11, "memory_items", include_str!("../migrations/postgres/0011_memory_items.sql")),
    (12, "run_tokens", include_str!("../migrations/postgres/0012_run_tokens.sql")),
    (13, "agent_secrets", include_str!("../migrations/postgres/0013_agent_secrets.sql")),
    (14, "login_throttle", include_str!("../migrations/postgres/0014_login_throttle.sql")),
    (15, "invites", include_str!("../migrations/postgres/0015_invites.sql")),
    (16, "limit_overrides", include_str!("../migrations/postgres/0016_limit_overrides.sql")),
    (19, "operators", include_str!("../migrations/postgres/0019_operators.sql")),
    (20, "rate_limits", include_str!("../migrations/postgres/0020_rate_limits.sql")),
    (21, "audit_events", include_str!("../migrations/postgres/0021_audit_events.sql")),
    (22, "blob_collection", include_str!("../migrations/postgres/0022_blob_collection.sql")),
    (23, "schedules", include_str!("../migrations/postgres/0023_schedules.sql")),
    (24, "webhooks", include_str!("../migrations/postgres/0024_webhooks.sql")),
    (25, "triggers", include_str!("../migrations/postgres/0025_triggers.sql")),
];

/// Arbitrary, fixed key of the advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x6167_656e_7464;

pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let migrations = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => {
            sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
            POSTGRES
        }
    };
    let applied = apply(&mut conn, migrations).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    applied
}

/// The versions this binary knows that the database has not applied, in order.
pub(crate) async fn pending(pool: &AnyPool, backend: Backend) -> Result<Vec<i64>> {
    let migrations = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let table: Option<String> = match backend {
        Backend::Sqlite => {
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
                .fetch_optional(pool)
                .await?
        }
        Backend::Postgres => {
            sqlx::query_scalar("SELECT to_regclass('schema_migrations')::text").fetch_one(pool).await?
        }
    };
    let applied: Vec<i64> = match table {
        Some(_) => sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(pool).await?,
        None => Vec::new(),
    };
    Ok(migrations.iter().map(|(version, _, _)| *version).filter(|v| !applied.contains(v)).collect())
}

async fn apply(conn: &mut sqlx::AnyConnection, migrations: &[Migration]) -> Result<()> {
    use sqlx::Connection;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    for (version, name, sql) in migrations {
        let mut tx = conn.begin().await?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        if applied.is_some() {
            continue;
        }
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(version)
            .bind(name)
            .bind(agentd_core::Timestamp::now().unix_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}
