//! What Sluice reads from, and asks of, Ballista's scheduler: its jobs, their stages and
//! tasks, the registered executors, cancellation.
//!
//! This is the one module that reaches into Ballista's task manager, executor manager and
//! job state; everything else asks a [`SchedulerView`].

use std::collections::{HashMap, HashSet};

use ballista_core::serde::protobuf::task_status;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::scheduler_server::SchedulerServer;
use ballista_scheduler::state::execution_stage::ExecutionStage;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

use crate::error::EngineError;
use crate::session::{is_query_job, query_job_name};

/// Prefix of the Ballista job names of a job run: `sluice-run-<run id>`, so that runs
/// running at the same time each see, follow and cancel only their own jobs.
pub const RUN_JOB_PREFIX: &str = "sluice-run-";

/// The Ballista job name of the job run `run_id`.
pub fn run_job_name(run_id: &str) -> String {
    format!("{RUN_JOB_PREFIX}{run_id}")
}

/// Ballista's scheduler, with Sluice's plan types.
pub(crate) type Scheduler = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

/// Where a stage is, as Ballista's scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    /// Its inputs are not ready yet.
    Unresolved,
    /// Ready to run, no task started.
    Resolved,
    /// Tasks are running.
    Running,
    /// Every task finished.
    Successful,
    /// It failed.
    Failed,
}

impl StageState {
    /// Whether the stage has started (a span or a progress bar belongs to it).
    pub fn started(self) -> bool {
        !matches!(self, Self::Unresolved | Self::Resolved)
    }

    /// Lower-case name, as in logs and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unresolved => "unresolved",
            Self::Resolved => "resolved",
            Self::Running => "running",
            Self::Successful => "successful",
            Self::Failed => "failed",
        }
    }
}

/// One stage of a running job, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSnapshot {
    /// The Ballista job.
    pub job_id: String,
    /// Stage id within the job.
    pub stage_id: usize,
    /// Where the stage is.
    pub state: StageState,
    /// Tasks (input partitions) of the stage.
    pub partitions: usize,
    /// Input partitions finished.
    pub partitions_done: usize,
    /// Durations in milliseconds of the tasks finished so far, by task id.
    pub finished_tasks: Vec<(usize, u64)>,
}

/// Rows that a finished job's file scans produced, per scanned file URL prefix.
#[derive(Debug, Clone, Default)]
pub struct ScanRows {
    /// (first file URL of a scan, rows the scan produced).
    pub scans: Vec<(Vec<String>, u64)>,
    /// Stages the jobs ran.
    pub stages: usize,
    /// Tasks of those stages (a task may run several of a stage's partitions).
    pub tasks: usize,
    /// Milliseconds from a job's submission to Ballista to its first task running (the
    /// largest over the jobs).
    pub first_task_ms: Option<u64>,
}

/// The engine's view of Ballista's scheduler: jobs, stages, executors, cancellation.
#[derive(Clone)]
pub struct SchedulerView {
    scheduler: Scheduler,
    cluster: BallistaCluster,
}

impl SchedulerView {
    /// A view of `scheduler`, whose job state lives in `cluster`.
    pub(crate) fn new(scheduler: Scheduler, cluster: BallistaCluster) -> Self {
        Self { scheduler, cluster }
    }

    /// Asks the scheduler to cancel these Ballista jobs.
    pub async fn cancel_jobs(&self, job_ids: &[String]) {
        for id in job_ids {
            if let Err(e) = self.scheduler.cancel_job(id.as_str().into()).await {
                tracing::warn!(job = %id, error = %e, "cannot cancel the Ballista job");
            }
        }
    }

    /// Cancels the Ballista jobs of the SQL query `query_id` (see
    /// [`Engine::query_context`](crate::Engine::query_context)).
    pub async fn cancel_query(&self, query_id: &str) {
        let name = query_job_name(query_id);
        let jobs: Vec<String> = self.running_jobs(|n| n == name).await.into_iter().collect();
        self.cancel_jobs(&jobs).await;
    }

