//! Cron patterns in a time zone: parsing, and the occurrences between two instants.
//!
//! Patterns have five fields (`minute hour day-of-month month day-of-week`) or six with
//! seconds first (`*/1 * * * * *` is every second); no year field. Parsing and the
//! search are croner's (the Open Cron Pattern Specification), zones chrono-tz's (the
//! IANA database). Around daylight-saving changes, as croner defines it:
//! - a time that does not exist (spring forward, 02:30 in Europe/Berlin on the last
//!   Sunday of March) runs, for a pattern with fixed second, minute and hour, once at the
//!   first instant after the gap (03:00 local); a pattern with a wildcard or step in those
//!   fields simply has no occurrences in the gap;
//! - a time that happens twice (fall back, 02:30 on the last Sunday of October) runs,
//!   for a fixed-time pattern, once, at its first pass (02:30 summer time); a pattern with
//!   a wildcard or step runs at each matching instant of both passes.

use std::str::FromStr;

use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use agentd_core::Timestamp;

use crate::error::Invalid;

/// Longest cron pattern accepted, in characters.
const MAX_CRON_CHARS: usize = 200;

/// A parsed pattern and the zone its times are read in.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
}

impl CronSchedule {
    pub fn parse(pattern: &str, timezone: &str) -> Result<CronSchedule, Invalid> {
        let pattern = pattern.trim();
        if pattern.is_empty() || pattern.chars().count() > MAX_CRON_CHARS {
            return Err(Invalid::Cron { detail: format!("give a pattern of 1 to {MAX_CRON_CHARS} characters") });
        }
        let fields = pattern.split_whitespace().count();
        if !(fields == 5 || fields == 6) {
            return Err(Invalid::Cron {
                detail: format!(
                    "{fields} fields; give 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
                ),
            });
        }
        let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build();
        let cron = parser.parse(pattern).map_err(|e| Invalid::Cron { detail: e.to_string() })?;
        let tz = Tz::from_str(timezone.trim())
            .map_err(|_| Invalid::Timezone { value: timezone.chars().take(64).collect() })?;
        Ok(CronSchedule { cron, tz })
    }

    fn zoned(&self, t: Timestamp) -> Option<DateTime<Tz>> {
        self.tz.timestamp_millis_opt(t.unix_ms()).single()
    }

