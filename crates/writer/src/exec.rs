//! The physical write: each partition's task writes one Parquet file.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{StringArray, UInt64Array};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use parquet::arrow::AsyncArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::node::{WriteOptions, written_schema};

/// Writes partition `i` of its input to `<folder>/part-<i>-p<pid>-<uuid>.parquet`.
#[derive(Debug)]
pub struct ParallelParquetWriteExec {
    input: Arc<dyn ExecutionPlan>,
    options: WriteOptions,
    properties: Arc<PlanProperties>,
}

impl ParallelParquetWriteExec {
    /// A write of every partition of `input`.
    pub fn new(input: Arc<dyn ExecutionPlan>, options: WriteOptions) -> Self {
        let partitions = input.output_partitioning().partition_count().max(1);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(written_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            input,
            options,
            properties,
        }
    }

    /// Where and how it writes.
    pub fn options(&self) -> &WriteOptions {
        &self.options
    }
}

impl DisplayAs for ParallelParquetWriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "ParallelParquetWriteExec: folder={}, compression={}",
            self.options.folder_url, self.options.compression
        )
    }
}

impl ExecutionPlan for ParallelParquetWriteExec {
    fn name(&self) -> &'static str {
        "ParallelParquetWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> Result<datafusion::common::tree_node::TreeNodeRecursion>,
    ) -> Result<datafusion::common::tree_node::TreeNodeRecursion> {
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children
            .pop()
            .ok_or_else(|| DataFusionError::Internal("a write needs one input".into()))?;
        Ok(Arc::new(Self::new(input, self.options.clone())))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context.clone())?;
        let options = self.options.clone();
        let future = write_partition(input, partition, options, context);
        let stream = futures::stream::once(future);
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            written_schema(),
            stream,
        )))
    }
}

fn writer_properties(compression: &str, config: &ConfigOptions) -> Result<WriterProperties> {
    let mut options = config.execution.parquet.clone();
    options.compression = Some(compression.to_string());
    // The Arrow writer embeds the schema itself; this only skips DataFusion's check for it.
    options.skip_arrow_metadata = true;
    let table = datafusion::common::config::TableParquetOptions {
        global: options,
        ..Default::default()
    };
    let builder = parquet::file::properties::WriterPropertiesBuilder::try_from(&table)?;
    Ok(builder.build())
}

async fn write_partition(
    mut input: SendableRecordBatchStream,
    partition: usize,
    options: WriteOptions,
    context: Arc<TaskContext>,
) -> Result<RecordBatch> {
    let folder = ListingTableUrl::parse(&options.folder_url)?;
    let store = context.runtime_env().object_store(&folder)?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!(
        "part-{partition:05}-p{}-{}.parquet",
        std::process::id(),
        &id[..8]
    );
    let path = folder.prefix().clone().join(name.as_str());
    let props = writer_properties(&options.compression, context.session_config().options())?;
    let schema = input.schema();
    let mut writer: Option<AsyncArrowWriter<BufWriter>> = None;
    let mut rows = 0u64;
    while let Some(batch) = input.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        rows += batch.num_rows() as u64;
        let w = match writer.as_mut() {
            Some(w) => w,
            None => writer.insert(AsyncArrowWriter::try_new(
                BufWriter::new(store.clone(), path.clone()),
                schema.clone(),
                Some(props.clone()),
            )?),
        };
        w.write(&batch).await?;
    }
    let (files, counts, sizes) = match writer {
        // An empty partition writes no file.
        None => (vec![], vec![], vec![]),
        Some(w) => {
            w.close().await?;
            let size = store
                .head(&path)
                .await
                .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?
                .size;
            let url = format!("{}{}", folder.object_store().as_str(), path);
            (vec![url], vec![rows], vec![size])
        }
    };
    Ok(RecordBatch::try_new(
        written_schema(),
        vec![
            Arc::new(StringArray::from(files)),
            Arc::new(UInt64Array::from(counts)),
            Arc::new(UInt64Array::from(sizes)),
        ],
    )?)
}
