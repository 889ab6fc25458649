//! Metered usage: what a tenant's finished runs consumed, per agent and UTC day.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::slug::Slug;

/// What some finished invocations consumed. Figures are the sandbox's own accounting
/// (cgroup CPU and memory, wall clock, bytes logged) summed over them; memory is the peak.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageFigures {
    pub invocations: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub timed_out: u64,
    pub wall_ms: u64,
    pub cpu_ms: u64,
    /// The highest peak of any one of them.
    pub peak_memory_bytes: u64,
    pub log_bytes: u64,
    /// Bytes of the files they left in `/outputs`.
    pub artifact_bytes: u64,
}

impl UsageFigures {
    pub fn add(&mut self, other: &UsageFigures) {
        self.invocations += other.invocations;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.timed_out += other.timed_out;
        self.wall_ms += other.wall_ms;
        self.cpu_ms += other.cpu_ms;
        self.peak_memory_bytes = self.peak_memory_bytes.max(other.peak_memory_bytes);
        self.log_bytes += other.log_bytes;
        self.artifact_bytes += other.artifact_bytes;
    }
}

/// One agent's usage on one UTC day (the day its runs finished).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDay {
    #[serde(with = "iso_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub day: Date,
    pub agent: Slug,
    #[serde(flatten)]
    pub figures: UsageFigures,
}

/// `GET /v1/usage`: the days from `from` to `to` (inclusive, UTC), their totals and one
/// row per agent and day that had finished runs, oldest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    #[serde(with = "iso_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub from: Date,
    #[serde(with = "iso_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub to: Date,
    pub agent: Option<Slug>,
    pub totals: UsageFigures,
    pub data: Vec<UsageDay>,
}

/// Dates as `YYYY-MM-DD`.
pub mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;
    use time::macros::format_description;

    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        format_description!("[year]-[month]-[day]");

    pub fn parse(raw: &str) -> Option<Date> {
        Date::parse(raw, FORMAT).ok()
    }

    pub fn format(date: &Date) -> String {
        date.format(FORMAT).unwrap_or_default()
    }

    pub fn serialize<S: Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(date))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let raw = String::deserialize(d)?;
        parse(&raw).ok_or_else(|| serde::de::Error::custom(format!("`{raw}` is not a date (YYYY-MM-DD)")))
    }
}
