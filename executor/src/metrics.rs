//! The executor's Prometheus metrics, counted by an execution-engine wrapper around every
//! task it runs.
//!
//! Metrics live in a `prometheus` [`Registry`] (the scheduler reuses the same crate and the
//! same serving code, [`crate::serve`]). Names follow Prometheus conventions:
//! `sluice_executor_tasks_running`, `sluice_executor_tasks_finished_total`,
//! `sluice_executor_tasks_failed_total`, `sluice_executor_tasks_stopped_total`,
//! `sluice_executor_shuffle_bytes_written_total`,
//! `sluice_executor_shuffle_rows_written_total`, `sluice_executor_spill_files_total`,
//! `sluice_executor_spill_bytes_total` and `sluice_executor_info`.

use std::sync::Arc;

use ballista_core::serde::protobuf::ShuffleWritePartition;
use ballista_executor::execution_engine::{ExecutionEngine, QueryStageExecutor};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use prometheus::{IntCounter, IntGauge, Opts, Registry};
use tokio_util::sync::CancellationToken;

use crate::job_watch::RunningJobs;

/// The counters of one executor process.
#[derive(Clone)]
pub struct ExecutorMetrics {
    registry: Registry,
    running: IntGauge,
    finished: IntCounter,
    failed: IntCounter,
    stopped: IntCounter,
    bytes_written: IntCounter,
    rows_written: IntCounter,
}

/// A metric could not be created or registered (a programming error: duplicate names).
#[derive(Debug, thiserror::Error)]
#[error("cannot register the executor's metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl ExecutorMetrics {
    /// New metrics in a registry of their own, with `sluice_executor_info` set from the
    /// executor's id, its task slots and Sluice's version.
    pub fn new(executor_id: &str, vcores: usize) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let running = IntGauge::with_opts(Opts::new(
            "sluice_executor_tasks_running",
            "Tasks this executor is running now.",
        ))?;
        let finished = IntCounter::with_opts(Opts::new(
            "sluice_executor_tasks_finished_total",
            "Tasks this executor finished successfully.",
        ))?;
        let failed = IntCounter::with_opts(Opts::new(
            "sluice_executor_tasks_failed_total",
            "Tasks this executor ran that failed.",
        ))?;
        let stopped = IntCounter::with_opts(Opts::new(
            "sluice_executor_tasks_stopped_total",
            "Tasks stopped because the scheduler no longer ran their job (cancelled, failed, \
             or forgotten by a restart).",
        ))?;
        let bytes_written = IntCounter::with_opts(Opts::new(
            "sluice_executor_shuffle_bytes_written_total",
            "Bytes of shuffle output written by finished tasks.",
        ))?;
        let rows_written = IntCounter::with_opts(Opts::new(
            "sluice_executor_shuffle_rows_written_total",
            "Rows of shuffle output written by finished tasks.",
        ))?;
        let info = IntGauge::with_opts(
            Opts::new(
                "sluice_executor_info",
                "The executor: id, task slots, version.",
            )
            .const_label("executor_id", executor_id)
            .const_label("vcores", vcores.to_string())
            .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        info.set(1);
        for metric in [
            Box::new(running.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(finished.clone()),
            Box::new(failed.clone()),
            Box::new(stopped.clone()),
            Box::new(bytes_written.clone()),
            Box::new(rows_written.clone()),
            Box::new(info),
        ] {
            registry.register(metric)?;
        }
        Ok(Self {
            registry,
            running,
            finished,
            failed,
            stopped,
            bytes_written,
            rows_written,
        })
    }

    /// Adds `sluice_executor_spill_files_total` and `sluice_executor_spill_bytes_total`:
    /// the spill files the executor's tasks created and the bytes they wrote to them.
    pub fn register_spills(
        &self,
        spills: Arc<crate::memory::SpillCounter>,
    ) -> Result<(), MetricsError> {
        let files = IntCounter::with_opts(Opts::new(
            "sluice_executor_spill_files_total",
            "Spill files created by tasks whose operators reached the memory limit.",
        ))?;
        let bytes = IntCounter::with_opts(Opts::new(
            "sluice_executor_spill_bytes_total",
            "Bytes tasks wrote to spill files.",
        ))?;
        self.registry.register(Box::new(SpillCollector {
            spills,
            files,
            bytes,
        }))?;
        Ok(())
    }

    /// The registry to serve (see [`crate::serve::HealthServer`]).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Tasks running now.
    pub fn tasks_running(&self) -> i64 {
        self.running.get()
    }

    /// Tasks finished successfully so far.
    pub fn tasks_finished(&self) -> u64 {
        self.finished.get()
    }
}

