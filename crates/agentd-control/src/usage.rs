//! Metered usage of the tenant, per agent and UTC day.

use agentd_core::{Slug, UsageFigures, UsageReport};
use time::{Date, Duration, OffsetDateTime};

use crate::Control;
use crate::auth::{Ctx, Read};
use crate::error::{Invalid, Result};

/// The days a usage report covers: `from` to `to`, inclusive, at most a year apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsagePeriod {
    from: Date,
    to: Date,
}

impl UsagePeriod {
    /// Days a report may span.
    pub const MAX_DAYS: i64 = 366;
    /// Days a report spans when no `from` is given: the last 30, today included.
    const DEFAULT_DAYS: i64 = 30;

    /// `from`/`to` as `YYYY-MM-DD` (UTC); absent `to` is today, absent `from` 29 days before `to`.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<UsagePeriod, Invalid> {
        let date = |field: &'static str, raw: &str| {
            agentd_core::usage::iso_date::parse(raw).ok_or(Invalid::UsagePeriod { field, max_days: Self::MAX_DAYS })
        };
        let to = match to {
            Some(raw) => date("to", raw)?,
            None => OffsetDateTime::now_utc().date(),
        };
        let from = match from {
            Some(raw) => date("from", raw)?,
            None => to - Duration::days(Self::DEFAULT_DAYS - 1),
        };
        let days = (to - from).whole_days() + 1;
        if !(1..=Self::MAX_DAYS).contains(&days) {
            return Err(Invalid::UsagePeriod { field: "from", max_days: Self::MAX_DAYS });
        }
        Ok(UsagePeriod { from, to })
    }
}

impl Control {
    /// What the tenant's runs that finished in `period` consumed, per agent and day.
    pub async fn usage(&self, ctx: &Ctx<Read>, period: UsagePeriod, agent: Option<Slug>) -> Result<UsageReport> {
        let data = self.store.usage_by_day(ctx.store_scope(), period.from, period.to, agent.as_ref()).await?;
        let mut totals = UsageFigures::default();
        for day in &data {
            totals.add(&day.figures);
        }
        Ok(UsageReport { from: period.from, to: period.to, agent, totals, data })
    }
}
