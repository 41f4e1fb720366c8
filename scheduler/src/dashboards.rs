//! The dashboards as the scheduler mounts them: queries through the same sessions as Flight
//! SQL (timed in the metrics), the runs page from the job manager, and a run listener that
//! counts ended runs and drops the cached results over a table a run has just committed.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::scalar::ScalarValue;
use sluice_dashboard::{
    DashboardState, QueryBackend, QueryError, QueryResult, RunSummary, RunsBackend, TableVersion,
};
use sluice_proto as pb;
use sluice_proto::RunState;

use crate::metrics::SchedulerMetrics;
use crate::service::{JobManager, RunListener};

/// A [`QueryBackend`] that times every statement it runs (`path="dashboard"`).
pub struct MeteredBackend {
    /// The backend that runs the statements.
    pub inner: Arc<dyn QueryBackend>,
    /// Where they are counted.
    pub metrics: SchedulerMetrics,
}

#[async_trait::async_trait]
impl QueryBackend for MeteredBackend {
    async fn plan(&self, sql: &str) -> Result<SchemaRef, QueryError> {
        self.inner.plan(sql).await
    }

    async fn run(&self, sql: &str, params: Vec<ScalarValue>) -> Result<QueryResult, QueryError> {
        self.metrics.query_started("dashboard");
        let started = Instant::now();
        let result = self.inner.run(sql, params).await;
        if result.is_ok() {
            self.metrics.query_finished("dashboard", started.elapsed());
        }
        result
    }

    async fn table_versions(&self, sql: &str) -> Result<Vec<TableVersion>, QueryError> {
        self.inner.table_versions(sql).await
    }
}

/// The runs page's runs, from the job manager.
pub struct ManagerRuns(pub Arc<JobManager>);

#[async_trait::async_trait]
impl RunsBackend for ManagerRuns {
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunSummary>, QueryError> {
        let runs = self
            .0
            .list()
            .map_err(|e| QueryError::Unavailable(e.to_string()))?;
        Ok(runs.iter().take(limit).map(summary).collect())
    }
}

/// A run as the runs page shows it.
fn summary(run: &pb::JobRun) -> RunSummary {
    let state = RunState::try_from(run.state).unwrap_or(RunState::Unspecified);
    let name = state.as_str_name();
    let time = |ms: i64| {
        (ms > 0)
            .then(|| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339()))
            .flatten()
    };
    let progress = (state == RunState::Running)
        .then_some(run.progress.as_ref())
        .flatten()
        .map(|p| {
            format!(
                "stage {}/{}, {}/{} tasks",
                p.stages_done, p.stages, p.tasks_done, p.tasks
            )
        });
    RunSummary {
        id: run.id.clone(),
        job: run.job_name.clone(),
        state: name.strip_prefix("RUN_STATE_").unwrap_or(name).to_string(),
        started_at: time(run.started_at_ms),
        finished_at: time(run.ended_at_ms),
        progress,
        error: (!run.error_message.is_empty()
            && matches!(
                state,
                RunState::Failed | RunState::Timeout | RunState::Stopped
            ))
        .then(|| run.error_message.clone()),
    }
}

/// Counts ended runs and invalidates the dashboards' cached results over the table a
/// succeeded run committed.
pub struct EndedRuns {
    /// The scheduler's metrics.
    pub metrics: SchedulerMetrics,
    /// The dashboards, when mounted.
    pub dashboards: Option<DashboardState>,
}

impl RunListener for EndedRuns {
    fn run_ended(&self, run: &pb::JobRun) {
        self.metrics.run_ended(run);
        if run.state == RunState::Succeeded as i32
            && let Some(dashboards) = &self.dashboards
            && let Some((database, table)) = run.table.split_once('.')
        {
            let dropped = dashboards.cache().invalidate_table(database, table);
            tracing::debug!(run = %run.id, table = %run.table, dropped, "dashboard cache invalidated");
        }
    }
}
