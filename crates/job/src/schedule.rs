//! The `schedule:` value: a cron timer (Glue's `cron(...)` or five fields) and conditional
//! triggers, and [`Timer`], which computes a timer's fire times in its time zone.
//!
//! Accepted timer forms:
//! - Glue's `cron(Minutes Hours Day-of-month Month Day-of-week Year)`: day-of-week is
//!   1-7 = SUN-SAT (or names), exactly one of day-of-month and day-of-week is `?`,
//!   `0/15` steps, `L` (last day of month, or `5L` last Friday), `W` (`15W` nearest
//!   weekday) and `#` (`6#3` third Friday) as Glue documents them.
//! - A five-field line `Minutes Hours Day-of-month Month Day-of-week` (POSIX: day-of-week
//!   0-7, 0 and 7 Sunday) and the `@daily`-style nicknames.
//! - `rate(N minutes|hours|days)`: every N units, at multiples of the period since the Unix
//!   epoch. `rate(N seconds)` is for tests only and accepted only when the environment sets
//!   `SLUICE_TEST_SECOND_SCHEDULES=1` (Glue fires at most once a minute).
//!
//! The time zone is an IANA name (default UTC). Across a daylight-saving change, a fixed
//! local time that does not exist (the spring-forward gap) fires once at the first instant
//! after the gap, and a local time that happens twice (fall back) fires once.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use sluice_proto as pb;

use crate::convert::Converter;
use crate::model;

/// The environment variable that lets `rate(N seconds)` through (tests only).
pub const TEST_SECONDS_ENV: &str = "SLUICE_TEST_SECOND_SCHEDULES";

/// Why a timer or time zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error("invalid cron '{cron}': {reason}")]
    Cron {
        /// The expression as written.
        cron: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The time zone is not an IANA name.
    #[error(
        "unknown time zone '{0}': expected an IANA name such as UTC, Europe/Berlin or America/New_York"
    )]
    TimeZone(String),
}

/// When a timer fires.
#[derive(Debug, Clone)]
enum Kind {
    /// A cron pattern read in the timer's zone.
    Cron(Box<Cron>),
    /// Every so many milliseconds since the Unix epoch.
    Rate(i64),
}

/// A parsed timer: a cron expression (or rate) and its time zone.
#[derive(Debug, Clone)]
pub struct Timer {
    kind: Kind,
    zone: Tz,
}

fn cron_error(cron: &str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError::Cron {
        cron: cron.to_string(),
        reason: reason.into(),
    }
}

/// Reads an IANA zone name; empty is UTC.
pub fn parse_zone(timezone: &str) -> Result<Tz, ScheduleError> {
    let name = timezone.trim();
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    Tz::from_str(name).map_err(|_| ScheduleError::TimeZone(name.to_string()))
}

impl Timer {
    /// Parses `cron` (Glue's `cron(...)`, five fields or `rate(...)`) in `timezone` (an IANA
    /// name; empty: UTC).
    pub fn parse(cron: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let zone = parse_zone(timezone)?;
        let text = cron.trim();
        let kind = if let Some(inner) = strip_call(text, "cron") {
            Kind::Cron(Box::new(parse_glue(text, inner)?))
        } else if let Some(inner) = strip_call(text, "rate") {
            Kind::Rate(parse_rate(text, inner)?)
        } else {
            Kind::Cron(Box::new(parse_five(text)?))
        };
        Ok(Self { kind, zone })
    }

    /// The time zone the fields are read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first fire time strictly after `after_ms` (ms since the Unix epoch), if any.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.kind {
            Kind::Rate(period) => Some((after_ms.div_euclid(*period) + 1) * period),
            Kind::Cron(cron) => {
                let after: DateTime<Utc> = Utc.timestamp_millis_opt(after_ms).single()?;
                let local = after.with_timezone(&self.zone);
                cron.find_next_occurrence(&local, false)
                    .ok()
                    .map(|t| t.timestamp_millis())
            }
        }
    }

    /// The latest fire time `t` with `since_ms < t <= now_ms`, and how many earlier ones in
    /// that window it stands for (missed ticks that are not fired).
    pub fn latest_due(&self, since_ms: i64, now_ms: i64) -> Option<(i64, u64)> {
        let mut t = self.next_after(since_ms)?;
        if t > now_ms {
            return None;
        }
        if let Kind::Rate(period) = self.kind {
            let latest = now_ms.div_euclid(period) * period;
            return Some((latest, ((latest - t) / period) as u64));
        }
        let mut skipped = 0u64;
        // Long outages of fine-grained crons: jump close to `now` rather than walk a year of
        // minutes (a tick more or less in the skipped count does not matter).
        const DAY_MS: i64 = 86_400_000;
        if now_ms - t > 2 * DAY_MS {
            let jump_from = now_ms - DAY_MS;
            skipped = 1;
            t = self.next_after(jump_from)?;
            if t > now_ms {
                return None;
            }
        }
        while let Some(next) = self.next_after(t) {
            if next > now_ms {
                break;
            }
            t = next;
            skipped += 1;
        }
        Some((t, skipped))
    }
}

