//! The job manager: queues runs, runs several at a time on the engine (at most one per job
//! and one per target table, as Glue's default `MaxConcurrentRuns` of 1), records every
//! state change in the run store and tells watchers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sluice_catalog::Catalogs;
use sluice_engine::{Engine, RunError, RunEvent, failpoint, run_job};
use sluice_lake::Lake;
use sluice_proto as pb;
use sluice_proto::RunState;
use sluice_storage::AllowedRoots;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use super::lock;
use super::store::{RunStore, StoreError};

/// Why a request to the manager failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The spec is invalid; the message names the field.
    #[error("{0}")]
    InvalidSpec(String),
    /// No run has this id.
    #[error("no run with id '{0}'")]
    NotFound(String),
    /// The run can no longer be cancelled.
    #[error("run '{0}' cannot be cancelled: it is {1}")]
    NotCancellable(String, String),
    /// The run store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A configured staging root (or the lake) is not a usable root.
    #[error("staging_roots: {0}")]
    Roots(#[source] sluice_storage::RootError),
    /// Something outside the job failed while it was checked (storage, cluster).
    #[error("{0}")]
    Unavailable(#[source] sluice_planner::PlanError),
    /// The scheduler is shutting down and takes no new runs.
    #[error("the scheduler is shutting down: submit again once it is back")]
    ShuttingDown,
}

/// Told of every run that ends (metrics, the dashboards' cache).
pub trait RunListener: Send + Sync {
    /// `run` has just ended in its final state.
    fn run_ended(&self, run: &pb::JobRun);
}

/// Attempts added when executors are lost during a run.
const MAX_EXECUTOR_LOSS_RETRIES: u32 = 3;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

struct Live {
    sender: watch::Sender<pb::JobRun>,
    task: Option<tokio::task::AbortHandle>,
    /// Set once the run starts committing: from then on it cannot be cancelled.
    committing: bool,
    /// Set when a cancel is accepted: from then on the run cannot start committing, and
    /// its task no longer changes the record.
    stopping: bool,
}

/// Runs jobs and keeps their records.
pub struct JobManager {
    engine: Arc<Engine>,
    lake: Lake,
    catalogs: Arc<Catalogs>,
    store: RunStore,
    live: Mutex<HashMap<String, Live>>,
    /// One permit per run that may run at once.
    slots: Semaphore,
    /// How many permits `slots` has.
    max_concurrent_runs: usize,
    /// One lock per job name and per target table: a run holds its job's and its table's
    /// while it runs, so runs of one job, or into one table, run one after the other.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Where sources may be read from.
    staging_roots: AllowedRoots,
    /// Where targets may be written: the lake.
    lake_root: AllowedRoots,
    /// Set by [`JobManager::shut_down`]: submissions are refused from then on.
    shutting_down: AtomicBool,
    /// Told of every run that ends.
    listener: OnceLock<Arc<dyn RunListener>>,
    /// The registered schedules (timers and conditional triggers), once started.
    schedules: OnceLock<Arc<super::schedules::Schedules>>,
}

impl JobManager {
    /// A manager that runs at most `max_concurrent_runs` runs at a time on `engine` (at
    /// least one), queueing the rest. Submitted jobs may read sources only under
    /// `staging_roots` (folders and `s3://bucket/prefix` URLs; none: only the lake) and write
    /// only into the lake.
    pub fn new(
        engine: Arc<Engine>,
        lake: Lake,
        catalogs: Arc<Catalogs>,
        store: RunStore,
        staging_roots: &[String],
        max_concurrent_runs: usize,
    ) -> Result<Arc<Self>, JobError> {
        let max_concurrent_runs = max_concurrent_runs.max(1);
        let lake_root = AllowedRoots::new(&[lake.url.as_str()]).map_err(JobError::Roots)?;
        let staging_roots = if staging_roots.is_empty() {
            lake_root.clone()
        } else {
            AllowedRoots::new(staging_roots).map_err(JobError::Roots)?
        };
        Ok(Arc::new(Self {
            engine,
            lake,
            catalogs,
            store,
            live: Mutex::new(HashMap::new()),
            slots: Semaphore::new(max_concurrent_runs),
            max_concurrent_runs,
            turns: Mutex::new(HashMap::new()),
            staging_roots,
            lake_root,
            shutting_down: AtomicBool::new(false),
            listener: OnceLock::new(),
            schedules: OnceLock::new(),
        }))
    }

    /// The lake and catalogs the runs write into (for the bookmark calls).
    pub(crate) fn lake_and_catalogs(&self) -> (&Lake, &Catalogs) {
        (&self.lake, &self.catalogs)
    }

    /// Sets the one listener told of every run that ends (later calls are ignored).
    pub fn set_listener(&self, listener: Arc<dyn RunListener>) {
        let _ = self.listener.set(listener);
    }

    /// Sets the schedules told of every run that ends (later calls are ignored).
    pub fn set_schedules(&self, schedules: Arc<super::schedules::Schedules>) {
        let _ = self.schedules.set(schedules);
    }

    /// The schedules, once started.
    pub fn schedules(&self) -> Option<&Arc<super::schedules::Schedules>> {
        self.schedules.get()
    }

    /// Whether [`JobManager::shut_down`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Whether the run store answers a read now.
    pub fn store_readable(&self) -> bool {
        self.store.list().is_ok()
    }

    /// Stops for a process shutdown: refuses submissions from now on, stops every run that
    /// has not begun committing (its record stays unfinished in the run store, so the next
    /// start resubmits it, as after a crash), waits up to `grace` for the runs that are
    /// committing to finish, and cancels the cluster's jobs. Returns how many runs were
    /// left for the next start.
    pub async fn shut_down(&self, grace: Duration) -> usize {
        self.shutting_down.store(true, Ordering::SeqCst);
        let left = {
            let mut live = lock(&self.live);
            let mut left = 0;
            for l in live.values_mut() {
                if l.committing || l.stopping {
                    continue;
                }
                // Under the lock a run takes to start committing (as in `cancel`): the
                // run stops at its next await, before it commits anything, and no longer
                // changes its record.
                l.stopping = true;
                if let Some(task) = l.task.take() {
                    task.abort();
                }
                left += 1;
            }
            left
        };
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let committing = lock(&self.live).values().filter(|l| l.committing).count();
            if committing == 0 {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::error!(
                    committing,
                    "runs still committing after the shutdown grace period; the next start \
                     finds their commits done or resubmits them"
                );
                break;
            }
            tracing::info!(committing, "waiting for committing runs to finish");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let running: Vec<String> = self
            .engine
            .scheduler()
            .running_job_ids()
            .await
            .into_iter()
            .collect();
        if !running.is_empty() {
            self.engine.scheduler().cancel_jobs(&running).await;
        }
        left
    }

    /// The roots as a message names them.
    fn roots_text(&self) -> String {
        if self.staging_roots.describe() == self.lake_root.describe() {
            format!(
                "{}; the scheduler's config lists no staging_roots, so only the lake may be read",
                self.lake_root.describe()
            )
        } else {
            self.staging_roots.describe()
        }
    }

    /// Refuses sources outside the staging roots and targets outside the lake, before
    /// anything is read.
    fn check_locations(&self, spec: &pb::JobSpec) -> Result<(), sluice_job::Diagnostic> {
        let refuse = |path: String, message: String| sluice_job::Diagnostic::new(path, message);
        for source in &spec.sources {
            let url = sluice_planner::source_url(&spec.staging, &source.path);
            if !self.staging_roots.contains(&url, false) {
                return Err(refuse(
                    format!("sources.{}.path", source.name),
                    format!(
                        "'{}'{} is outside the allowed staging roots ({})",
                        source.path,
                        shown_url(&source.path, &url),
                        self.roots_text()
                    ),
                ));
            }
        }
        if let Some(target) = &spec.target
            && !target.location.is_empty()
        {
            let location = if target.location.ends_with('/') {
                target.location.clone()
            } else {
                format!("{}/", target.location)
            };
            if !location.contains("://") || !self.lake_root.contains(&location, false) {
                return Err(refuse(
                    "target.location".into(),
                    format!(
                        "'{}' is outside the lake ({}): tables are written only into the lake",
                        target.location,
                        self.lake_root.describe()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Picks up runs that were in flight when the scheduler stopped: each is queued again
    /// (outputs are run-scoped, so a retry is safe). Returns how many.
    pub fn recover(self: &Arc<Self>) -> Result<usize, JobError> {
        let mut n = 0;
        for mut run in self.store.list()? {
            let state = RunState::try_from(run.state).unwrap_or(RunState::Unspecified);
            if state.is_final() {
                continue;
            }
            if state == RunState::Stopping {
                run.state = RunState::Stopped as i32;
                run.ended_at_ms = now_ms();
                run.error_message =
                    "stopped: the scheduler restarted while the run was stopping".into();
                self.store.put(&run)?;
                continue;
            }
            run.state = RunState::Waiting as i32;
            run.attempt += 1;
            run.error_message = "resubmitted after a scheduler restart".into();
            self.store.put(&run)?;
            self.start(run);
            n += 1;
        }
        Ok(n)
    }

    /// Why the source file at `url` may not be read, if it may not.
    fn file_outside(&self, source: &pb::Source, url: &str) -> Option<String> {
        (!self.staging_roots.contains(url, true)).then(|| {
            format!(
                "'{}' reads {url}, which resolves outside the allowed staging roots ({})",
                source.path,
                self.roots_text()
            )
        })
    }

    /// Checks a queued run's sources again just before it runs (the run plans them anew):
    /// files may have changed since the submit, and recovered runs were accepted by an
    /// earlier scheduler.
    async fn recheck(&self, spec: &pb::JobSpec) -> Result<(), RunError> {
        self.check_locations(spec)
            .map_err(|d| RunError::Plan(sluice_planner::PlanError::Invalid(d)))?;
        let check = |source: &pb::Source, url: &str| self.file_outside(source, url);
        sluice_planner::check_source_files(self.engine.ctx(), spec, &check)
            .await
            .map_err(RunError::Plan)
    }

    /// Checks `spec` against its data (files, schemas, columns) and queues a run.
    pub async fn submit(self: &Arc<Self>, spec: pb::JobSpec) -> Result<pb::JobRun, JobError> {
        self.submit_triggered(spec, String::new()).await
    }

    /// [`JobManager::submit`] for a trigger: the run records what started it.
    pub async fn submit_triggered(
        self: &Arc<Self>,
        spec: pb::JobSpec,
        triggered_by: String,
    ) -> Result<pb::JobRun, JobError> {
        if self.is_shutting_down() {
            return Err(JobError::ShuttingDown);
        }
        self.check_locations(&spec)
            .map_err(|d| JobError::InvalidSpec(d.to_string()))?;
        // Every listed file is checked before it is read: a glob or a symbolic link inside
        // a root can lead elsewhere.
        let check = |source: &pb::Source, url: &str| self.file_outside(source, url);
        sluice_planner::plan_job_checked(self.engine.ctx(), &spec, &check)
            .await
            .map_err(|e| match e {
                sluice_planner::PlanError::Invalid(d) => JobError::InvalidSpec(d.to_string()),
                other => JobError::Unavailable(other),
            })?;
        let target = spec.target.clone().unwrap_or_default();
        let table = target.table.clone().unwrap_or_default();
        let run = pb::JobRun {
            id: sluice_lake::new_run_id(),
            job_name: spec.name.clone(),
            state: RunState::Waiting as i32,
            submitted_at_ms: now_ms(),
            attempt: 1,
            table: format!("{}.{}", table.database, table.table),
            spec: Some(spec),
            triggered_by,
            ..Default::default()
        };
        // Checked again after the (slow) planning: a run is either refused or left in the
        // store for the next start.
        if self.is_shutting_down() {
            return Err(JobError::ShuttingDown);
        }
        self.store.put(&run)?;
        self.start(run.clone());
        Ok(run)
    }

    /// How many runs may run at once.
    pub fn max_concurrent_runs(&self) -> usize {
        self.max_concurrent_runs
    }

    /// Sets each waiting run's place in the queue (1: next), by submission time.
    fn number_queue(&self, runs: &mut [pb::JobRun]) {
        let mut waiting: Vec<(i64, String)> = lock(&self.live)
            .values()
            .map(|l| l.sender.borrow().clone())
            .filter(|r| r.state == RunState::Waiting as i32)
            .map(|r| (r.submitted_at_ms, r.id))
            .collect();
        waiting.sort();
        for r in runs.iter_mut() {
            r.queue_position = if r.state == RunState::Waiting as i32 {
                waiting
                    .iter()
                    .position(|(_, id)| id == &r.id)
                    .map_or(0, |p| p as u32 + 1)
            } else {
                0
            };
        }
    }

    /// The turn lock of `key` (a job's name or a table's).
    fn turn(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(lock(&self.turns).entry(key).or_default())
    }

    /// The run's current record.
    pub fn get(&self, id: &str) -> Result<pb::JobRun, JobError> {
        let mut run = self.get_unnumbered(id)?;
        self.number_queue(std::slice::from_mut(&mut run));
        Ok(run)
    }

    fn get_unnumbered(&self, id: &str) -> Result<pb::JobRun, JobError> {
        if let Some(live) = lock(&self.live).get(id) {
            return Ok(live.sender.borrow().clone());
        }
        self.store
            .list()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| JobError::NotFound(id.to_string()))
    }

    /// Every run, newest first.
    pub fn list(&self) -> Result<Vec<pb::JobRun>, JobError> {
        let mut runs = self.store.list()?;
        let live = lock(&self.live);
        for r in &mut runs {
            if let Some(l) = live.get(&r.id) {
                *r = l.sender.borrow().clone();
            }
        }
        drop(live);
        self.number_queue(&mut runs);
        Ok(runs)
    }

    /// A receiver of the run's records as they change (ended runs: just the last one).
    pub fn watch(&self, id: &str) -> Result<watch::Receiver<pb::JobRun>, JobError> {
        if let Some(live) = lock(&self.live).get(id) {
            return Ok(live.sender.subscribe());
        }
        let run = self.get(id)?;
        let (_tx, rx) = watch::channel(run);
        Ok(rx)
    }

    /// Stops a run: it ends STOPPED and publishes nothing.
    pub async fn cancel(self: &Arc<Self>, id: &str) -> Result<pb::JobRun, JobError> {
        let (task, mut run) = {
            let mut live = lock(&self.live);
            let Some(l) = live.get_mut(id) else {
                // `get` takes the lock again.
                drop(live);
                let run = self.get(id)?;
                let state = RunState::try_from(run.state).unwrap_or(RunState::Unspecified);
                return Err(JobError::NotCancellable(
                    id.into(),
                    state.as_str_name().into(),
                ));
            };
            if l.committing {
                return Err(JobError::NotCancellable(
                    id.into(),
                    "committing its output".into(),
                ));
            }
            if l.stopping {
                return Err(JobError::NotCancellable(id.into(), "stopping".into()));
            }
            let mut run = l.sender.borrow().clone();
            run.state = RunState::Stopping as i32;
            l.sender.send_replace(run.clone());
            l.stopping = true;
            // Aborted under the lock the run takes to start committing: either the commit
            // began first (and the cancel was refused above) or the run stops at its next
            // await, before committing anything.
            let task = l.task.take();
            if let Some(task) = &task {
                task.abort();
            }
            (task, run)
        };
        if failpoint("slow_cancel") {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        self.store.put(&run)?;
        // The version may be deleted only once the run's task has really stopped.
        if let Some(task) = &task {
            for _ in 0..200 {
                if task.is_finished() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Stop the cluster's work for this run: its own Ballista jobs, not other runs'.
        self.engine.scheduler().cancel_run(&run.id).await;
        if let Some(spec) = &run.spec
            && let Some(target) = &spec.target
            && let Ok(table) = self.lake.table(target)
        {
            if self.published(target, &run.id).await {
                tracing::error!(run = %run.id, "the cancelled run's version is in the catalog; keeping it");
            } else {
                if let Err(e) = table.delete_version(&run.id).await {
                    tracing::warn!(run = %run.id, error = %e, "cannot delete the cancelled run's version");
                }
            }
        }
        run.state = RunState::Stopped as i32;
        run.ended_at_ms = now_ms();
        run.error_message = "stopped by request".into();
        self.finish(run.clone())?;
        Ok(run)
    }

    /// Whether the catalog's entry for `target` is the version of run `id`.
    async fn published(&self, target: &pb::Target, id: &str) -> bool {
        let Some(table) = &target.table else {
            return false;
        };
        let Ok(catalog) = sluice_engine::target_catalog(&self.catalogs, target).await else {
            return false;
        };
        matches!(
            catalog.get_table(&table.database, &table.table).await,
            Ok(Some(entry)) if entry.run_id.as_deref() == Some(id)
        )
    }

    fn finish(&self, run: pb::JobRun) -> Result<(), JobError> {
        self.store.put(&run)?;
        if let Some(listener) = self.listener.get() {
            listener.run_ended(&run);
        }
        if let Some(schedules) = self.schedules.get() {
            schedules.run_ended(&run);
        }
        if let Some(l) = lock(&self.live).remove(&run.id) {
            l.sender.send_replace(run);
        }
        Ok(())
    }

    fn start(self: &Arc<Self>, run: pb::JobRun) {
        let (sender, _) = watch::channel(run.clone());
        let id = run.id.clone();
        {
            let mut live = lock(&self.live);
            live.insert(
                id.clone(),
                Live {
                    sender,
                    task: None,
                    committing: false,
                    stopping: false,
                },
            );
        }
        let me = self.clone();
        let handle = tokio::spawn(async move { Box::pin(me.execute(run)).await });
        if let Some(l) = lock(&self.live).get_mut(&id) {
            if l.stopping {
                // Cancelled before the task existed.
                handle.abort();
            } else {
                l.task = Some(handle.abort_handle());
            }
        }
    }

    /// Changes the live record of `id`; `None` once the run is gone or being cancelled.
    fn update(&self, id: &str, f: impl FnOnce(&mut pb::JobRun)) -> Option<pb::JobRun> {
        let live = lock(&self.live);
        let l = live.get(id).filter(|l| !l.stopping)?;
        let mut run = l.sender.borrow().clone();
        f(&mut run);
        l.sender.send_replace(run.clone());
        Some(run)
    }

    async fn execute(self: Arc<Self>, run: pb::JobRun) {
        // Its job's turn, then its table's, then a slot: each queue is first come, first
        // served, and a run waiting for its job or table holds no slot.
        let spec_ref = run.spec.as_ref();
        let job_turn = self.turn(format!("job:{}", run.job_name));
        let table_turn = self.turn(format!(
            "table:{}",
            spec_ref
                .and_then(|s| s.target.as_ref())
                .and_then(|t| self.lake.table(t).ok())
                .map_or_else(|| run.table.clone(), |t| t.root_url())
        ));
        let _job_turn = job_turn.lock().await;
        let _table_turn = table_turn.lock().await;
        let Ok(_slot) = self.slots.acquire().await else {
            return;
        };
        let id = run.id.clone();
        let spec = run.spec.clone().unwrap_or_default();
        let max_attempts = spec.max_retries + 1;
        let mut attempt = run.attempt.max(1);
        let mut lost_executor_retries = 0;
        loop {
            // A retried attempt has not begun committing (an earlier one may have).
            if let Some(l) = lock(&self.live).get_mut(&id) {
                l.committing = false;
            }
            if let Some(r) = self.update(&id, |r| {
                r.state = RunState::Starting as i32;
                r.attempt = attempt;
                r.started_at_ms = now_ms();
            }) && let Err(e) = self.store.put(&r)
            {
                tracing::warn!(run = %id, error = %e, "cannot record the run's start");
            }
            if let Some(target) = &spec.target {
                // The scheduler stopped after this run's commit had moved the catalog: the
                // run is done, and its version is the table readers use now.
                if self.published(target, &id).await {
                    if let Some(mut record) = self.update(&id, |_| {}) {
                        record.state = RunState::Succeeded as i32;
                        record.ended_at_ms = now_ms();
                        record.error_message =
                            "committed before the scheduler restarted".to_string();
                        if let Err(e) = self.finish(record) {
                            tracing::error!(run = %id, error = %e, "cannot record the run's end");
                        }
                    }
                    return;
                }
                // A retried or recovered attempt starts from an empty version folder.
                if let Ok(table) = self.lake.table(target)
                    && let Err(e) = table.delete_version(&id).await
                {
                    tracing::warn!(run = %id, error = %e, "cannot clear the run's earlier attempt");
                }
            }
            let me = self.clone();
            let progress_id = id.clone();
            let progress = move |event: RunEvent| {
                if matches!(event, RunEvent::Committing) {
                    // Under the lock cancel takes: once this is set, cancels are refused;
                    // if a cancel came first, the task is already aborted and stops at its
                    // next await, before it commits anything.
                    let updated = {
                        let mut live = lock(&me.live);
                        let Some(l) = live.get_mut(&progress_id).filter(|l| !l.stopping) else {
                            return;
                        };
                        l.committing = true;
                        let mut run = l.sender.borrow().clone();
                        run.state = RunState::Running as i32;
                        l.sender.send_replace(run.clone());
                        run
                    };
                    if let Err(e) = me.store.put(&updated) {
                        tracing::warn!(run = %progress_id, error = %e, "cannot record the run's commit");
                    }
                    return;
                }
                me.update(&progress_id, |r| match &event {
                    RunEvent::Planning => {}
                    RunEvent::Running(p) => {
                        r.state = RunState::Running as i32;
                        r.progress = Some(pb::RunProgress {
                            stages: p.stages as u32,
                            stages_done: p.stages_done as u32,
                            tasks: p.tasks as u32,
                            tasks_done: p.tasks_done as u32,
                            stage_list: p
                                .stage_list
                                .iter()
                                .map(|s| pb::StageProgress {
                                    stage_id: s.stage_id as u32,
                                    state: s.state.as_str().to_string(),
                                    tasks: s.tasks as u32,
                                    tasks_done: s.tasks_done as u32,
                                })
                                .collect(),
                        });
                    }
                    RunEvent::Committing => {}
                });
            };
            let span = tracing::info_span!("job_run", run_id = %id, job = %spec.name, attempt);
            let result = match self.recheck(&spec).await {
                Ok(()) => {
                    run_job(
                        &self.engine,
                        &self.lake,
                        &self.catalogs,
                        &spec,
                        &id,
                        &progress,
                    )
                    .instrument(span)
                    .await
                }
                Err(e) => Err(e),
            };
            let Some(mut record) = self.update(&id, |_| {}) else {
                return;
            };
            record.ended_at_ms = now_ms();
            match result {
                Ok(report) => {
                    record.state = RunState::Succeeded as i32;
                    record.error_message.clear();
                    record.rows_written = report.rows_written;
                    record.stages = report.stages as u32;
                    record.tasks = report.tasks as u32;
                    record.first_task_ms = report.first_task.map(|d| d.as_millis() as u64);
                    record.files_written = report.files_written as u64;
                    record.bytes_written = report.bytes_written;
                    record.table_location = report.table.location.clone();
                    record.note = report.note.clone().unwrap_or_default();
                    record.quality = report.quality.clone();
                    record.sources = report
                        .sources
                        .iter()
                        .map(|s| pb::SourceMetrics {
                            name: s.name.clone(),
                            files: s.files as u64,
                            bytes: s.bytes,
                            rows: s.rows,
                        })
                        .collect();
                }
                Err(e) => {
                    // Losing an executor is the cluster's failure, not the job's: always
                    // worth a few more attempts, on top of the job's own retries.
                    let lost = matches!(e, RunError::ExecutorLost(_));
                    if lost {
                        lost_executor_retries += 1;
                    }
                    let retryable = matches!(
                        e,
                        RunError::Execution(_)
                            | RunError::EmptyFile(_)
                            | RunError::Failpoint(_)
                            | RunError::Lake(_)
                    );
                    if (lost && lost_executor_retries <= MAX_EXECUTOR_LOSS_RETRIES)
                        || (retryable && attempt < max_attempts)
                    {
                        tracing::warn!(run = %id, attempt, error = %e, "run failed; retrying");
                        attempt += 1;
                        continue;
                    }
                    record.state = if matches!(e, RunError::Timeout(_)) {
                        RunState::Timeout as i32
                    } else {
                        RunState::Failed as i32
                    };
                    record.error_message = e.to_string();
                    if let RunError::Quality(results) = &e {
                        record.quality = results.clone();
                        record.error_message =
                            format!("{e}:\n{}", sluice_engine::quality::failure_summary(results));
                    }
                }
            }
            if let Err(e) = self.finish(record) {
                tracing::error!(run = %id, error = %e, "cannot record the run's end");
            }
            return;
        }
    }
}

/// `url` in parentheses when it says more than `path` (a relative path or `..`).
fn shown_url(path: &str, url: &str) -> String {
    if url == path || url.trim_start_matches("file://") == path {
        String::new()
    } else {
        format!(" ({url})")
    }
}
