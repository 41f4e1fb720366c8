//! Stops the tasks of jobs the scheduler no longer runs.
//!
//! Ballista's scheduler cancels a job's running tasks by calling the executor's own gRPC
//! service, which a polling executor does not serve: the tasks of a cancelled run would run
//! to their end, holding their slots and the machine. A scheduler that restarted has
//! forgotten every job it ran before (Ballista keeps job state in memory), so their tasks
//! would run on as orphans while the run's next attempt waits for a slot.
//!
//! So every task is registered here under its job while it runs, and [`watch`] asks the
//! scheduler about each of those jobs every [`WATCH_INTERVAL`]. When the scheduler answers
//! that a job failed (a cancel fails it), already succeeded (a late duplicate of a task that
//! was re-run elsewhere) or that it does not know the job, that job's tasks are stopped
//! (see [`crate::stop`]): each ends with an error at the next batch of any of its operators
//! and then gives its slot back. A scheduler that does not answer stops nothing.
//!
//! The shuffle files of a forgotten job would stay in the work folder for good (only the
//! scheduler that ran a job tells executors to remove its data), so [`sweep`] removes the
//! folders of jobs the scheduler does not know, and that no task here is writing, every
//! [`SWEEP_INTERVAL`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{GetJobStatusParams, GetJobStatusResult, job_status};
use tokio_util::sync::CancellationToken;

use crate::polls::CountingChannel;

/// How often the scheduler is asked about the jobs of running tasks.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// How often the work folder is swept for the data of jobs the scheduler does not know.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// How long one question to the scheduler may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The running tasks of each job, with the token that stops each.
#[derive(Debug, Default)]
pub struct RunningJobs {
    tasks: Mutex<HashMap<String, HashMap<u64, CancellationToken>>>,
    next_task: AtomicU64,
}

/// A task's place in [`RunningJobs`]; dropping it (the task ended) removes the task.
#[derive(Debug)]
pub struct RegisteredTask {
    jobs: Arc<RunningJobs>,
    job_id: String,
    task: u64,
}

impl Drop for RegisteredTask {
    fn drop(&mut self) {
        let mut tasks = self.jobs.lock();
        if let Some(job) = tasks.get_mut(&self.job_id) {
            job.remove(&self.task);
            if job.is_empty() {
                tasks.remove(&self.job_id);
            }
        }
    }
}

impl RunningJobs {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<u64, CancellationToken>>> {
        // The map stays consistent even if a holder panicked: every change is one insert or
        // remove.
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a task of `job_id` that `stop` stops, until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, job_id: &str, stop: CancellationToken) -> RegisteredTask {
        let task = self.next_task.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(job_id.to_string())
            .or_default()
            .insert(task, stop);
        RegisteredTask {
            jobs: self.clone(),
            job_id: job_id.to_string(),
            task,
        }
    }

    /// Whether a task of `job_id` is running here.
    pub fn is_running(&self, job_id: &str) -> bool {
        self.lock().contains_key(job_id)
    }

    /// The jobs that have a task running here.
    pub fn jobs(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Stops every running task of `job_id`; returns how many were not stopped already.
    pub fn stop_job(&self, job_id: &str) -> usize {
        let tasks = self.lock();
        let Some(job) = tasks.get(job_id) else {
            return 0;
        };
        let mut stopped = 0;
        for token in job.values().filter(|t| !t.is_cancelled()) {
            token.cancel();
            stopped += 1;
        }
        stopped
    }
}

/// Why a job's tasks should stop, from the scheduler's answer about it (`None`: they run on).
pub fn reason_to_stop(answer: &GetJobStatusResult) -> Option<&'static str> {
    match answer.status.as_ref().and_then(|s| s.status.as_ref()) {
        None => Some("the scheduler does not know the job (it restarted, or forgot it)"),
        Some(job_status::Status::Failed(_)) => Some("the job failed or was cancelled"),
        Some(job_status::Status::Successful(_)) => Some("the job already succeeded"),
        Some(job_status::Status::Queued(_) | job_status::Status::Running(_)) => None,
    }
}

/// Asks the scheduler about the job of every running task each [`WATCH_INTERVAL`] and stops
/// the tasks of jobs it no longer runs. Runs until the process ends.
pub async fn watch(mut scheduler: SchedulerGrpcClient<CountingChannel>, jobs: Arc<RunningJobs>) {
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for job_id in jobs.jobs() {
            let Some(answer) = ask(&mut scheduler, &job_id).await else {
                continue;
            };
            if let Some(reason) = reason_to_stop(&answer) {
                let stopped = jobs.stop_job(&job_id);
                if stopped > 0 {
                    tracing::warn!("stopping {stopped} task(s) of job {job_id}: {reason}");
                }
            }
        }
    }
}

/// Every [`SWEEP_INTERVAL`], removes the folders in `work_dir` of jobs the scheduler does not
/// know and no task here runs (see [`sweep_once`]). Runs until the process ends.
pub async fn sweep(
    mut scheduler: SchedulerGrpcClient<CountingChannel>,
    jobs: Arc<RunningJobs>,
    work_dir: PathBuf,
) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sweep_once(&mut scheduler, &jobs, &work_dir).await;
    }
}

/// The scheduler's answer about `job_id`, or `None` when it gives none in time.
async fn ask(
    scheduler: &mut SchedulerGrpcClient<CountingChannel>,
    job_id: &str,
) -> Option<GetJobStatusResult> {
    let question = scheduler.get_job_status(GetJobStatusParams {
        job_id: job_id.to_string(),
    });
    match tokio::time::timeout(ASK_TIMEOUT, question).await {
        Ok(Ok(answer)) => Some(answer.into_inner()),
        Ok(Err(status)) => {
            tracing::debug!("cannot ask the scheduler about job {job_id}: {status}");
            None
        }
        Err(_) => {
            tracing::debug!("the scheduler did not answer about job {job_id} in time");
            None
        }
    }
}

/// Removes the folders in `work_dir` of jobs the scheduler does not know and no task here
/// runs. Only folders named like a Ballista job id are considered (see [`is_job_id`]): spill
/// folders (`datafusion-…`) and anything else are left alone, and symbolic links are never
/// followed.
async fn sweep_once(
    scheduler: &mut SchedulerGrpcClient<CountingChannel>,
    jobs: &RunningJobs,
    work_dir: &Path,
) {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return;
    };
    let candidates: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| is_job_id(name))
        .collect();
    for job_id in candidates {
        if jobs.is_running(&job_id) {
            continue;
        }
        let Some(answer) = ask(scheduler, &job_id).await else {
            continue;
        };
        if answer.status.is_some() || jobs.is_running(&job_id) {
            continue;
        }
        match tokio::fs::remove_dir_all(work_dir.join(&job_id)).await {
            Ok(()) => tracing::info!(
                "removed the data of job {job_id}: the scheduler does not know it (it restarted)"
            ),
            Err(e) => tracing::warn!("cannot remove the data of job {job_id}: {e}"),
        }
    }
}

/// Whether `name` has the form of the job ids Ballista's scheduler makes: a 64-bit snowflake
/// id in Crockford base32, 13 characters of `0-9` and `A-Z` without `I`, `L`, `O` and `U`.
pub fn is_job_id(name: &str) -> bool {
    name.len() == 13
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
}
