//! Commands that talk to a `sluice-scheduler` over gRPC: submit, jobs, status, watch, cancel.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use std::collections::BTreeMap;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sluice_proto as pb;
use sluice_proto::RunState;

use crate::connection::{Connection, JobClient, SchedulerArgs};

use crate::output::{human_bytes, thousands};

/// Connects to the scheduler's JobService, logged in if a user was given.
pub(crate) async fn connect(scheduler: &SchedulerArgs) -> Result<JobClient> {
    Connection::open(scheduler.url(), &scheduler.login)
        .await?
        .jobs()
}

fn state_of(run: &pb::JobRun) -> RunState {
    RunState::try_from(run.state).unwrap_or(RunState::Unspecified)
}

fn state_name(run: &pb::JobRun) -> &'static str {
    state_of(run)
        .as_str_name()
        .strip_prefix("RUN_STATE_")
        .unwrap_or("UNKNOWN")
}

fn status_error(e: tonic::Status, job: Option<&sluice_job::LoadedJob>) -> anyhow::Error {
    let message = e.message().to_string();
    // "invalid job: <path>: <message>": point at the job file's line.
    if let (Some(job), Some(rest)) = (job, message.strip_prefix("invalid job: "))
        && let Some((path, what)) = rest.split_once(": ")
    {
        let d = sluice_job::Diagnostic::new(path, what);
        return anyhow!("the scheduler refused the job:\n{}", job.describe(&d));
    }
    anyhow!("{} ({:?})", message, e.code())
}

/// `sluice submit`: submits a job file and follows the run until it ends.
pub(crate) async fn submit(job_path: &Path, scheduler: &SchedulerArgs, detach: bool) -> Result<()> {
    let job = sluice_job::load(job_path).map_err(|e| anyhow!("invalid job file:\n{e}"))?;
    let mut client = connect(scheduler).await?;
    let response = client
        .submit_job(pb::SubmitJobRequest {
            spec: Some(job.spec.clone()),
        })
        .await
        .map_err(|e| status_error(e, Some(&job)))?;
    let run_id = response.into_inner().run_id;
    outln!("submitted run {run_id}");
    if detach {
        return Ok(());
    }
    follow(&mut client, &run_id).await
}

/// `sluice watch`: follows a run until it ends; fails unless it succeeded.
pub(crate) async fn watch(scheduler: &SchedulerArgs, run_id: &str) -> Result<()> {
    let mut client = connect(scheduler).await?;
    follow(&mut client, run_id).await
}

async fn follow(client: &mut JobClient, run_id: &str) -> Result<()> {
    let mut stream = client
        .watch_job(pb::WatchJobRequest {
            run_id: run_id.to_string(),
        })
        .await
        .map_err(|e| status_error(e, None))?
        .into_inner();
    // One line for the run, one bar per stage as the scheduler reveals them.
    let multi = MultiProgress::new();
    let overall = multi.add(ProgressBar::new_spinner());
    overall.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} run {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    overall.enable_steady_tick(Duration::from_millis(100));
    let stage_style = ProgressStyle::with_template(
        "       stage {prefix:>3} [{bar:30}] {pos:>4}/{len:<4} tasks {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("#>-");
    let mut stages: BTreeMap<u32, ProgressBar> = BTreeMap::new();
    let mut last = None;
    while let Some(run) = stream.message().await.map_err(|e| status_error(e, None))? {
        overall.set_message(state_name(&run).to_string());
        if let Some(p) = &run.progress {
            for st in &p.stage_list {
                let bar = stages.entry(st.stage_id).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(u64::from(st.tasks)));
                    b.set_style(stage_style.clone());
                    b.set_prefix(st.stage_id.to_string());
                    b
                });
                // A stage whose inputs are not ready has no task count yet: show it empty.
                bar.set_length(u64::from(st.tasks.max(1)));
                bar.set_position(u64::from(st.tasks_done));
                bar.set_message(st.state.clone());
            }
        }
        let done = state_of(&run).is_final();
        last = Some(run);
        if done {
            break;
        }
    }
    let _ = multi.clear();
    let run = last.ok_or_else(|| anyhow!("the scheduler sent no state for run {run_id}"))?;
    print_run(&run);
    match state_of(&run) {
        RunState::Succeeded => Ok(()),
        RunState::Unspecified
        | RunState::Waiting
        | RunState::Starting
        | RunState::Running
        | RunState::Stopping => {
            bail!(
                "lost track of run {run_id} while it was {}",
                state_name(&run)
            )
        }
        _ => bail!(
            "run {run_id} ended {}: {}",
            state_name(&run),
            if run.error_message.is_empty() {
                "no reason given"
            } else {
                &run.error_message
            }
        ),
    }
}

