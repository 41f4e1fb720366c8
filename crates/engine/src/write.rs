//! Writing a run's output: every output partition's task writes its own Parquet files into
//! the run's staging folder and reports them; the run is cancelled when it outlives its
//! timeout. On the embedded engine the plan runs in this process
//! ([`crate::in_process`]); otherwise as Ballista jobs on the cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::DataFrame;
use sluice_lake::DataFile;
use sluice_planner::PlannedJob;
use sluice_proto as pb;
use sluice_writer::{ParallelParquetWrite, SluiceQueryPlanner, WriteOptions};

use crate::cluster::Engine;
use crate::in_process::{Execution, InProcessRun, InProcessShape, Progress};
use crate::introspection::executed_scan_rows;
use crate::progress::{JobProgress, ProgressState, RunEvent, StageProgress, StageSpans};

/// Why a write failed.
pub(crate) enum WriteFailure {
    /// Execution failed.
    DataFusion(datafusion::error::DataFusionError),
    /// The run outlived the job's timeout (seconds).
    Timeout(u64),
}

/// What a write produced: rows, and the files the successful tasks reported.
pub(crate) struct Written {
    /// Rows written.
    pub(crate) rows: u64,
    /// Files written, relative to the staging folder.
    pub(crate) files: Vec<DataFile>,
    /// For a run in this process: its shape and the rows of every file scan (with the
    /// scan's files). `None`: Ballista's scheduler knows them.
    pub(crate) in_process: Option<InProcessRun>,
}

/// Writes `planned`'s output into `staging_url`, reporting progress and stage spans as it
/// goes; cancels the run's Ballista jobs when it outlives `timeout_seconds` (0: never).
pub(crate) async fn write_version(
    engine: &Engine,
    planned: &PlannedJob,
    staging_url: &str,
    timeout_seconds: u64,
    run_id: &str,
    progress: &(dyn Fn(RunEvent) + Send + Sync),
) -> Result<Written, WriteFailure> {
    let compression = match planned.compression {
        pb::Compression::Snappy => "snappy",
        pb::Compression::Zstd => "zstd(3)",
        pb::Compression::Gzip => "gzip(6)",
        pb::Compression::None => "uncompressed",
    }
    .to_string();
    // Every output partition's task writes its own files into the run's staging folder
    // (one per `key=value` folder it meets; see sluice-writer). A task that closes its
    // files after the run has ended (its staging folder cleared, live marker first)
    // deletes them.
    let options = WriteOptions {
        folder_url: staging_url.to_string(),
        compression,
        partition_by: planned.partition_by.clone(),
        live_marker: Some(sluice_lake::LIVE_MARKER.to_string()),
    };
    let plan = ParallelParquetWrite::new(planned.output.logical_plan().clone(), options)
        .map_err(WriteFailure::DataFusion)?
        .into_plan();
    let deadline =
        (timeout_seconds > 0).then(|| Instant::now() + Duration::from_secs(timeout_seconds));
    if engine.is_embedded() {
        return Box::pin(write_in_process(
            engine,
            plan,
            staging_url,
            deadline,
            timeout_seconds,
            progress,
        ))
        .await;
    }
    let df = DataFrame::new(run_session_state(engine, run_id), plan);
    let prefix = staging_url.to_string();
    let write = async move {
        let batches = df.collect().await?;
        written(&batches, &prefix, None)
    };
    tokio::pin!(write);
    let mut stages = StageSpans::default();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            result = &mut write => {
                // The jobs have left the running jobs: their stages as they ended.
                let ours = engine.scheduler().run_jobs(run_id).await;
                stages.update(engine.scheduler().finished_stages(&ours).await);
                return result.map_err(WriteFailure::DataFusion);
            }
            _ = tick.tick() => {
                if deadline.is_some_and(|d| Instant::now() > d) {
                    engine.scheduler().cancel_run(run_id).await;
                    return Err(WriteFailure::Timeout(timeout_seconds));
                }
                let snapshot = engine.scheduler().running_stages_of_run(run_id).await;
                progress(RunEvent::Running(JobProgress::from_stages(&snapshot)));
                stages.update(snapshot);
            }
        }
    }
}

/// Runs the write `plan` in this process (the embedded engine), one task per output
/// partition, reporting progress as partitions finish; stops it when it outlives
/// `deadline`.
async fn write_in_process(
    engine: &Engine,
    plan: LogicalPlan,
    staging_url: &str,
    deadline: Option<Instant>,
    timeout_seconds: u64,
    progress: &(dyn Fn(RunEvent) + Send + Sync),
) -> Result<Written, WriteFailure> {
    let state = SessionStateBuilder::new_from_existing(engine.ctx().state())
        .with_query_planner(Arc::new(SluiceQueryPlanner))
        .build();
    let physical = state
        .create_physical_plan(&plan)
        .await
        .map_err(WriteFailure::DataFusion)?;
    let mut execution =
        Execution::start(&physical, state.task_ctx()).map_err(WriteFailure::DataFusion)?;
    let report = |done: usize, of: usize| {
        let state = if done == of {
            ProgressState::Done
        } else {
            ProgressState::Running
        };
        RunEvent::Running(JobProgress {
            stages: 1,
            stages_done: usize::from(done == of),
            tasks: of,
            tasks_done: done,
            stage_list: vec![StageProgress {
                stage_id: 1,
                state,
                tasks: of,
                tasks_done: done,
            }],
        })
    };
    progress(report(0, execution.partitions()));
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            next = execution.next() => match next.map_err(WriteFailure::DataFusion)? {
                Progress::Finished { done, of } => progress(report(done, of)),
                Progress::Done(batches) => {
                    let shape = InProcessShape::of(physical.as_ref());
                    let scans = executed_scan_rows(physical.as_ref());
                    tracing::debug!(
                        "executed plan:\n{}",
                        datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(physical.as_ref()).indent(true)
                    );
                    return written(&batches, staging_url, Some(InProcessRun { shape, scans }))
                        .map_err(WriteFailure::DataFusion);
                }
            },
            _ = tick.tick() => {
                if deadline.is_some_and(|d| Instant::now() > d) {
                    // Dropping the execution stops its tasks.
                    return Err(WriteFailure::Timeout(timeout_seconds));
                }
                progress(report(execution.done(), execution.partitions()));
            }
        }
    }
}