    /// The first occurrence strictly after `t`; `None` when the pattern has no more
    /// (`0 0 30 2 *` never matches).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let from = self.zoned(t)?;
        let next = self.cron.find_next_occurrence(&from, false).ok()?;
        Some(Timestamp::from_unix_ms(next.timestamp_millis()))
    }

    /// The occurrences at or after `from` and at or before `now`, newest first, at most
    /// `cap` of them (the newest `cap`).
    pub fn due(&self, from: Timestamp, now: Timestamp, cap: usize) -> Vec<Timestamp> {
        let mut found = Vec::new();
        let Some(mut at) = self.zoned(now) else { return found };
        let mut inclusive = true;
        while found.len() < cap {
            let Ok(previous) = self.cron.find_previous_occurrence(&at, inclusive) else { break };
            let t = Timestamp::from_unix_ms(previous.timestamp_millis());
            if t.unix_ms() < from.unix_ms() {
                break;
            }
            found.push(t);
            at = previous;
            inclusive = false;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(raw: &str) -> Timestamp {
        Timestamp::parse_rfc3339(raw).unwrap()
    }

    /// The next `n` occurrences after `from`, as RFC 3339 text.
    fn next_times(schedule: &CronSchedule, from: &str, n: usize) -> Vec<String> {
        let mut at = utc(from);
        (0..n)
            .map(|_| {
                at = schedule.next_after(at).unwrap();
                at.to_string()
            })
            .collect()
    }

    /// `expected` in the text [`Timestamp`] shows.
    fn shown(expected: &[&str]) -> Vec<String> {
        expected.iter().map(|e| utc(e).to_string()).collect()
    }

    #[test]
    fn five_fields_and_six_with_seconds() {
        let every_second = CronSchedule::parse("* * * * * *", "UTC").unwrap();
        assert_eq!(
            next_times(&every_second, "2026-01-01T00:00:00.500Z", 2),
            shown(&["2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"])
        );
        let hourly = CronSchedule::parse("15 * * * *", "UTC").unwrap();
        assert_eq!(next_times(&hourly, "2026-01-01T00:20:00Z", 1), shown(&["2026-01-01T01:15:00Z"]));
    }

    #[test]
    fn refuses_bad_patterns_and_zones() {
        assert!(matches!(CronSchedule::parse("* * *", "UTC"), Err(Invalid::Cron { .. })));
        assert!(matches!(CronSchedule::parse("0 0 * * * * 2030", "UTC"), Err(Invalid::Cron { .. })));
        assert!(matches!(CronSchedule::parse("61 * * * *", "UTC"), Err(Invalid::Cron { .. })));
        assert!(matches!(CronSchedule::parse("", "UTC"), Err(Invalid::Cron { .. })));
        assert!(matches!(CronSchedule::parse("* * * * *", "Mars/Olympus"), Err(Invalid::Timezone { .. })));
    }

    #[test]
    fn a_daily_0230_in_berlin_across_spring_forward() {
        // 2026-03-29: Berlin's clocks go from 02:00 CET to 03:00 CEST; 02:30 does not exist.
        let daily = CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            next_times(&daily, "2026-03-27T12:00:00Z", 4),
            shown(&[
                "2026-03-28T01:30:00.000Z", // 02:30 CET
                "2026-03-29T01:00:00.000Z", // 03:00 CEST: the first instant after the gap
                "2026-03-30T00:30:00.000Z", // 02:30 CEST
                "2026-03-31T00:30:00.000Z",
            ])
        );
    }

    #[test]
    fn a_daily_0230_in_berlin_across_fall_back() {
        // 2026-10-25: Berlin's clocks go from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
        let daily = CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            next_times(&daily, "2026-10-23T12:00:00Z", 3),
            shown(&[
                "2026-10-24T00:30:00.000Z", // 02:30 CEST
                "2026-10-25T00:30:00.000Z", // 02:30 CEST, the first pass only
                "2026-10-26T01:30:00.000Z", // 02:30 CET
            ])
        );
    }

    #[test]
    fn an_every_15_minutes_pattern_across_both_changes() {
        let quarter = CronSchedule::parse("*/15 * * * *", "Europe/Berlin").unwrap();
        // Spring forward: 01:45 CET is followed by 03:00 CEST, 15 minutes later in real time.
        assert_eq!(
            next_times(&quarter, "2026-03-29T00:40:00Z", 2),
            shown(&["2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z"])
        );
        // Fall back: every quarter of both passes of 02:00-03:00 runs, 15 minutes apart.
        let times = next_times(&quarter, "2026-10-24T23:50:00Z", 10);
        let expected: Vec<String> = (0..10)
            .map(|n| Timestamp::from_unix_ms(utc("2026-10-25T00:00:00Z").unix_ms() + n * 15 * 60_000).to_string())
            .collect();
        assert_eq!(times, expected);
    }

    #[test]
    fn due_occurrences_newest_first_capped() {
        let every_second = CronSchedule::parse("* * * * * *", "UTC").unwrap();
        let from = utc("2026-01-01T00:00:00Z");
        let now = utc("2026-01-01T00:00:05.300Z");
        let due = every_second.due(from, now, 100);
        assert_eq!(due.len(), 6);
        assert_eq!(due[0].to_string(), utc("2026-01-01T00:00:05Z").to_string());
        assert_eq!(due[5].unix_ms(), from.unix_ms());
        assert_eq!(every_second.due(from, now, 2).len(), 2);
        assert!(every_second.due(utc("2026-01-01T00:00:06Z"), now, 100).is_empty());
    }
}
