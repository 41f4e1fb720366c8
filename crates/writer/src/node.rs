//! The logical write node and its physical planning.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{DFSchema, DFSchemaRef, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::{
    Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use serde::{Deserialize, Serialize};

use crate::exec::ParallelParquetWriteExec;

/// Where and how to write.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Serialize, Deserialize)]
pub struct WriteOptions {
    /// Folder URL the files go to, ending in `/`.
    pub folder_url: String,
    /// Parquet compression: `snappy`, `zstd(3)`, `gzip(6)`, `uncompressed`.
    pub compression: String,
    /// Hive partition columns: each task writes the rows of every `key=value` folder it
    /// meets into a file of its own there, without the partition columns.
    #[serde(default)]
    pub partition_by: Vec<String>,
}

/// The rows a write returns: one per written file.
pub fn written_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("file", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
    ]))
}

/// Writes its input as Parquet, one file per partition, in parallel.
#[derive(Debug, Clone)]
pub struct ParallelParquetWrite {
    /// The rows to write.
    pub input: LogicalPlan,
    /// Where and how.
    pub options: WriteOptions,
    schema: DFSchemaRef,
}

impl ParallelParquetWrite {
    /// A write of `input`.
    pub fn new(input: LogicalPlan, options: WriteOptions) -> Result<Self> {
        let schema = Arc::new(DFSchema::try_from(written_schema().as_ref().clone())?);
        Ok(Self {
            input,
            options,
            schema,
        })
    }

    /// As a logical plan.
    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(datafusion::logical_expr::Extension {
            node: Arc::new(self),
        })
    }
}

impl PartialEq for ParallelParquetWrite {
    fn eq(&self, other: &Self) -> bool {
        self.input == other.input && self.options == other.options
    }
}

impl Eq for ParallelParquetWrite {}

impl Hash for ParallelParquetWrite {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.options.hash(state);
    }
}

impl PartialOrd for ParallelParquetWrite {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.options.partial_cmp(&other.options)
    }
}

impl UserDefinedLogicalNodeCore for ParallelParquetWrite {
    fn name(&self) -> &str {
        "SluiceParallelParquetWrite"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SluiceParallelParquetWrite: folder={}, compression={}",
            self.options.folder_url, self.options.compression
        )
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let input = inputs.pop().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("a write needs one input".into())
        })?;
        Self::new(input, self.options.clone())
    }
}

struct WritePlanner;

#[async_trait]
impl ExtensionPlanner for WritePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn datafusion::catalog::Session,
        _ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(write) = node.as_any().downcast_ref::<ParallelParquetWrite>() else {
            return Ok(None);
        };
        let input = physical_inputs.first().cloned().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("a write needs one input".into())
        })?;
        Ok(Some(Arc::new(ParallelParquetWriteExec::new(
            input,
            write.options.clone(),
        ))))
    }
}

/// DataFusion's planner, plus the parallel write. Used by the scheduler's sessions.
#[derive(Debug, Default)]
pub struct SluiceQueryPlanner;

#[async_trait]
impl QueryPlanner for SluiceQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(WritePlanner)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}