/// An execution engine that counts the tasks `inner` runs into [`ExecutorMetrics`], makes
/// each stoppable ([`crate::stop`]) and registers it in [`RunningJobs`] while it runs.
pub struct MeteredEngine {
    inner: Arc<dyn ExecutionEngine>,
    metrics: ExecutorMetrics,
    jobs: Arc<RunningJobs>,
}

impl MeteredEngine {
    /// Wraps `inner`; its tasks are registered in `jobs`.
    pub fn new(
        inner: Arc<dyn ExecutionEngine>,
        metrics: ExecutorMetrics,
        jobs: Arc<RunningJobs>,
    ) -> Self {
        Self {
            inner,
            metrics,
            jobs,
        }
    }
}

impl ExecutionEngine for MeteredEngine {
    fn create_query_stage_exec(
        &self,
        job_id: ballista_core::JobId,
        stage_id: usize,
        task_id: usize,
        partitions: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> datafusion::error::Result<Arc<dyn QueryStageExecutor>> {
        let job = job_id.to_string();
        let stop = CancellationToken::new();
        let plan = crate::stop::stoppable(plan, &stop)?;
        let inner = self.inner.create_query_stage_exec(
            job_id, stage_id, task_id, partitions, plan, work_dir, config,
        )?;
        Ok(Arc::new(MeteredStage {
            inner,
            metrics: self.metrics.clone(),
            jobs: self.jobs.clone(),
            job_id: job,
            stop,
        }))
    }
}

/// One task's stage executor, counted and stoppable.
struct MeteredStage {
    inner: Arc<dyn QueryStageExecutor>,
    metrics: ExecutorMetrics,
    jobs: Arc<RunningJobs>,
    job_id: String,
    /// Stops the task's operators (see [`crate::stop`]).
    stop: CancellationToken,
}

impl std::fmt::Debug for MeteredStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}

impl std::fmt::Display for MeteredStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

/// Decrements the running gauge when the task ends, however it ends (also when its future
/// is dropped by a cancel).
struct RunningGuard(IntGauge);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for MeteredStage {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<Vec<ShuffleWritePartition>> {
        self.metrics.running.inc();
        let _running = RunningGuard(self.metrics.running.clone());
        // Registered until the task's work has ended: a stopped task gives its slot back
        // only then.
        let _registered = self.jobs.register(&self.job_id, self.stop.clone());
        let result = self.inner.execute_query_stage(task_id, context).await;
        if result.is_err() && self.stop.is_cancelled() {
            self.metrics.stopped.inc();
            return Err(DataFusionError::Execution(format!(
                "{} ({})",
                crate::stop::STOPPED,
                self.job_id
            )));
        }
        match &result {
            Ok(partitions) => {
                self.metrics.finished.inc();
                for p in partitions {
                    self.metrics.bytes_written.inc_by(p.num_bytes);
                    self.metrics.rows_written.inc_by(p.num_rows);
                }
            }
            Err(_) => self.metrics.failed.inc(),
        }
        result
    }

    fn collect_plan_metrics(&self) -> Vec<datafusion::physical_plan::metrics::MetricsSet> {
        self.inner.collect_plan_metrics()
    }

    fn collect_runtime_stats_reports(
        &self,
    ) -> Vec<ballista_core::serde::protobuf::RuntimeStatsReport> {
        self.inner.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(
        &self,
    ) -> datafusion::error::Result<Vec<ballista_core::serde::protobuf::WindowStateReport>> {
        self.inner.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<ballista_core::serde::protobuf::TaskColumnStats> {
        self.inner.collect_column_stats()
    }
}

/// Reports a [`crate::memory::SpillCounter`] as two Prometheus counters, brought up to date
/// at each scrape.
struct SpillCollector {
    spills: Arc<crate::memory::SpillCounter>,
    files: IntCounter,
    bytes: IntCounter,
}

impl prometheus::core::Collector for SpillCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        let mut descs = self.files.desc();
        descs.extend(self.bytes.desc());
        descs
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        for (counter, now) in [
            (&self.files, self.spills.files()),
            (&self.bytes, self.spills.bytes()),
        ] {
            let seen = counter.get();
            if now > seen {
                counter.inc_by(now - seen);
            }
        }
        let mut families = self.files.collect();
        families.extend(self.bytes.collect());
        families
    }
}