/// `inner` of `name(inner)`, case-insensitive on the name.
fn strip_call<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = text.find('(')?;
    if !text[..open].trim().eq_ignore_ascii_case(name) {
        return None;
    }
    text[open + 1..].trim_end().strip_suffix(')')
}

fn parse_glue(text: &str, inner: &str) -> Result<Cron, ScheduleError> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(cron_error(
            text,
            format!(
                "Glue's cron(...) takes six fields, Minutes Hours Day-of-month Month \
                 Day-of-week Year, as in cron(0 6 * * ? *); found {}",
                fields.len()
            ),
        ));
    }
    let (dom, dow) = (fields[2], fields[4]);
    if (dom == "?") == (dow == "?") {
        return Err(cron_error(
            text,
            "exactly one of Day-of-month and Day-of-week must be '?' (Glue cannot read both, \
             nor neither): write cron(0 6 * * ? *) for every day",
        ));
    }
    if dow.contains('+') {
        return Err(cron_error(text, "'+' in Day-of-week is not Glue syntax"));
    }
    if let Some(year) = fields[5]
        .split([',', '-', '/'])
        .find(|y| y.parse::<u32>().is_ok_and(|y| !(1970..=2199).contains(&y)))
    {
        return Err(cron_error(
            text,
            format!("year {year} is outside Glue's range 1970-2199"),
        ));
    }
    // Glue's fields with a seconds field of 0 in front, its weekdays 1-7 = SUN-SAT, and
    // its `0/15` steps.
    let pattern = format!("0 {}", fields.join(" "));
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        .sloppy_ranges(true)
        .build()
        .parse(&pattern)
        .map_err(|e| cron_error(text, e.to_string()))
}

fn parse_five(text: &str) -> Result<Cron, ScheduleError> {
    let n = text.split_whitespace().count();
    if !text.starts_with('@') && n != 5 {
        let hint = if n == 6 {
            "; a six-field line must be Glue's form, written cron(Minutes Hours Day-of-month \
             Month Day-of-week Year)"
        } else {
            ""
        };
        return Err(cron_error(
            text,
            format!(
                "expected five fields (Minutes Hours Day-of-month Month Day-of-week), \
                 cron(...) with Glue's six, or rate(N minutes); found {n}{hint}"
            ),
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| cron_error(text, e.to_string()))
}

fn parse_rate(text: &str, inner: &str) -> Result<i64, ScheduleError> {
    let mut parts = inner.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(cron_error(
            text,
            "rate(...) takes a count and a unit, as in rate(5 minutes)",
        ));
    };
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| cron_error(text, format!("'{n}' is not a positive whole number")))?;
    let unit_ms = match unit.to_ascii_lowercase().trim_end_matches('s') {
        "second" => {
            if std::env::var(TEST_SECONDS_ENV).as_deref() != Ok("1") {
                return Err(cron_error(
                    text,
                    format!(
                        "rate in seconds is for tests only (set {TEST_SECONDS_ENV}=1); \
                         schedules fire at most once a minute"
                    ),
                ));
            }
            1_000
        }
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        other => {
            return Err(cron_error(
                text,
                format!("unknown unit '{other}': expected minutes, hours or days"),
            ));
        }
    };
    n.checked_mul(unit_ms)
        .ok_or_else(|| cron_error(text, "the period is too long"))
}

