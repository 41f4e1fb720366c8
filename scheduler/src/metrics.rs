//! The scheduler's Prometheus metrics.
//!
//! Names follow the OpenTelemetry spans the scheduler already opens (`job_run` for a run,
//! queries for SQL): `sluice_job_runs{state}` (runs in the run store by state, read at
//! scrape time), `sluice_job_run_duration_seconds{state}` (ended runs), the stages, tasks,
//! bytes read and written and rows written of succeeded runs
//! (`sluice_job_run_{stages,tasks,bytes_read,bytes_written,rows_written}_total`),
//! `sluice_queries_total{path}` and `sluice_query_duration_seconds{path}` (SQL by
//! `flight_sql` or `dashboard`), and `sluice_executors_alive` (registered now, read at
//! scrape time). The registry is served by [`crate::process`]'s HTTP port.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts};
use prometheus::{IntGauge, Registry};
use sluice_proto as pb;
use sluice_proto::RunState;

/// A metric could not be created or registered (a programming error: duplicate names).
#[derive(Debug, thiserror::Error)]
#[error("cannot register the scheduler's metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// The counters of one scheduler process (clone freely: every field is shared).
#[derive(Clone)]
pub struct SchedulerMetrics {
    registry: Registry,
    runs: IntGaugeVec,
    run_duration: HistogramVec,
    stages: IntCounter,
    tasks: IntCounter,
    bytes_read: IntCounter,
    bytes_written: IntCounter,
    rows_written: IntCounter,
    queries: IntCounterVec,
    query_duration: HistogramVec,
    executors_alive: IntGauge,
}

impl SchedulerMetrics {
    /// New metrics in a registry of their own.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let runs = IntGaugeVec::new(
            Opts::new("sluice_job_runs", "Job runs in the run store, by state."),
            &["state"],
        )?;
        let run_duration = HistogramVec::new(
            HistogramOpts::new(
                "sluice_job_run_duration_seconds",
                "Duration of ended job runs (start to end), by final state.",
            )
            .buckets(vec![
                1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
            ]),
            &["state"],
        )?;
        let counter = |name: &str, help: &str| IntCounter::with_opts(Opts::new(name, help));
        let stages = counter(
            "sluice_job_run_stages_total",
            "Stages of succeeded job runs.",
        )?;
        let tasks = counter("sluice_job_run_tasks_total", "Tasks of succeeded job runs.")?;
        let bytes_read = counter(
            "sluice_job_run_bytes_read_total",
            "Bytes of source files read by succeeded job runs.",
        )?;
        let bytes_written = counter(
            "sluice_job_run_bytes_written_total",
            "Bytes of Parquet written by succeeded job runs.",
        )?;
        let rows_written = counter(
            "sluice_job_run_rows_written_total",
            "Rows written by succeeded job runs.",
        )?;
        let queries = IntCounterVec::new(
            Opts::new(
                "sluice_queries_total",
                "SQL queries started, by path (flight_sql, dashboard).",
            ),
            &["path"],
        )?;
        let query_duration = HistogramVec::new(
            HistogramOpts::new(
                "sluice_query_duration_seconds",
                "Duration of SQL queries that ran to an answer, by path.",
            ),
            &["path"],
        )?;
        let executors_alive = IntGauge::with_opts(Opts::new(
            "sluice_executors_alive",
            "Executors registered with the scheduler now.",
        ))?;
        for metric in [
            Box::new(runs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(run_duration.clone()),
            Box::new(stages.clone()),
            Box::new(tasks.clone()),
            Box::new(bytes_read.clone()),
            Box::new(bytes_written.clone()),
            Box::new(rows_written.clone()),
            Box::new(queries.clone()),
            Box::new(query_duration.clone()),
            Box::new(executors_alive.clone()),
        ] {
            registry.register(metric)?;
        }
        Ok(Self {
            registry,
            runs,
            run_duration,
            stages,
            tasks,
            bytes_read,
            bytes_written,
            rows_written,
            queries,
            query_duration,
            executors_alive,
        })
    }

    /// The registry to serve.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Sets the runs-by-state gauge from every run of the store (every state is present,
    /// zero when no run is in it).
    pub fn set_runs(&self, runs: &[pb::JobRun]) {
        self.runs.reset();
        for state in ALL_STATES {
            self.runs.with_label_values(&[state_name(state)]).set(0);
        }
        for run in runs {
            let state = RunState::try_from(run.state).unwrap_or(RunState::Unspecified);
            self.runs.with_label_values(&[state_name(state)]).inc();
        }
    }

    /// Sets the executors-alive gauge.
    pub fn set_executors_alive(&self, n: usize) {
        self.executors_alive
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts a run that ended in `run`'s (final) state.
    pub fn run_ended(&self, run: &pb::JobRun) {
        let state = RunState::try_from(run.state).unwrap_or(RunState::Unspecified);
        if run.started_at_ms > 0 && run.ended_at_ms >= run.started_at_ms {
            let seconds = (run.ended_at_ms - run.started_at_ms) as f64 / 1000.0;
            self.run_duration
                .with_label_values(&[state_name(state)])
                .observe(seconds);
        }
        if state == RunState::Succeeded {
            self.stages.inc_by(u64::from(run.stages));
            self.tasks.inc_by(u64::from(run.tasks));
            self.bytes_read
                .inc_by(run.sources.iter().map(|s| s.bytes).sum());
            self.bytes_written.inc_by(run.bytes_written);
            self.rows_written.inc_by(run.rows_written);
        }
    }

    /// Counts one query on `path` (`flight_sql`, `dashboard`).
    pub fn query_started(&self, path: &str) {
        self.queries.with_label_values(&[path]).inc();
    }

    /// Records the duration of a query on `path` that ran to an answer.
    pub fn query_finished(&self, path: &str, elapsed: std::time::Duration) {
        self.query_duration
            .with_label_values(&[path])
            .observe(elapsed.as_secs_f64());
    }
}

