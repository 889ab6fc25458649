//! `/v1/schedules`: cron schedules that invoke an agent (docs/API.md, "Schedules").

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/schedules`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateScheduleRequest {
    /// The agent's slug.
    pub agent: String,
    /// Five fields (`minute hour day-of-month month day-of-week`), or six with seconds
    /// first (`*/10 * * * * *`).
    pub cron: String,
    /// An IANA time zone (`UTC`, `Europe/Berlin`) the cron's times are read in.
    pub timezone: String,
    /// The input of every run; absent: `null`.
    #[serde(default)]
    pub input: Value,
    /// Absent: `true`. A disabled schedule is paused: it runs only when triggered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `skip` (default) or `allow`: what an occurrence does while the previous run goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
    /// `latest` (default), `skip` or `all`: what happens to occurrences missed while the
    /// platform was down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catchup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// `PATCH /v1/schedules/{id}`: the fields given replace the schedule's.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchScheduleRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The new input (`null` is an input like any other, and is kept as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// `false` pauses the schedule, `true` resumes it from the next occurrence after now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catchup: Option<String>,
    /// Replaces the metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}
