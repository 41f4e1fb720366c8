//! The physical write: each partition's task writes one Parquet file.

use std::fmt;
use std::sync::Arc;

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray, StringArray, UInt32Array, UInt64Array};
use datafusion::arrow::compute::{cast, take_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
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
use object_store::path::{Path, PathPart};
use parquet::arrow::AsyncArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::options::{WriteOptions, written_schema};

/// Writes partition `i` of its input to `<folder>/part-<i>-p<pid>-<uuid>.parquet`, or with
/// partition columns to `<folder>/<key>=<value>/…/part-<i>-p<pid>-<uuid>.parquet` for every
/// partition value the task meets.
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
            "ParallelParquetWriteExec: folder={}, compression={}, partition_by=[{}]",
            self.options.folder_url,
            self.options.compression,
            self.options.partition_by.join(", ")
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

/// One file a task is writing.
struct OpenFile {
    writer: AsyncArrowWriter<BufWriter>,
    path: Path,
    rows: u64,
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
    // Unique per task attempt: a retried or duplicated attempt never overwrites a file of
    // another; the run keeps only the files its successful tasks report.
    let name = format!(
        "part-{partition:05}-p{}-{}.parquet",
        std::process::id(),
        &id[..8]
    );
    let props = writer_properties(&options.compression, context.session_config().options())?;
    let split = HiveSplit::new(&input.schema(), &options.partition_by)?;
    // Files by partition folder (empty for an unpartitioned write), in first-seen order.
    let mut files: Vec<(Vec<PathPart<'static>>, OpenFile)> = Vec::new();
    while let Some(batch) = input.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        for (folders, rows) in split.split(&batch)? {
            let index = match files.iter().position(|(f, _)| *f == folders) {
                Some(i) => i,
                None => {
                    let mut path = folder.prefix().clone();
                    for f in &folders {
                        path = path.join(f.clone());
                    }
                    let path = path.join(name.as_str());
                    let writer = AsyncArrowWriter::try_new(
                        BufWriter::new(store.clone(), path.clone()),
                        split.data_schema.clone(),
                        Some(crate::dictionary::with_plain_columns(&props, &rows)?),
                    )?;
                    files.push((
                        folders,
                        OpenFile {
                            writer,
                            path,
                            rows: 0,
                        },
                    ));
                    files.len() - 1
                }
            };
            let file = &mut files[index].1;
            file.rows += rows.num_rows() as u64;
            file.writer.write(&rows).await?;
        }
    }
    // An empty partition writes no file. The files are closed, and the run's end checked,
    // on a task of their own: a task attempt that is dropped meanwhile (its job failed or
    // was cancelled and its executor stopped it, a sibling partition failed) must still
    // remove what its closing puts in place, and dropping the closing halfway would leave
    // it there.
    let folder_prefix = folder.prefix().clone();
    let store_url = folder.object_store().as_str().to_string();
    let closing = tokio::spawn(close_files(
        store,
        files.into_iter().map(|(_, f)| f).collect(),
        folder_prefix,
        options,
        partition,
    ));
    let closed = closing
        .await
        .map_err(|e| DataFusionError::Execution(format!("closing the written files: {e}")))??;
    let urls: Vec<String> = closed
        .iter()
        .map(|(path, _, _)| format!("{store_url}{path}"))
        .collect();
    let counts: Vec<u64> = closed.iter().map(|(_, rows, _)| *rows).collect();
    let sizes: Vec<u64> = closed.iter().map(|(_, _, size)| *size).collect();
    Ok(RecordBatch::try_new(
        written_schema(),
        vec![
            Arc::new(StringArray::from(urls)),
            Arc::new(UInt64Array::from(counts)),
            Arc::new(UInt64Array::from(sizes)),
        ],
    )?)
}

/// Closes `files` (written into `folder`) and returns each one's path, rows and size.
///
/// With a live marker, the run's end is checked once the files are closed: whoever clears
/// the folder removes the marker first, so a file closed before the check is found by the
/// clearing, and one closed after it is deleted here (the task then fails: its run has
/// ended). A file closed while the folder was being cleared may be gone before its size is
/// read; that too means the run has ended.
async fn close_files(
    store: Arc<dyn object_store::ObjectStore>,
    files: Vec<OpenFile>,
    folder: Path,
    options: WriteOptions,
    partition: usize,
) -> Result<Vec<(Path, u64, u64)>> {
    if !files.is_empty() {
        slow_write_failpoint(partition, &options.folder_url).await;
    }
    let mut closed = Vec::with_capacity(files.len());
    let mut failed = None;
    for file in files {
        match file.writer.close().await {
            Ok(_) => closed.push((file.path, file.rows)),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let ended = |what: String| {
        let message = format!(
            "the run writing into {} has ended; {what} (pid {})",
            options.folder_url,
            std::process::id()
        );
        eprintln!("sluice-writer: {message}");
        DataFusionError::Execution(message)
    };
    if let Some(marker) = &options.live_marker
        && !closed.is_empty()
    {
        let marker_path = folder.clone().join(marker.as_str());
        if let Err(object_store::Error::NotFound { .. }) = store.head(&marker_path).await {
            for (path, _) in &closed {
                match store.delete(path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => eprintln!("sluice-writer: cannot delete the late file {path}: {e}"),
                }
            }
            return Err(ended(format!(
                "deleted the {} file(s) this task wrote late",
                closed.len()
            )));
        }
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    let mut out = Vec::with_capacity(closed.len());
    for (path, rows) in closed {
        let size = match store.head(&path).await {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) if options.live_marker.is_some() => {
                return Err(ended(format!(
                    "its folder was cleared while {path} was closed"
                )));
            }
            Err(e) => return Err(DataFusionError::ObjectStore(Box::new(e))),
        };
        out.push((path, rows, size));
    }
    Ok(out)
}

/// Environment variable naming faults to inject, for tests (a comma-separated list):
/// `slow_write` makes every write
/// task log that it holds a write, then wait 4 s before it closes its files (so that a test
/// can pause or cut off its executor while it provably holds the task). The wait is on the
/// closing's own task, which goes on when the write task is stopped or dropped: the late
/// close a test provokes is the one that can really happen.
pub(crate) const FAILPOINT_ENV: &str = "SLUICE_FAILPOINT";

async fn slow_write_failpoint(partition: usize, folder: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v.split(',').any(|f| f == "slow_write")) {
        eprintln!(
            "failpoint slow_write: pid {} holds the write of partition {partition} into {folder}",
            std::process::id()
        );
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
}

/// Value of a NULL partition key in a folder name, as Hive and Spark write it.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Splits batches by their Hive partition columns.
struct HiveSplit {
    /// (name, column index) of each partition column, in folder order.
    keys: Vec<(String, usize)>,
    /// Indices of the columns that go into the files.
    data_columns: Vec<usize>,
    /// Schema of the files.
    data_schema: SchemaRef,
}

impl HiveSplit {
    fn new(schema: &SchemaRef, partition_by: &[String]) -> Result<Self> {
        let mut keys = Vec::with_capacity(partition_by.len());
        for name in partition_by {
            let index = schema.index_of(name).map_err(|_| {
                DataFusionError::Plan(format!("partition column '{name}' is not in the output"))
            })?;
            keys.push((name.clone(), index));
        }
        let data_columns: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !keys.iter().any(|(_, k)| k == i))
            .collect();
        let data_schema = Arc::new(schema.project(&data_columns)?);
        Ok(Self {
            keys,
            data_columns,
            data_schema,
        })
    }

    /// The rows of `batch` (without the partition columns) per partition folder
    /// (`key=value` segments, encoded by the object store's path rules).
    fn split(&self, batch: &RecordBatch) -> Result<Vec<(Vec<PathPart<'static>>, RecordBatch)>> {
        let data = batch.project(&self.data_columns)?;
        if self.keys.is_empty() {
            return Ok(vec![(Vec::new(), data)]);
        }
        let values = self
            .keys
            .iter()
            .map(|(_, i)| cast(batch.column(*i), &DataType::Utf8))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let values: Vec<&StringArray> = values.iter().map(|v| v.as_string::<i32>()).collect();
        let mut groups: Vec<(Vec<PathPart<'static>>, Vec<u32>)> = Vec::new();
        let mut index: HashMap<Vec<Option<&str>>, usize> = HashMap::new();
        for row in 0..batch.num_rows() {
            let key: Vec<Option<&str>> = values
                .iter()
                .map(|v| (!v.is_null(row)).then(|| v.value(row)))
                .collect();
            let group = match index.get(&key) {
                Some(g) => *g,
                None => {
                    let folders = self
                        .keys
                        .iter()
                        .zip(&key)
                        .map(|((name, _), value)| {
                            let value = value.unwrap_or(HIVE_DEFAULT_PARTITION);
                            // Escaped once, by the object store's path rules.
                            PathPart::from(format!("{name}={value}"))
                        })
                        .collect();
                    groups.push((folders, Vec::new()));
                    index.insert(key, groups.len() - 1);
                    groups.len() - 1
                }
            };
            groups[group].1.push(row as u32);
        }
        if groups.len() == 1 {
            let (folders, _) = groups.remove(0);
            return Ok(vec![(folders, data)]);
        }
        groups
            .into_iter()
            .map(|(folders, rows)| {
                let rows = take_record_batch(&data, &UInt32Array::from(rows))?;
                Ok((folders, rows))
            })
            .collect()
    }
}