    /// Cancels the Ballista jobs of the job run `run_id` (see [`run_job_name`]) and waits up
    /// to about 5 s for them to leave the running jobs.
    pub async fn cancel_run(&self, run_id: &str) {
        let name = run_job_name(run_id);
        let jobs: Vec<String> = self.running_jobs(|n| n == name).await.into_iter().collect();
        self.cancel_jobs(&jobs).await;
        for _ in 0..50 {
            if self.running_jobs(|n| n == name).await.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Ids of every Ballista job (running or ended) of the job run `run_id`.
    pub async fn run_jobs(&self, run_id: &str) -> Vec<String> {
        let name = run_job_name(run_id);
        match self.scheduler.state.task_manager.get_all_jobs().await {
            Ok(jobs) => jobs
                .into_iter()
                .filter(|j| j.job_name == name)
                .map(|j| j.job_id.to_string())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the scheduler's jobs");
                Vec::new()
            }
        }
    }

    /// The stages of the running Ballista jobs of the job run `run_id`.
    pub async fn running_stages_of_run(&self, run_id: &str) -> Vec<StageSnapshot> {
        let name = run_job_name(run_id);
        let mut out = Vec::new();
        let running = self.scheduler.state.task_manager.get_running_job_cache();
        for (job_id, info) in running.iter() {
            let graph = info.execution_graph.read().await;
            if graph.job_name() == name {
                out.extend(stage_snapshots(job_id.as_ref(), graph.stages()));
            }
        }
        out
    }

    /// Ids of every job of job runs (not of queries) the scheduler knows.
    pub async fn job_ids(&self) -> Result<HashSet<String>, EngineError> {
        let jobs = self
            .scheduler
            .state
            .task_manager
            .get_all_jobs()
            .await
            .map_err(EngineError::State)?;
        Ok(jobs
            .into_iter()
            .filter(|j| !is_query_job(&j.job_name))
            .map(|j| j.job_id.to_string())
            .collect())
    }

    /// Ids of the jobs of job runs the scheduler knows now but not in `before` (the jobs a
    /// run started since `before` was read with [`SchedulerView::job_ids`]).
    pub async fn jobs_since(&self, before: &HashSet<String>) -> Vec<String> {
        match self.job_ids().await {
            Ok(now) => now.difference(before).cloned().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the scheduler's jobs");
                Vec::new()
            }
        }
    }

    /// Ids of the executors registered now.
    pub async fn executor_ids(&self) -> HashSet<String> {
        match self
            .scheduler
            .state
            .executor_manager
            .get_executors_state()
            .await
        {
            Ok(executors) => executors.into_iter().map(|(m, ..)| m.id).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the registered executors");
                HashSet::new()
            }
        }
    }

    /// Ids of the Ballista jobs of job runs (not of queries) running now.
    pub async fn running_job_ids(&self) -> HashSet<String> {
        self.running_jobs(|name| !is_query_job(name)).await
    }

    /// Ids of the running Ballista jobs whose name passes `keep`.
    async fn running_jobs(&self, keep: impl Fn(&str) -> bool) -> HashSet<String> {
        let running = self.scheduler.state.task_manager.get_running_job_cache();
        let mut out = HashSet::new();
        for (id, info) in running.iter() {
            if keep(info.execution_graph.read().await.job_name()) {
                out.insert(id.to_string());
            }
        }
        out
    }

    /// The stages of the jobs of job runs running now.
    pub async fn running_stages(&self) -> Vec<StageSnapshot> {
        let mut out = Vec::new();
        let running = self.scheduler.state.task_manager.get_running_job_cache();
        for (job_id, info) in running.iter() {
            let graph = info.execution_graph.read().await;
            if is_query_job(graph.job_name()) {
                continue;
            }
            out.extend(stage_snapshots(job_id.as_ref(), graph.stages()));
        }
        out
    }

    /// The stages of the finished jobs `job_ids`, as they ended (a job leaves the running
    /// jobs when it ends, so [`SchedulerView::running_stages`] no longer shows its last
    /// tasks).
    pub async fn finished_stages(&self, job_ids: &[String]) -> Vec<StageSnapshot> {
        let mut out = Vec::new();
        let job_state = self.cluster.job_state();
        for id in job_ids {
            match job_state.get_execution_graph(&id.as_str().into()).await {
                Ok(Some(graph)) => out.extend(stage_snapshots(id, graph.stages())),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "cannot read a finished job's stages")
                }
            }
        }
        out
    }

    /// Rows produced by every file scan of the finished jobs `job_ids`.
    pub async fn scan_rows(&self, job_ids: &[String]) -> ScanRows {
        let mut out = ScanRows::default();
        let job_state = self.cluster.job_state();
        for id in job_ids {
            let Ok(Some(graph)) = job_state.get_execution_graph(&id.as_str().into()).await else {
                continue;
            };
            let first_task = graph
                .stages()
                .values()
                .filter_map(|stage| stage.task_infos())
                .flatten()
                .map(|t| t.start_exec_time)
                .min();
            if let Some(first) = first_task {
                let wait = u64::try_from(first)
                    .unwrap_or(u64::MAX)
                    .saturating_sub(graph.start_time());
                out.first_task_ms = Some(out.first_task_ms.map_or(wait, |w| w.max(wait)));
            }
            for stage in graph.stages().values() {
                if let ExecutionStage::Successful(s) = stage {
                    out.stages += 1;
                    // Ballista 55 may run several partitions of a stage as one task.
                    let tasks: HashSet<usize> = s.task_infos.iter().map(|t| t.task_id).collect();
                    out.tasks += tasks.len();
                    collect_scans(s.plan.as_ref(), &s.stage_metrics, &mut out);
                }
            }
        }
        out
    }
}

