//! Running a job's plan in this process, without Ballista, when the cluster is this process
//! alone (the embedded engine).
//!
//! Ballista would cut the plan into stages at every broadcast and shuffle, write each
//! stage's output to shuffle files and hand the tasks back to this same process. DataFusion
//! runs the whole plan at once instead: a broadcast join's build side is read once and
//! shared by every partition in memory, and nothing goes through files.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use futures::TryStreamExt;
use tracing::Instrument;

/// How an in-process run was shaped: its partitions and how its hash joins ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InProcessShape {
    /// Partitions the plan ran as (one task each).
    pub partitions: usize,
    /// Hash joins whose build side was read once and shared by every partition (what
    /// Ballista calls a broadcast join).
    pub broadcast_joins: usize,
    /// Hash joins that repartitioned both sides by the join keys.
    pub partitioned_joins: usize,
}

impl InProcessShape {
    /// The shape of `plan`.
    pub(crate) fn of(plan: &dyn ExecutionPlan) -> Self {
        let mut shape = Self {
            partitions: plan.properties().partitioning.partition_count(),
            ..Self::default()
        };
        count_joins(plan, &mut shape);
        shape
    }
}

fn count_joins(plan: &dyn ExecutionPlan, shape: &mut InProcessShape) {
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        match join.partition_mode() {
            PartitionMode::CollectLeft => shape.broadcast_joins += 1,
            PartitionMode::Partitioned | PartitionMode::Auto => shape.partitioned_joins += 1,
        }
    }
    for child in plan.children() {
        count_joins(child.as_ref(), shape);
    }
}

/// What a run in this process reports once its plan has run.
pub(crate) struct InProcessRun {
    /// How the plan ran.
    pub(crate) shape: InProcessShape,
    /// Rows of every file scan, with the scan's files.
    pub(crate) scans: Vec<(Vec<String>, u64)>,
}

/// What [`Execution::next`] saw.
pub(crate) enum Progress {
    /// A partition finished (how many have, of how many).
    Finished {
        /// Partitions finished so far.
        done: usize,
        /// Partitions in all.
        of: usize,
    },
    /// Every partition finished; their batches.
    Done(Vec<RecordBatch>),
}

/// A plan whose partitions run as tasks on this process's runtime. Dropping it stops them.
pub(crate) struct Execution {
    tasks: tokio::task::JoinSet<Result<(usize, Vec<RecordBatch>, Duration)>>,
    partitions: usize,
    done: usize,
    batches: Vec<RecordBatch>,
    span: tracing::Span,
}

impl Execution {
    /// Starts every partition of `plan`: each one is a task, as DataFusion's `collect`
    /// runs them, so that operators shared between partitions (a broadcast join's build
    /// side, a repartition) make progress together.
    pub(crate) fn start(plan: &Arc<dyn ExecutionPlan>, context: Arc<TaskContext>) -> Result<Self> {
        let partitions = plan.properties().partitioning.partition_count();
        let span = tracing::info_span!("stage", job = "in-process", stage = 1, partitions);
        let mut tasks = tokio::task::JoinSet::new();
        for partition in 0..partitions {
            let stream = plan.execute(partition, context.clone())?;
            tasks.spawn(
                async move {
                    let started = Instant::now();
                    let batches: Vec<RecordBatch> = stream.try_collect().await?;
                    Ok((partition, batches, started.elapsed()))
                }
                .instrument(span.clone()),
            );
        }
        Ok(Self {
            tasks,
            partitions,
            done: 0,
            batches: Vec::new(),
            span,
        })
    }

    /// Waits for the next partition to finish. The first failure is returned and stops the
    /// other partitions (a panic in one is an error too).
    pub(crate) async fn next(&mut self) -> Result<Progress> {
        match self.tasks.join_next().await {
            None => Ok(Progress::Done(std::mem::take(&mut self.batches))),
            Some(Ok(Ok((partition, batches, took)))) => {
                self.done += 1;
                self.batches.extend(batches);
                tracing::info!(
                    parent: &self.span,
                    task = partition,
                    duration_ms = took.as_millis() as u64,
                    "task finished"
                );
                Ok(Progress::Finished {
                    done: self.done,
                    of: self.partitions,
                })
            }
            Some(Ok(Err(e))) => {
                self.tasks.abort_all();
                Err(e)
            }
            Some(Err(e)) => {
                self.tasks.abort_all();
                Err(DataFusionError::External(Box::new(e)))
            }
        }
    }

    /// Partitions in all.
    pub(crate) fn partitions(&self) -> usize {
        self.partitions
    }

    /// Partitions finished.
    pub(crate) fn done(&self) -> usize {
        self.done
    }
}