/// Every run state a run can be in, for gauges that show zeros.
const ALL_STATES: [RunState; 8] = [
    RunState::Waiting,
    RunState::Starting,
    RunState::Running,
    RunState::Stopping,
    RunState::Stopped,
    RunState::Succeeded,
    RunState::Failed,
    RunState::Timeout,
];

/// The state's name as the CLI and Glue show it (`SUCCEEDED`).
fn state_name(state: RunState) -> &'static str {
    let name = state.as_str_name();
    name.strip_prefix("RUN_STATE_").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: RunState) -> pb::JobRun {
        pb::JobRun {
            state: state as i32,
            started_at_ms: 1_000,
            ended_at_ms: 3_500,
            stages: 3,
            tasks: 20,
            rows_written: 7,
            bytes_written: 900,
            sources: vec![pb::SourceMetrics {
                bytes: 100,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Every run state shows (zero when empty), and the gauge is recomputed, not added to.
    #[test]
    fn runs_by_state_are_set_from_the_store() {
        let metrics = SchedulerMetrics::new().expect("metrics");
        let runs = [run(RunState::Succeeded), run(RunState::Succeeded)];
        metrics.set_runs(&runs);
        metrics.set_runs(&runs[..1]);
        let gauge = |state| metrics.runs.with_label_values(&[state]).get();
        assert_eq!(gauge("SUCCEEDED"), 1);
        assert_eq!(gauge("FAILED"), 0);
        assert_eq!(gauge("TIMEOUT"), 0);
    }

    /// Only succeeded runs add their stages, tasks and bytes; every ended run its duration.
    #[test]
    fn ended_runs_are_counted() {
        let metrics = SchedulerMetrics::new().expect("metrics");
        metrics.run_ended(&run(RunState::Succeeded));
        metrics.run_ended(&run(RunState::Failed));
        assert_eq!(metrics.stages.get(), 3);
        assert_eq!(metrics.tasks.get(), 20);
        assert_eq!(metrics.bytes_read.get(), 100);
        assert_eq!(metrics.bytes_written.get(), 900);
        assert_eq!(metrics.rows_written.get(), 7);
        let durations = |state| {
            metrics
                .run_duration
                .with_label_values(&[state])
                .get_sample_sum()
        };
        assert_eq!(durations("SUCCEEDED"), 2.5);
        assert_eq!(durations("FAILED"), 2.5);
    }
}
