//! Metered usage, read from the invocations themselves: each finished run's figures are
//! recorded with its final status (the sandbox's accounting), so a sum over them per
//! agent and UTC day is the meter. Nothing is counted twice or estimated.

use std::collections::BTreeMap;

use agentd_core::{Slug, TenantScope, UsageDay, UsageFigures};
use sqlx::Row;
use time::{Date, OffsetDateTime};

use crate::{Result, Store, StoreError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Store {
    /// Usage of the tenant's invocations that finished from `from` to `to` (UTC days,
    /// inclusive), per agent and day, oldest first.
    pub async fn usage_by_day(
        &self,
        ctx: &TenantScope,
        from: Date,
        to: Date,
        agent: Option<&Slug>,
    ) -> Result<Vec<UsageDay>> {
        let start = day_start_ms(from);
        let end = day_start_ms(to) + DAY_MS;
        let agent = agent.map(Slug::as_str);
        let mut tx = self.begin_scoped_read(ctx).await?;
        let runs = sqlx::query(
            "SELECT agent_slug, finished_at / 86400000 AS day, status, COUNT(*) AS n,
                CAST(SUM(wall_ms) AS BIGINT) AS wall_ms, CAST(SUM(cpu_ms) AS BIGINT) AS cpu_ms,
                MAX(peak_memory_bytes) AS peak, CAST(SUM(log_bytes) AS BIGINT) AS log_bytes
             FROM invocations
             WHERE tenant_id = $1 AND finished_at >= $2 AND finished_at < $3 AND ($4 IS NULL OR agent_slug = $4)
               AND status IN ('succeeded', 'failed', 'cancelled', 'timed_out')
             GROUP BY agent_slug, finished_at / 86400000, status",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(start)
        .bind(end)
        .bind(agent)
        .fetch_all(&mut *tx)
        .await?;
        let artifacts = sqlx::query(
            "SELECT i.agent_slug, i.finished_at / 86400000 AS day, CAST(SUM(a.size) AS BIGINT) AS bytes
             FROM invocation_artifacts a JOIN invocations i ON i.id = a.invocation_id
             WHERE i.tenant_id = $1 AND i.finished_at >= $2 AND i.finished_at < $3 AND ($4 IS NULL OR i.agent_slug = $4)
               AND i.status IN ('succeeded', 'failed', 'cancelled', 'timed_out')
             GROUP BY i.agent_slug, i.finished_at / 86400000",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(start)
        .bind(end)
        .bind(agent)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;

        let mut days: BTreeMap<(i64, String), UsageFigures> = BTreeMap::new();
        for row in &runs {
            let key = (sum(row, "day")?, row.try_get::<String, _>("agent_slug")?);
            let figures = days.entry(key).or_default();
            let n = count(row, "n")?;
            figures.invocations += n;
            match row.try_get::<String, _>("status")?.as_str() {
                "succeeded" => figures.succeeded += n,
                "failed" => figures.failed += n,
                "cancelled" => figures.cancelled += n,
                _ => figures.timed_out += n,
            }
            figures.wall_ms += count(row, "wall_ms")?;
            figures.cpu_ms += count(row, "cpu_ms")?;
            figures.peak_memory_bytes = figures.peak_memory_bytes.max(count(row, "peak")?);
            figures.log_bytes += count(row, "log_bytes")?;
        }
        for row in &artifacts {
            let key = (sum(row, "day")?, row.try_get::<String, _>("agent_slug")?);
            days.entry(key).or_default().artifact_bytes += count(row, "bytes")?;
        }
        days.into_iter()
            .map(|((day, agent), figures)| {
                let day = OffsetDateTime::from_unix_timestamp(day * DAY_MS / 1000)
                    .map_err(|e| StoreError::corrupt("finished_at", e))?
                    .date();
                Ok(UsageDay { day, agent: Slug::from_trusted(agent), figures })
            })
            .collect()
    }
}

fn day_start_ms(day: Date) -> i64 {
    (day.midnight().assume_utc().unix_timestamp()) * 1000
}

/// An aggregate column (a `SUM` is cast back to BIGINT: PostgreSQL makes it NUMERIC).
fn sum(row: &sqlx::any::AnyRow, col: &'static str) -> Result<i64> {
    Ok(row.try_get::<Option<i64>, _>(col)?.unwrap_or(0))
}

fn count(row: &sqlx::any::AnyRow, col: &'static str) -> Result<u64> {
    Ok(sum(row, col)?.max(0) as u64)
}