/// One [`StageSnapshot`] per stage of job `job_id`. A task that ran several of a stage's
/// partitions is listed once.
fn stage_snapshots(job_id: &str, stages: &HashMap<usize, ExecutionStage>) -> Vec<StageSnapshot> {
    let mut out = Vec::with_capacity(stages.len());
    for (stage_id, stage) in stages {
        let (state, partitions, tasks) = match stage {
            ExecutionStage::UnResolved(_) => (StageState::Unresolved, 0, None),
            ExecutionStage::Resolved(s) => (StageState::Resolved, s.partitions, None),
            ExecutionStage::Running(s) => (StageState::Running, s.partitions, Some(&s.task_infos)),
            ExecutionStage::Successful(s) => {
                (StageState::Successful, s.partitions, Some(&s.task_infos))
            }
            ExecutionStage::Failed(s) => (StageState::Failed, s.partitions, None),
        };
        let succeeded: Vec<_> = tasks
            .map(|t| {
                t.iter()
                    .filter(|t| matches!(t.task_status, task_status::Status::Successful(_)))
                    .collect()
            })
            .unwrap_or_default();
        let mut finished_tasks: Vec<(usize, u64)> = Vec::new();
        for t in &succeeded {
            if !finished_tasks.iter().any(|(id, _)| *id == t.task_id) {
                let ms = t.end_exec_time.saturating_sub(t.start_exec_time) as u64;
                finished_tasks.push((t.task_id, ms));
            }
        }
        let partitions_done = if state == StageState::Successful {
            partitions
        } else {
            let done: usize = succeeded
                .iter()
                .map(|t| t.global_input_partition_ids.len().max(1))
                .sum();
            done.min(partitions)
        };
        out.push(StageSnapshot {
            job_id: job_id.to_string(),
            stage_id: *stage_id,
            state,
            partitions,
            partitions_done,
            finished_tasks,
        });
    }
    out
}

/// Pairs the stage's file scans (in plan pre-order) with the metric sets that carry scan
/// metrics (Ballista collects metrics in pre-order too), and sums their output rows.
fn collect_scans(plan: &dyn ExecutionPlan, metrics: &[MetricsSet], out: &mut ScanRows) {
    let mut scans = Vec::new();
    file_scans(plan, &mut scans);
    let scan_metrics: Vec<&MetricsSet> = metrics
        .iter()
        .filter(|m| m.iter().any(|x| x.value().name() == "time_elapsed_opening"))
        .collect();
    if scans.len() != scan_metrics.len() {
        return;
    }
    for ((files, _), m) in scans.into_iter().zip(scan_metrics) {
        let rows = m.output_rows().unwrap_or(0) as u64;
        out.scans.push((files, rows));
    }
}

/// Rows produced by every file scan of `plan`, a plan this process has run (its operators
/// hold their metrics), with the scan's files.
pub(crate) fn executed_scan_rows(plan: &dyn ExecutionPlan) -> Vec<(Vec<String>, u64)> {
    let mut scans = Vec::new();
    file_scans(plan, &mut scans);
    scans
        .into_iter()
        .map(|(files, node)| {
            let rows = node.metrics().and_then(|m| m.output_rows()).unwrap_or(0);
            (files, rows as u64)
        })
        .collect()
}

/// Every file scan in `plan`, in pre-order: its files and the scan itself.
fn file_scans<'a>(
    plan: &'a dyn ExecutionPlan,
    out: &mut Vec<(Vec<String>, &'a dyn ExecutionPlan)>,
) {
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
        && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
    {
        let files = config
            .file_groups
            .iter()
            .flat_map(|g| g.files().iter())
            .map(|f| f.object_meta.location.to_string())
            .collect();
        out.push((files, plan));
    }
    for child in plan.children() {
        file_scans(child.as_ref(), out);
    }
}
