//! Stopping a task's work from outside: every operator of its stage plan reads its input
//! through a [`StoppableExec`] that ends the stream with an error once the task's
//! [`CancellationToken`] is cancelled.
//!
//! Dropping the future of a Ballista task is not enough: its shuffle writer runs the plan in
//! tokio tasks of its own, which would run on (holding memory and CPU) after the slot was
//! given back. An error inside the plan ends those tasks too, at the next batch of any
//! operator, and the task then ends as failed the ordinary way, releasing its slot only
//! when its work has stopped.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{FutureExt, Stream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The error a stopped task's operators end with.
pub const STOPPED: &str = "task stopped: the scheduler no longer runs its job";

/// A [`StoppableExec`] has its input's properties, so a parent keeps its own.
const SAME_PROPERTIES: ReplaceChildrenOptions =
    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep);

/// `plan` (a stage, rooted at its shuffle writer) with the output of every operator below
/// the root read through a [`StoppableExec`] watching `stop`.
///
/// The root is left as it is: Ballista's execution engine recognises the stage by its
/// writer. The wrappers report no metrics of their own, so the stage's metrics still line
/// up with the scheduler's copy of the plan.
pub fn stoppable(
    plan: Arc<dyn ExecutionPlan>,
    stop: &CancellationToken,
) -> Result<Arc<dyn ExecutionPlan>> {
    let children: Vec<Arc<dyn ExecutionPlan>> = plan
        .children()
        .into_iter()
        .map(|child| {
            let input = stoppable(child.clone(), stop)?;
            Ok(Arc::new(StoppableExec {
                input,
                stop: stop.clone(),
            }) as Arc<dyn ExecutionPlan>)
        })
        .collect::<Result<_>>()?;
    if children.is_empty() {
        return Ok(plan);
    }
    plan.replace_children(children, SAME_PROPERTIES)
}

/// Passes its input through unchanged until its task is stopped, then ends with an error.
#[derive(Debug)]
pub struct StoppableExec {
    input: Arc<dyn ExecutionPlan>,
    stop: CancellationToken,
}

impl DisplayAs for StoppableExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StoppableExec")
    }
}

impl ExecutionPlan for StoppableExec {
    fn name(&self) -> &'static str {
        "StoppableExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().ok_or_else(|| {
            DataFusionError::Internal("StoppableExec needs exactly one input".into())
        })?;
        Ok(Arc::new(Self {
            input,
            stop: self.stop.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if self.stop.is_cancelled() {
            return Err(DataFusionError::Execution(STOPPED.into()));
        }
        let input = self.input.execute(partition, context)?;
        Ok(Box::pin(StoppableStream {
            schema: input.schema(),
            input: Some(input),
            stopped: Box::pin(self.stop.clone().cancelled_owned()),
        }))
    }
}

/// The stream of a [`StoppableExec`]: its input's batches until the token is cancelled.
struct StoppableStream {
    schema: SchemaRef,
    /// `None` once the stream has ended with the stop error.
    input: Option<SendableRecordBatchStream>,
    stopped: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Stream for StoppableStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Polled first so that a cancel also wakes a stream waiting on its input.
        if self.input.is_some() && self.stopped.poll_unpin(cx).is_ready() {
            // Dropping the input stops the operators below now.
            self.input = None;
            return Poll::Ready(Some(Err(DataFusionError::Execution(STOPPED.into()))));
        }
        match self.input.as_mut() {
            Some(input) => input.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

impl RecordBatchStream for StoppableStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