/// What the write tasks' `batches` report, as a [`Written`].
fn written(
    batches: &[datafusion::arrow::record_batch::RecordBatch],
    staging_url: &str,
    in_process: Option<InProcessRun>,
) -> datafusion::error::Result<Written> {
    let files = reported_files(batches, staging_url)?;
    let rows = files.iter().map(|(_, rows)| rows).sum();
    Ok(Written {
        rows,
        files: files.into_iter().map(|(f, _)| f).collect(),
        in_process,
    })
}

/// The engine's session state with its Ballista jobs named after the run
/// ([`crate::introspection::run_job_name`]).
fn run_session_state(
    engine: &Engine,
    run_id: &str,
) -> datafusion::execution::session_state::SessionState {
    use ballista_core::extension::SessionConfigExt;
    let state = engine.ctx().state();
    let config = state
        .config()
        .clone()
        .with_ballista_job_name(&crate::introspection::run_job_name(run_id));
    datafusion::execution::session_state::SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build()
}

/// The (file, rows) rows the write tasks returned, with paths relative to the staging
/// folder. A batch of another shape is an error, never skipped: skipping it would drop
/// files from the version.
fn reported_files(
    batches: &[datafusion::arrow::record_batch::RecordBatch],
    staging_url: &str,
) -> datafusion::error::Result<Vec<(DataFile, u64)>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, UInt64Type};
    let mut out = Vec::new();
    for b in batches {
        if b.num_columns() != 3 {
            return Err(datafusion::error::DataFusionError::Internal(format!(
                "the write tasks returned {} columns instead of (file, rows, bytes)",
                b.num_columns()
            )));
        }
        let files = cast(b.column(0), &DataType::Utf8)?;
        let rows = cast(b.column(1), &DataType::UInt64)?;
        let bytes = cast(b.column(2), &DataType::UInt64)?;
        let (files, rows, bytes) = (
            files.as_string::<i32>(),
            rows.as_primitive::<UInt64Type>(),
            bytes.as_primitive::<UInt64Type>(),
        );
        for i in 0..b.num_rows() {
            let path = files.value(i);
            let rel = path.strip_prefix(staging_url).ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(format!(
                    "a write task reported {path}, outside the run's folder {staging_url}"
                ))
            })?;
            out.push((
                DataFile {
                    path: rel.to_string(),
                    size: bytes.value(i),
                    rows: Some(rows.value(i)),
                },
                rows.value(i),
            ));
        }
    }
    out.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, Int64Array, LargeStringArray, StringViewArray, UInt64Array,
    };
    use datafusion::arrow::record_batch::RecordBatch;

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).expect("batch")
    }

    /// Ballista may hand the write tasks' rows back with other string and integer types
    /// than the writer produced (string views, large strings, signed counts). Such batches
    /// were skipped, and the commit then sealed a version without their files.
    #[test]
    fn reported_files_are_read_whatever_their_column_types() {
        let staging = "file:///lake/db/t/_attempts/run-1/";
        let views = batch(vec![
            (
                "file",
                Arc::new(StringViewArray::from(vec![format!(
                    "{staging}part-0.parquet"
                )])),
            ),
            ("rows", Arc::new(Int64Array::from(vec![3]))),
            ("bytes", Arc::new(Int64Array::from(vec![100]))),
        ]);
        let large = batch(vec![
            (
                "file",
                Arc::new(LargeStringArray::from(vec![format!(
                    "{staging}k=a/part-1.parquet"
                )])),
            ),
            ("rows", Arc::new(UInt64Array::from(vec![4]))),
            ("bytes", Arc::new(UInt64Array::from(vec![200]))),
        ]);
        let files = reported_files(&[views, large], staging).expect("read");
        let paths: Vec<(&str, u64, Option<u64>)> = files
            .iter()
            .map(|(f, _)| (f.path.as_str(), f.size, f.rows))
            .collect();
        assert_eq!(
            paths,
            [
                ("k=a/part-1.parquet", 200, Some(4)),
                ("part-0.parquet", 100, Some(3))
            ]
        );
    }

    #[test]
    fn reports_of_another_shape_or_place_are_errors_not_skipped() {
        let staging = "file:///lake/db/t/_attempts/run-1/";
        let short = batch(vec![(
            "file",
            Arc::new(StringViewArray::from(vec!["x"])) as ArrayRef,
        )]);
        assert!(reported_files(&[short], staging).is_err());
        let elsewhere = batch(vec![
            (
                "file",
                Arc::new(StringViewArray::from(vec!["file:///etc/part-0.parquet"])) as ArrayRef,
            ),
            ("rows", Arc::new(UInt64Array::from(vec![1]))),
            ("bytes", Arc::new(UInt64Array::from(vec![1]))),
        ]);
        let e = reported_files(&[elsewhere], staging).expect_err("outside the run's folder");
        assert!(e.to_string().contains("outside the run's folder"), "{e}");
    }
}
