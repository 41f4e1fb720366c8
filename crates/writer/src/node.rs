//! The logical write node.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::common::{DFSchema, DFSchemaRef, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};

use crate::options::{WriteOptions, written_schema};

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
