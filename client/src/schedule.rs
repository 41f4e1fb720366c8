//! `sluice schedule`, `sluice schedules` and `sluice unschedule`: a scheduler's timers and
//! conditional triggers.

use std::path::Path;

use anyhow::{Result, anyhow};
use chrono::{TimeZone, Utc};
use sluice_proto as pb;

use crate::connection::SchedulerArgs;

/// A refusal, pointing at the job file's line when it names a path in the job.
fn refused(e: tonic::Status, job: Option<&sluice_job::LoadedJob>) -> anyhow::Error {
    let message = e.message().to_string();
    if let (Some(job), Some(rest)) = (job, message.strip_prefix("invalid job: "))
        && let Some((path, what)) = rest.split_once(": ")
    {
        let d = sluice_job::Diagnostic::new(path, what);
        return anyhow!("the scheduler refused the schedule:\n{}", job.describe(&d));
    }
    anyhow!("the scheduler refused: {message} ({:?})", e.code())
}

/// A time as `2026-11-26 06:00:00 UTC`, or `-` for none.
fn time(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    Utc.timestamp_millis_opt(ms).single().map_or_else(
        || "-".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// What starts the schedule's runs: the cron and zone, and the jobs it follows.
fn when(entry: &pb::ScheduleEntry) -> (String, String, String) {
    let schedule = entry
        .spec
        .as_ref()
        .and_then(|s| s.schedule.clone())
        .unwrap_or_default();
    let cron = if schedule.cron.is_empty() {
        "-".to_string()
    } else {
        schedule.cron
    };
    let zone = if schedule.timezone.is_empty() {
        "UTC".to_string()
    } else {
        schedule.timezone
    };
    let after = if schedule.after.is_empty() {
        "-".to_string()
    } else {
        schedule.after.join(",")
    };
    (cron, zone, after)
}

/// Why the schedule's last tick or trigger started no run, on one line; `-` when it started
/// one.
fn last_error(entry: &pb::ScheduleEntry) -> String {
    let why = entry
        .last_error
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if why.is_empty() { "-".into() } else { why }
}

/// `sluice schedule JOB_FILE`: registers the job's `schedule:` with the scheduler.
pub(crate) async fn schedule(
    job_path: &Path,
    name: Option<String>,
    scheduler: &SchedulerArgs,
) -> Result<()> {
    let job = sluice_job::load(job_path).map_err(|e| anyhow!("invalid job file:\n{e}"))?;
    if job.spec.schedule.is_none() {
        let d = sluice_job::Diagnostic::new(
            "schedule",
            "the job has no `schedule:` (a cron timer such as \"cron(0 6 * * ? *)\", or \
             `after: [job]`)",
        );
        return Err(anyhow!("cannot schedule the job:\n{}", job.describe(&d)));
    }
    let mut client = crate::remote::connect(scheduler).await?;
    let entry = client
        .create_schedule(pb::CreateScheduleRequest {
            spec: Some(job.spec.clone()),
            name: name.unwrap_or_default(),
        })
        .await
        .map_err(|e| refused(e, Some(&job)))?
        .into_inner();
    let (cron, zone, after) = when(&entry);
    outln!(
        "schedule '{}' registered: job '{}', cron {cron} ({zone}), after {after}, next fire {}",
        entry.name,
        entry.spec.as_ref().map_or("", |s| s.name.as_str()),
        time(entry.next_fire_ms)
    );
    Ok(())
}

/// `sluice schedules`: every registered schedule.
pub(crate) async fn schedules(scheduler: &SchedulerArgs) -> Result<()> {
    let mut client = crate::remote::connect(scheduler).await?;
    let list = client
        .list_schedules(pb::ListSchedulesRequest {})
        .await
        .map_err(|e| refused(e, None))?
        .into_inner()
        .schedules;
    if list.is_empty() {
        outln!("no schedules");
        return Ok(());
    }
    let mut rows: Vec<[String; 9]> = vec![[
        "NAME".into(),
        "JOB".into(),
        "CRON".into(),
        "TIME ZONE".into(),
        "AFTER".into(),
        "NEXT FIRE".into(),
        "LAST FIRE".into(),
        "LAST RUN".into(),
        "LAST ERROR".into(),
    ]];
    for entry in &list {
        let (cron, zone, after) = when(entry);
        rows.push([
            entry.name.clone(),
            entry
                .spec
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            cron,
            zone,
            after,
            time(entry.next_fire_ms),
            time(entry.last_fire_ms),
            if entry.last_run_id.is_empty() {
                "-".into()
            } else {
                entry.last_run_id.clone()
            },
            last_error(entry),
        ]);
    }
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        outln!("{}", line.join("  ").trim_end());
    }
    Ok(())
}

/// `sluice unschedule NAME`: removes a schedule (its runs go on).
pub(crate) async fn unschedule(name: &str, scheduler: &SchedulerArgs) -> Result<()> {
    let mut client = crate::remote::connect(scheduler).await?;
    let entry = client
        .delete_schedule(pb::DeleteScheduleRequest {
            name: name.to_string(),
        })
        .await
        .map_err(|e| refused(e, None))?
        .into_inner();
    outln!(
        "schedule '{}' removed (last fire {})",
        entry.name,
        time(entry.last_fire_ms)
    );
    Ok(())
}