/// Converts the value, recording an invalid cron or time zone at `schedule`.
pub(crate) fn convert(c: &mut Converter, s: &model::ScheduleFile) -> pb::Schedule {
    let (schedule, cron_path, zone_path) = match s {
        model::ScheduleFile::Cron(cron) => (
            pb::Schedule {
                cron: cron.clone(),
                timezone: String::new(),
                after: Vec::new(),
            },
            "schedule",
            "schedule",
        ),
        model::ScheduleFile::Full(m) => (
            pb::Schedule {
                cron: m.cron.clone().unwrap_or_default(),
                timezone: m.timezone.clone().unwrap_or_default(),
                after: m.after.clone(),
            },
            "schedule.cron",
            "schedule.timezone",
        ),
    };
    if let Err(e) = parse_zone(&schedule.timezone) {
        c.error(zone_path, e.to_string());
    } else if !schedule.cron.trim().is_empty()
        && let Err(e) = Timer::parse(&schedule.cron, &schedule.timezone)
    {
        c.error(cron_path, e.to_string());
    }
    if schedule.cron.trim().is_empty() && schedule.after.is_empty() {
        c.error(
            "schedule",
            "a schedule needs a cron timer, an `after:` list of jobs, or both",
        );
    }
    for (i, job) in schedule.after.iter().enumerate() {
        if job.trim().is_empty() {
            c.error(format!("schedule.after[{i}]"), "a job name is required");
        }
    }
    schedule
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn next(cron: &str, tz: &str, after: &str) -> String {
        let t = Timer::parse(cron, tz).unwrap_or_else(|e| panic!("{cron}: {e}"));
        let n = t.next_after(ms(after)).expect("a next fire time");
        Utc.timestamp_millis_opt(n)
            .single()
            .expect("valid")
            .to_rfc3339()
    }

    #[test]
    fn glue_daily_at_six_utc() {
        assert_eq!(
            next("cron(0 6 * * ? *)", "", "2026-11-26T12:00:00Z"),
            "2026-11-27T06:00:00+00:00"
        );
        assert_eq!(
            next("cron(0 6 * * ? *)", "UTC", "2026-11-26T05:59:59Z"),
            "2026-11-26T06:00:00+00:00"
        );
        // Exactly at a tick: the next one, not the same.
        assert_eq!(
            next("cron(0 6 * * ? *)", "UTC", "2026-11-26T06:00:00Z"),
            "2026-11-27T06:00:00+00:00"
        );
    }

    #[test]
    fn glue_weekdays_are_one_to_seven_from_sunday() {
        // 2026-11-26 is a Thursday; Glue's 2 is Monday.
        assert_eq!(
            next("cron(0 8 ? * 2 *)", "UTC", "2026-11-26T12:00:00Z"),
            "2026-11-30T08:00:00+00:00"
        );
        assert_eq!(
            next("cron(0 8 ? * MON-FRI *)", "UTC", "2026-11-27T12:00:00Z"),
            "2026-11-30T08:00:00+00:00"
        );
        // Third Friday of December 2026 (6 = Friday).
        assert_eq!(
            next("cron(0 12 ? * 6#3 *)", "UTC", "2026-11-26T00:00:00Z"),
            "2026-12-18T12:00:00+00:00"
        );
    }

    #[test]
    fn glue_steps_last_day_and_nearest_weekday() {
        assert_eq!(
            next("cron(0/15 * * * ? *)", "UTC", "2026-11-26T12:07:00Z"),
            "2026-11-26T12:15:00+00:00"
        );
        assert_eq!(
            next("cron(0 0 L * ? *)", "UTC", "2026-11-26T00:00:00Z"),
            "2026-11-30T00:00:00+00:00"
        );
        // 2026-11-15 is a Sunday: 15W is Monday the 16th.
        assert_eq!(
            next("cron(0 0 15W * ? *)", "UTC", "2026-11-01T00:00:00Z"),
            "2026-11-16T00:00:00+00:00"
        );
        // A year field: nothing until 2027.
        assert_eq!(
            next("cron(0 0 1 1 ? 2027)", "UTC", "2026-11-26T00:00:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn five_fields_are_posix() {
        // 1 is Monday in POSIX cron.
        assert_eq!(
            next("30 7 * * 1", "UTC", "2026-11-26T12:00:00Z"),
            "2026-11-30T07:30:00+00:00"
        );
        assert_eq!(
            next("*/5 * * * *", "UTC", "2026-11-26T12:01:30Z"),
            "2026-11-26T12:05:00+00:00"
        );
        assert_eq!(
            next("@daily", "UTC", "2026-11-26T12:00:00Z"),
            "2026-11-27T00:00:00+00:00"
        );
    }

    #[test]
    fn a_time_zone_moves_the_utc_tick_across_dst() {
        // 06:00 in Berlin is 05:00 UTC in winter (CET) and 04:00 UTC in summer (CEST);
        // Berlin moved to summer time on 2026-03-29.
        let cron = "cron(0 6 * * ? *)";
        assert_eq!(
            next(cron, "Europe/Berlin", "2026-03-28T12:00:00Z"),
            "2026-03-29T04:00:00+00:00"
        );
        assert_eq!(
            next(cron, "Europe/Berlin", "2026-03-27T12:00:00Z"),
            "2026-03-28T05:00:00+00:00"
        );
        // And back on 2026-10-25.
        assert_eq!(
            next(cron, "Europe/Berlin", "2026-10-24T12:00:00Z"),
            "2026-10-25T05:00:00+00:00"
        );
    }

    #[test]
    fn dst_gap_and_overlap_fire_once() {
        // New York springs forward 2026-03-08 02:00 -> 03:00: 02:30 does not exist that day.
        let t = Timer::parse("30 2 * * *", "America/New_York").expect("parses");
        let gap_day = t
            .next_after(ms("2026-03-08T05:00:00Z"))
            .expect("a tick on the gap day");
        // The day's one tick comes after the gap (03:00 EDT = 07:00 UTC or later), and the
        // next is the usual 02:30 EDT on 03-09.
        assert!(gap_day >= ms("2026-03-08T07:00:00Z"), "{gap_day}");
        assert!(gap_day < ms("2026-03-09T00:00:00Z"), "{gap_day}");
        assert_eq!(
            t.next_after(gap_day),
            Some(ms("2026-03-09T06:30:00Z")),
            "one tick on the gap day"
        );
        // Falls back 2026-11-01 02:00 -> 01:00: 01:30 happens twice, the timer fires once.
        let t = Timer::parse("30 1 * * *", "America/New_York").expect("parses");
        let first = t
            .next_after(ms("2026-11-01T04:00:00Z"))
            .expect("a tick on the overlap day");
        assert_eq!(first, ms("2026-11-01T05:30:00Z"));
        assert_eq!(t.next_after(first), Some(ms("2026-11-02T06:30:00Z")));
    }

    #[test]
    fn rates_are_aligned_to_the_epoch() {
        let t = Timer::parse("rate(5 minutes)", "").expect("parses");
        assert_eq!(
            t.next_after(ms("2026-11-26T12:01:00Z")),
            Some(ms("2026-11-26T12:05:00Z"))
        );
        assert_eq!(
            t.latest_due(ms("2026-11-26T12:00:00Z"), ms("2026-11-26T12:17:00Z")),
            Some((ms("2026-11-26T12:15:00Z"), 2))
        );
    }

    #[test]
    fn latest_due_fires_one_catch_up_for_many_missed_ticks() {
        let t = Timer::parse("cron(0/10 * * * ? *)", "UTC").expect("parses");
        // Down from 12:05 to 12:47: ticks 12:10..12:40 missed; only 12:40 is due, 3 skipped.
        assert_eq!(
            t.latest_due(ms("2026-11-26T12:05:00Z"), ms("2026-11-26T12:47:00Z")),
            Some((ms("2026-11-26T12:40:00Z"), 3))
        );
        assert_eq!(
            t.latest_due(ms("2026-11-26T12:40:00Z"), ms("2026-11-26T12:47:00Z")),
            None
        );
        // A week down: still one due tick, the latest.
        let due = t.latest_due(ms("2026-11-19T12:05:00Z"), ms("2026-11-26T12:47:00Z"));
        assert_eq!(due.map(|d| d.0), Some(ms("2026-11-26T12:40:00Z")));
    }

    #[test]
    fn bad_timers_are_refused_clearly() {
        let err = |c: &str, tz: &str| Timer::parse(c, tz).expect_err(c).to_string();
        assert!(err("cron(0 6 * * *)", "").contains("six fields"));
        assert!(err("cron(0 6 * * 1 *)", "").contains("exactly one of Day-of-month"));
        assert!(err("cron(0 6 ? * ? *)", "").contains("exactly one of Day-of-month"));
        assert!(err("cron(0 25 * * ? *)", "").contains("invalid cron"));
        assert!(err("cron(0 6 * * ? 1900)", "").contains("1970-2199"));
        assert!(err("0 6 * * ? *", "").contains("Glue's form"));
        assert!(err("61 * * * *", "").contains("invalid cron '61 * * * *'"));
        assert!(err("every day", "").contains("five fields"));
        assert!(err("rate(0 minutes)", "").contains("positive"));
        assert!(err("rate(2 weeks)", "").contains("unknown unit"));
        assert!(err("0 6 * * *", "Mars/Olympus").contains("unknown time zone 'Mars/Olympus'"));
    }
}