fn time_ms(ms: i64) -> String {
    if ms == 0 {
        return "-".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// A tick's time: `2026-11-26 06:00 UTC` (with seconds when it has any).
fn tick_time(ms: i64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_millis(ms)?;
    let format = if ms % 60_000 == 0 {
        "%Y-%m-%d %H:%M UTC"
    } else if ms % 1_000 == 0 {
        "%Y-%m-%d %H:%M:%S UTC"
    } else {
        "%Y-%m-%d %H:%M:%S%.3f UTC"
    };
    Some(t.format(format).to_string())
}

/// What started a run, from its `triggered_by`: `submitted` (empty), `started by schedule
/// nightly at 2026-11-26 06:00 UTC` (`schedule:<name>@<tick ms>`), `started after job up's
/// run RUN` (`after:<job>/<run id>`); anything else as it is.
pub(crate) fn describe_trigger(triggered_by: &str) -> String {
    if triggered_by.is_empty() {
        return "submitted".into();
    }
    if let Some(rest) = triggered_by.strip_prefix("schedule:")
        && let Some((name, tick)) = rest.rsplit_once('@')
        && let Some(at) = tick.parse::<i64>().ok().and_then(tick_time)
    {
        return format!("started by schedule {name} at {at}");
    }
    if let Some(rest) = triggered_by.strip_prefix("after:")
        && let Some((job, run)) = rest.rsplit_once('/')
    {
        return format!("started after job {job}'s run {run}");
    }
    format!("started by {triggered_by}")
}

/// Prints one run in full.
pub(crate) fn print_run(run: &pb::JobRun) {
    outln!(
        "run     {} (job '{}', attempt {})",
        run.id,
        run.job_name,
        run.attempt
    );
    outln!("state   {}", state_name(run));
    if run.queue_position > 0 {
        outln!(
            "queue   place {} (the scheduler's --max-concurrent-runs are busy, or its job or table has a run ahead)",
            run.queue_position
        );
    }
    outln!(
        "times   submitted {}  started {}  ended {}",
        time_ms(run.submitted_at_ms),
        time_ms(run.started_at_ms),
        time_ms(run.ended_at_ms)
    );
    outln!("trigger {}", describe_trigger(&run.triggered_by));
    if run.ended_at_ms > 0 && run.started_at_ms > 0 {
        outln!(
            "time    {:.2} s{}",
            (run.ended_at_ms - run.started_at_ms) as f64 / 1000.0,
            crate::output::run_shape(run.stages as usize, run.tasks as usize, run.first_task_ms)
        );
    }
    for s in &run.sources {
        let rows = s
            .rows
            .map(|r| format!("{} rows", thousands(r)))
            .unwrap_or_else(|| "rows not reported".into());
        outln!(
            "read    {:<12} {:>14}  {} files  {}",
            s.name,
            rows,
            s.files,
            human_bytes(s.bytes)
        );
    }
    if !run.note.is_empty() {
        outln!("note    {}", run.note);
    } else if state_of(run) == RunState::Succeeded {
        outln!(
            "wrote   {} rows in {} files ({}) to {}",
            thousands(run.rows_written),
            run.files_written,
            human_bytes(run.bytes_written),
            run.table_location
        );
        outln!("table   {}", run.table);
    }
    for line in sluice_engine::quality::describe_results(&run.quality) {
        outln!("rule    {line}");
    }
    if !run.error_message.is_empty() {
        outln!("error   {}", run.error_message);
    }
}

/// `sluice status`.
pub(crate) async fn status(scheduler: &SchedulerArgs, run_id: &str) -> Result<()> {
    let mut client = connect(scheduler).await?;
    let run = client
        .get_job(pb::GetJobRequest {
            run_id: run_id.to_string(),
        })
        .await
        .map_err(|e| status_error(e, None))?
        .into_inner();
    print_run(&run);
    Ok(())
}

/// `sluice cancel`.
pub(crate) async fn cancel(scheduler: &SchedulerArgs, run_id: &str) -> Result<()> {
    let mut client = connect(scheduler).await?;
    let run = client
        .cancel_job(pb::CancelJobRequest {
            run_id: run_id.to_string(),
        })
        .await
        .map_err(|e| status_error(e, None))?
        .into_inner();
    outln!("run {} is {}", run.id, state_name(&run));
    Ok(())
}

/// `sluice jobs`: runs, newest first.
pub(crate) async fn jobs(scheduler: &SchedulerArgs, states: &[String], limit: u32) -> Result<()> {
    let mut client = connect(scheduler).await?;
    let mut wanted = Vec::new();
    for s in states {
        let name = format!("RUN_STATE_{}", s.to_uppercase());
        let state = RunState::from_str_name(&name)
            .ok_or_else(|| anyhow!("unknown state '{s}': use waiting, starting, running, stopping, stopped, succeeded, failed or timeout"))?;
        wanted.push(state as i32);
    }
    let runs = client
        .list_jobs(pb::ListJobsRequest {
            states: wanted,
            page_size: limit,
            page_token: String::new(),
        })
        .await
        .map_err(|e| status_error(e, None))?
        .into_inner()
        .runs;
    let triggers: Vec<String> = runs
        .iter()
        .map(|r| describe_trigger(&r.triggered_by))
        .collect();
    let width = triggers
        .iter()
        .map(|t| t.chars().count())
        .chain(["started by".len()])
        .max()
        .unwrap_or(0);
    outln!(
        "{:<34} {:<20} {:<10} {:>12}  {:<19}  {:<width$}  error",
        "run",
        "job",
        "state",
        "rows",
        "submitted",
        "started by"
    );
    for (r, trigger) in runs.into_iter().zip(triggers) {
        let rows = if state_of(&r) == RunState::Succeeded {
            thousands(r.rows_written)
        } else {
            "-".into()
        };
        // The first 60 characters (a byte count could cut one in two).
        let error: String = r.error_message.chars().take(60).collect();
        let line = format!(
            "{:<34} {:<20} {:<10} {:>12}  {:<19}  {trigger:<width$}  {}",
            r.id,
            r.job_name,
            state_name(&r),
            rows,
            time_ms(r.submitted_at_ms),
            error
        );
        outln!("{}", line.trim_end());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::describe_trigger;

    #[test]
    fn triggers_read_as_text() {
        assert_eq!(describe_trigger(""), "submitted");
        assert_eq!(
            describe_trigger("schedule:nightly@1795672800000"),
            "started by schedule nightly at 2026-11-26 06:00 UTC"
        );
        assert_eq!(
            describe_trigger("schedule:fast.1@1795672802000"),
            "started by schedule fast.1 at 2026-11-26 06:00:02 UTC"
        );
        assert_eq!(
            describe_trigger("after:staging-load/20261126T060000000-1a2b3c4d"),
            "started after job staging-load's run 20261126T060000000-1a2b3c4d"
        );
        assert_eq!(
            describe_trigger("schedule:x@soon"),
            "started by schedule:x@soon"
        );
    }
}
