//! Runs one job: plan, write a new table version, seal it, then swap the catalog entry.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::DataFrame;
use object_store::ObjectStore;
use sluice_catalog::schema::{Reconciled, Registered, SchemaChangePolicy, reconcile};
use sluice_catalog::{
    Catalog, CatalogError, CatalogKind, Catalogs, ColumnEntry, PartitionEntry, TableEntry,
};
use sluice_lake::{DataFile, LakeError, Manifest, TableLocation};
use sluice_planner::diagnose::{InputError, is_csv_error, locate_csv_error};
use sluice_planner::{PlanError, PlannedJob, clean_message, plan_job};
use sluice_proto as pb;
use sluice_writer::{ParallelParquetWrite, WriteOptions};
use tracing::Instrument;

use crate::engine::{Engine, JobProgress, StageState};

/// Environment variable naming failures to inject, for tests of the commit protocol (a
/// comma-separated list): `before_commit` fails a run after its files are written and sealed,
/// before the catalog moves; `crash_after_publish`, `crash_after_seal` and
/// `crash_after_catalog` abort the whole process at that step of the commit.
pub const FAILPOINT_ENV: &str = "SLUICE_FAILPOINT";

/// Whether [`FAILPOINT_ENV`] names `name`.
pub fn failpoint(name: &str) -> bool {
    std::env::var(FAILPOINT_ENV).is_ok_and(|v| v.split(',').any(|f| f == name))
}

/// Aborts the process, as a crash would, when [`FAILPOINT_ENV`] names `crash_<step>`.
fn crash_point(step: &str) {
    if failpoint(&format!("crash_{step}")) {
        eprintln!("failpoint crash_{step}: aborting");
        std::process::abort();
    }
}

/// What a run is doing, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// Listing sources, inferring schemas, checking columns.
    Planning,
    /// Executing on the cluster.
    Running(JobProgress),
    /// Sealing the new version and updating the catalog.
    Committing,
}

/// Why a run failed. In every case the catalog still points at the previous version.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The job does not fit its data (unknown column, missing file, …).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An input file has a bad row or value.
    #[error("bad input in source '{}': {}", .0.source, .0)]
    Input(InputError),
    /// An executor was lost while the job ran. Ballista re-runs the lost work, but its
    /// recovery can count some rows twice, so the run's output is discarded; re-run it.
    #[error("executor(s) {0} were lost while the job ran; its output was discarded")]
    ExecutorLost(String),
    /// Execution failed for another reason.
    #[error("the job failed while running: {}", clean_message(.0))]
    Execution(#[source] datafusion::error::DataFusionError),
    /// The Parquet file of an empty result could not be written.
    #[error("the job failed while running: cannot write an empty Parquet file: {0}")]
    EmptyFile(#[source] datafusion::parquet::errors::ParquetError),
    /// A fault injected for tests (see [`FAILPOINT_ENV`]).
    #[error("the job failed while running: failpoint {}={}", FAILPOINT_ENV, .0)]
    Failpoint(&'static str),
    /// The run exceeded the job's timeout.
    #[error("the job ran longer than its timeout of {0} s")]
    Timeout(u64),
    /// Writing or sealing the version failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The catalog could not be read or updated.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// What a source contributed.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// Source name.
    pub name: String,
    /// Files read.
    pub files: usize,
    /// Bytes in those files.
    pub bytes: u64,
    /// Rows read, when the scheduler reported it.
    pub rows: Option<u64>,
}

/// What a successful run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run's id (also its version folder, `run-<id>`).
    pub run_id: String,
    /// Per source: files, bytes, rows.
    pub sources: Vec<SourceReport>,
    /// Rows written to the table.
    pub rows_written: u64,
    /// Data files written.
    pub files_written: usize,
    /// Bytes written.
    pub bytes_written: u64,
    /// The table as now registered.
    pub table: TableEntry,
    /// Old versions removed from the lake.
    pub versions_removed: usize,
    /// The catalog the table is registered in (`embedded`, `glue`).
    pub catalog: &'static str,
    /// How the registered columns differ from the previous version's.
    pub schema_changes: Vec<String>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Ballista stages the run took (a shuffle or broadcast separates two stages).
    pub stages: usize,
    /// Tasks of those stages.
    pub tasks: usize,
    /// Job start: from submitting the job to Ballista to its first task running.
    pub first_task: Option<Duration>,
}

/// Where tables go: the lake root and the catalog that registers them.
pub struct Lake {
    /// URL of the lake root, ending in `/` (`file:///data/lake/`, `s3://bucket/lake/`).
    pub url: String,
    /// The store holding the lake.
    pub store: Arc<dyn ObjectStore>,
    /// URL of the store's root (`file:///`, `s3://bucket/`).
    pub store_url: String,
}

impl Lake {
    /// The lake at `url`, using the object store the engine's session has for it.
    pub fn open(engine: &Engine, url: &str) -> Result<Self, LakeError> {
        let url = if url.ends_with('/') {
            url.to_string()
        } else {
            format!("{url}/")
        };
        let parsed = url::Url::parse(&url).map_err(|_| LakeError::Url(url.clone()))?;
        let store_url = format!("{}://{}/", parsed.scheme(), parsed.host_str().unwrap_or(""));
        let os_url = ObjectStoreUrl::parse(&store_url).map_err(|_| LakeError::Url(url.clone()))?;
        let store = engine
            .ctx()
            .runtime_env()
            .object_store(&os_url)
            .map_err(|_| LakeError::Url(url.clone()))?;
        Ok(Self {
            url,
            store,
            store_url,
        })
    }

    /// The lake root's path inside its store (`data/lake`).
    pub fn path(&self) -> &str {
        self.url
            .strip_prefix(&self.store_url)
            .unwrap_or("")
            .trim_end_matches('/')
    }

    /// The embedded catalog kept in this lake.
    pub fn embedded_catalog(&self) -> sluice_catalog::EmbeddedCatalog {
        sluice_catalog::EmbeddedCatalog::new(self.store.clone(), self.path(), &self.url)
    }

    /// This lake's embedded catalog and Glue, with `default` for targets that name none.
    pub fn catalogs(&self, default: CatalogKind) -> Catalogs {
        Catalogs::new(Arc::new(self.embedded_catalog()), default)
    }

    /// Where `target`'s table lives in this lake.
    pub fn table(&self, target: &pb::Target) -> Result<TableLocation, LakeError> {
        let root = if target.location.is_empty() {
            let t = target.table.clone().unwrap_or_default();
            format!("{}{}/{}/", self.url, t.database, t.table)
        } else {
            target.location.clone()
        };
        TableLocation::new(self.store.clone(), &self.store_url, &root)
    }
}

/// The catalog a target registers its table in.
pub async fn target_catalog(
    catalogs: &Catalogs,
    target: &pb::Target,
) -> Result<Arc<dyn Catalog>, CatalogError> {
    let kind = match target.catalog() {
        pb::CatalogKind::Default => None,
        pb::CatalogKind::Embedded => Some(CatalogKind::Embedded),
        pb::CatalogKind::Glue => Some(CatalogKind::Glue),
    };
    catalogs.get(kind).await
}

/// Runs `spec` on `engine` as run `run_id` (see [`sluice_lake::new_run_id`]), writing into
/// `lake` and registering in the target's catalog. `progress` is called as the run moves on.
pub async fn run_job(
    engine: &Engine,
    lake: &Lake,
    catalogs: &Catalogs,
    spec: &pb::JobSpec,
    run_id: &str,
    progress: &(dyn Fn(RunEvent) + Send + Sync),
) -> Result<RunReport, RunError> {
    let run_id = run_id.to_string();
    let started = Instant::now();
    progress(RunEvent::Planning);
    let planned = plan_job(engine.ctx(), spec)
        .instrument(tracing::info_span!("plan", job = %spec.name))
        .await?;
    let target = spec.target.clone().unwrap_or_default();
    let table_ref = target.table.clone().unwrap_or_default();
    let columns = output_columns(&planned)?;
    let catalog = target_catalog(catalogs, &target).await?;
    let policy = schema_policy(&target);
    // Check the schema against the registered table before spending time on the run.
    let registered = catalog
        .get_table(&table_ref.database, &table_ref.table)
        .await?;
    table_columns(registered.as_ref(), &table_ref, &planned, &columns, policy)?;
    let table = lake.table(&target)?;
    let staging_url = table.staging_url(&run_id);

    let jobs_before = engine.job_ids().await.unwrap_or_default();
    let executors_before = engine.executor_ids().await;
    let written = write_version(
        engine,
        &planned,
        &staging_url,
        spec.timeout_seconds,
        &jobs_before,
        progress,
    )
    .instrument(tracing::info_span!("execute", staging = %staging_url))
    .await;
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            discard_version(&table, &run_id).await;
            return Err(explain_failure(engine, &planned, e).await);
        }
    };
    let executors_after = engine.executor_ids().await;
    let mut lost: Vec<&String> = executors_before.difference(&executors_after).collect();
    if !lost.is_empty() {
        lost.sort();
        discard_version(&table, &run_id).await;
        let names: Vec<&str> = lost.iter().map(|s| s.as_str()).collect();
        return Err(RunError::ExecutorLost(names.join(", ")));
    }

    progress(RunEvent::Committing);
    let rows_written = written.rows;
    let result = commit(Commit {
        catalog: catalog.as_ref(),
        policy,
        table: &table,
        table_ref: &table_ref,
        planned: &planned,
        columns: &columns,
        run_id: &run_id,
        rows: rows_written,
        files: written.files,
    })
    .await;
    let Committed {
        entry,
        manifest,
        versions_removed,
        schema_changes,
    } = match result {
        Ok(r) => r,
        Err(e) => {
            discard_version(&table, &run_id).await;
            return Err(e);
        }
    };

    let new_jobs: Vec<String> = engine
        .job_ids()
        .await
        .unwrap_or_default()
        .difference(&jobs_before)
        .cloned()
        .collect();
    let scans = engine.scan_rows(&new_jobs).await;
    let sources = planned
        .sources
        .iter()
        .map(|s| {
            let mut rows = None;
            for (files, n) in &scans.scans {
                let ours = files
                    .first()
                    .is_some_and(|f| s.files.iter().any(|sf| sf.url.ends_with(f.as_str())));
                if ours {
                    *rows.get_or_insert(0) += n;
                }
            }
            SourceReport {
                name: s.name.clone(),
                files: s.files.len(),
                bytes: s.files.iter().map(|f| f.size).sum(),
                rows,
            }
        })
        .collect();
    Ok(RunReport {
        run_id,
        sources,
        rows_written,
        files_written: manifest.files.len(),
        bytes_written: manifest.bytes(),
        table: entry,
        versions_removed,
        catalog: catalog.kind(),
        schema_changes,
        elapsed: started.elapsed(),
        stages: scans.stages,
        tasks: scans.tasks,
        first_task: scans.first_task_ms.map(Duration::from_millis),
    })
}

enum WriteFailure {
    DataFusion(datafusion::error::DataFusionError),
    Timeout(u64),
}

/// What a write produced: rows, and the files the successful tasks reported.
struct Written {
    rows: u64,
    files: Vec<DataFile>,
}

async fn write_version(
    engine: &Engine,
    planned: &PlannedJob,
    staging_url: &str,
    timeout_seconds: u64,
    jobs_before: &HashSet<String>,
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
    // (one per `key=value` folder it meets; see sluice-writer).
    let options = WriteOptions {
        folder_url: staging_url.to_string(),
        compression,
        partition_by: planned.partition_by.clone(),
    };
    let plan = ParallelParquetWrite::new(planned.output.logical_plan().clone(), options)
        .map_err(WriteFailure::DataFusion)?
        .into_plan();
    let df = DataFrame::new(engine.ctx().state(), plan);
    let prefix = staging_url.to_string();
    let write = async move {
        let batches = df.collect().await?;
        let files = reported_files(&batches, &prefix)?;
        let rows = files.iter().map(|(_, rows)| rows).sum();
        Ok::<_, datafusion::error::DataFusionError>(Written {
            rows,
            files: files.into_iter().map(|(f, _)| f).collect(),
        })
    };
    tokio::pin!(write);
    let mut stages = StageSpans::default();
    let deadline =
        (timeout_seconds > 0).then(|| Instant::now() + Duration::from_secs(timeout_seconds));
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            result = &mut write => {
                // The jobs have left the running jobs: their stages as they ended.
                let ours: Vec<String> = engine
                    .job_ids()
                    .await
                    .unwrap_or_default()
                    .difference(jobs_before)
                    .cloned()
                    .collect();
                stages.update(engine.finished_stages(&ours).await);
                return result.map_err(WriteFailure::DataFusion);
            }
            _ = tick.tick() => {
                if deadline.is_some_and(|d| Instant::now() > d) {
                    let running: Vec<String> = engine.running_job_ids().await.into_iter().collect();
                    engine.cancel_jobs(&running).await;
                    return Err(WriteFailure::Timeout(timeout_seconds));
                }
                let snapshot = engine.running_stages().await;
                progress(RunEvent::Running(JobProgress::from_stages(&snapshot)));
                stages.update(snapshot);
            }
        }
    }
}

/// `stage` spans (children of the run's span) that open when the scheduler starts a stage
/// and close when it finishes, with one event per finished task.
#[derive(Default)]
struct StageSpans {
    /// Open spans, with the ids of the tasks already reported on each.
    open: std::collections::HashMap<(String, usize), (tracing::Span, HashSet<usize>)>,
    ended: HashSet<(String, usize)>,
}

impl StageSpans {
    fn update(&mut self, snapshot: Vec<crate::engine::StageSnapshot>) {
        for s in snapshot {
            let key = (s.job_id.clone(), s.stage_id);
            if !s.state.started() || self.ended.contains(&key) {
                continue;
            }
            let (span, reported) = self.open.entry(key).or_insert_with(|| {
                (
                    tracing::info_span!("stage", job = %s.job_id, stage = s.stage_id, partitions = s.partitions),
                    HashSet::new(),
                )
            });
            // Tasks are listed by id, not in the order they finished: report each new one.
            for (task, ms) in &s.finished_tasks {
                if reported.insert(*task) {
                    tracing::info!(parent: &*span, task, duration_ms = ms, "task finished");
                }
            }
            if s.state != StageState::Running {
                tracing::info!(parent: &*span, state = s.state.as_str(), "stage ended");
                let key = (s.job_id.clone(), s.stage_id);
                self.open.remove(&key);
                self.ended.insert(key);
            }
        }
        // A job that ends leaves the running jobs before the write returns: its stages
        // vanish from a tick's snapshot. Their spans stay open, with what they reported, until
        // the final snapshot of the finished jobs ends them (or the run ends and drops them);
        // closing them here made the final snapshot open them again and report tasks twice.
    }
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

/// Deletes a failed run's version and staging folders; a failure to do so is logged (the
/// catalog never pointed at them, so readers are not affected).
async fn discard_version(table: &TableLocation, run_id: &str) {
    if let Err(e) = table.delete_version(run_id).await {
        tracing::warn!(run = run_id, error = %e, "cannot delete the failed run's files");
    }
}

/// Name of the file an empty result is written as.
const EMPTY_FILE: &str = "part-00000-empty.parquet";

/// A Parquet file with `schema` and no rows: what Spark and DuckDB write for an empty
/// result, so that readers see a table with its columns.
fn empty_parquet(schema: datafusion::arrow::datatypes::SchemaRef) -> Result<Vec<u8>, RunError> {
    use datafusion::parquet::arrow::ArrowWriter;
    let mut buffer = Vec::new();
    let writer = ArrowWriter::try_new(&mut buffer, schema, None).map_err(RunError::EmptyFile)?;
    writer.close().map_err(RunError::EmptyFile)?;
    Ok(buffer)
}

async fn explain_failure(engine: &Engine, planned: &PlannedJob, e: WriteFailure) -> RunError {
    let e = match e {
        WriteFailure::Timeout(s) => return RunError::Timeout(s),
        WriteFailure::DataFusion(e) => e,
    };
    if is_csv_error(&e)
        && let Some(found) = locate_csv_error(engine.ctx(), &planned.sources).await
    {
        return RunError::Input(found);
    }
    RunError::Execution(e)
}

fn schema_policy(target: &pb::Target) -> SchemaChangePolicy {
    match target.schema_change() {
        pb::SchemaChangePolicy::Update => SchemaChangePolicy::Update,
        pb::SchemaChangePolicy::Log => SchemaChangePolicy::Log,
    }
}

/// The columns and partition keys to register, given the table as registered now.
fn table_columns(
    registered: Option<&TableEntry>,
    table_ref: &pb::TableRef,
    planned: &PlannedJob,
    columns: &[ColumnEntry],
    policy: SchemaChangePolicy,
) -> Result<Reconciled, CatalogError> {
    let partition_keys: Vec<ColumnEntry> = planned
        .partition_by
        .iter()
        .map(|p| ColumnEntry {
            name: p.clone(),
            hive_type: "string".into(),
        })
        .collect();
    let data_columns: Vec<ColumnEntry> = columns
        .iter()
        .filter(|c| !planned.partition_by.contains(&c.name))
        .cloned()
        .collect();
    reconcile(
        &format!("{}.{}", table_ref.database, table_ref.table),
        registered.map(|r| Registered {
            columns: &r.columns,
            partition_keys: &r.partition_keys,
        }),
        &data_columns,
        &partition_keys,
        policy,
    )
}

fn output_columns(planned: &PlannedJob) -> Result<Vec<ColumnEntry>, RunError> {
    let mut out = Vec::new();
    for field in planned.output.schema().fields() {
        if let Err(e) = sluice_job::names::check_catalog_name(field.name()) {
            return Err(RunError::Plan(PlanError::Invalid(
                sluice_job::Diagnostic::new(
                    "target.input",
                    format!("output column {e}: rename it with a 'rename' transform"),
                ),
            )));
        }
        let hive_type = sluice_catalog::types::hive_type(field.data_type()).map_err(|e| {
            RunError::Plan(PlanError::Invalid(sluice_job::Diagnostic::new(
                "target.input",
                format!("column '{}': {e}", field.name()),
            )))
        })?;
        out.push(ColumnEntry {
            name: field.name().clone(),
            hive_type,
        });
    }
    Ok(out)
}

/// What a commit needs: the finished run and where it goes.
struct Commit<'a> {
    /// The catalog the table is registered in.
    catalog: &'a dyn Catalog,
    /// How registered columns follow the data.
    policy: SchemaChangePolicy,
    /// The table's place in the lake.
    table: &'a TableLocation,
    /// The table's name.
    table_ref: &'a pb::TableRef,
    /// The planned job (output schema, partition columns).
    planned: &'a PlannedJob,
    /// The output's columns, as the catalog registers them.
    columns: &'a [ColumnEntry],
    /// The run.
    run_id: &'a str,
    /// Rows the write tasks reported.
    rows: u64,
    /// The files the write tasks reported, relative to the run's staging folder.
    files: Vec<DataFile>,
}

/// What a commit did.
struct Committed {
    /// The table as now registered.
    entry: TableEntry,
    /// The sealed version's manifest.
    manifest: Manifest,
    /// Old versions removed.
    versions_removed: usize,
    /// How the registered columns changed.
    schema_changes: Vec<String>,
}

/// Publishes the run's reported files as its version, seals it, and moves the catalog to it;
/// then removes what older runs left.
async fn commit(commit: Commit<'_>) -> Result<Committed, RunError> {
    let Commit {
        catalog,
        policy,
        table,
        table_ref,
        planned,
        columns,
        run_id,
        rows,
        mut files,
    } = commit;
    if files.is_empty() && planned.partition_by.is_empty() {
        // An empty result is a table with the output's columns and no rows.
        let schema = Arc::new(planned.output.schema().as_arrow().clone());
        let empty = table
            .put_staged(run_id, EMPTY_FILE, empty_parquet(schema)?)
            .await?;
        files.push(empty);
    }
    // Exactly the files the successful tasks reported move into the version folder; anything
    // else in the staging folder is from a failed, retried or superseded task attempt and
    // never becomes part of the table.
    table.publish(run_id, &files).await?;
    crash_point("after_publish");
    let manifest = Manifest {
        run_id: run_id.to_string(),
        rows,
        files,
    };
    table.seal(&manifest).await?;
    crash_point("after_seal");
    if failpoint("before_commit") {
        return Err(RunError::Failpoint("before_commit"));
    }
    let previous = catalog
        .get_table(&table_ref.database, &table_ref.table)
        .await?;
    let version_url = table.version_url(run_id);
    let reconciled = table_columns(previous.as_ref(), table_ref, planned, columns, policy)?;
    for change in &reconciled.changes {
        let applied = match policy {
            SchemaChangePolicy::Update => "table updated",
            SchemaChangePolicy::Log => "table columns kept (schema_change: log)",
        };
        tracing::warn!(table = %format!("{}.{}", table_ref.database, table_ref.table), "{change}; {applied}");
    }
    let partitions = partitions_of(&manifest, &planned.partition_by, &version_url);
    let entry = TableEntry {
        database: table_ref.database.clone(),
        name: table_ref.table.clone(),
        location: version_url,
        classification: "parquet".into(),
        columns: reconciled.columns,
        partition_keys: reconciled.partition_keys,
        partitions,
        parameters: sluice_catalog::crawler_parameters(
            "parquet",
            rows,
            manifest.files.len() as u64,
            manifest.bytes(),
        ),
        run_id: Some(run_id.to_string()),
        version: 0,
        updated_at: String::new(),
    };
    let entry = catalog.commit_table(entry).await?;
    crash_point("after_catalog");
    let versions_removed = remove_old_files(table, run_id, previous.and_then(|p| p.run_id)).await;
    Ok(Committed {
        entry,
        manifest,
        versions_removed,
        schema_changes: reconciled.changes,
    })
}

/// After run `run_id` committed: deletes its staging folder and those of older runs (what
/// failed or superseded task attempts left, including writes that arrived late), and every
/// version older than `previous_run`, the one readers may still be using. Returns the
/// versions removed; failures are logged, not fatal (the commit has happened).
///
/// Runs of one table are committed one at a time, so an older run's staging folder belongs
/// to a run that has ended.
async fn remove_old_files(
    table: &TableLocation,
    run_id: &str,
    previous_run: Option<String>,
) -> usize {
    match table.staged_runs().await {
        Ok(staged) => {
            for r in staged.iter().filter(|r| r.as_str() <= run_id) {
                if let Err(e) = table.delete_staging(r).await {
                    tracing::warn!(run = %r, error = %e, "cannot delete a staging folder");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list the staging folders"),
    }
    let mut removed = 0;
    match table.versions().await {
        Ok(versions) => {
            for v in versions {
                let older = previous_run.as_deref().is_some_and(|p| v.as_str() < p);
                if !older {
                    continue;
                }
                match table.delete_version(&v).await {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        tracing::warn!(version = %v, error = %e, "cannot delete an old version")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list the table's versions"),
    }
    removed
}

fn partitions_of(manifest: &Manifest, keys: &[String], version_url: &str) -> Vec<PartitionEntry> {
    if keys.is_empty() {
        return Vec::new();
    }
    // Each partition folder's files: their count, bytes and (when every file's is known) rows.
    let mut folders: BTreeMap<String, (u64, u64, Option<u64>)> = BTreeMap::new();
    for f in &manifest.files {
        let parts: Vec<&str> = f.path.split('/').collect();
        if parts.len() > keys.len() {
            let (objects, bytes, rows) =
                folders
                    .entry(parts[..keys.len()].join("/"))
                    .or_insert((0, 0, Some(0)));
            *objects += 1;
            *bytes += f.size;
            *rows = rows.zip(f.rows).map(|(a, b)| a + b);
        }
    }
    folders
        .into_iter()
        .map(|(folder, (objects, bytes, rows))| PartitionEntry {
            // Folder names are escaped by the object store's path rules (`a/b` is `a%2Fb`);
            // the catalog holds the values themselves.
            values: folder
                .split('/')
                .map(|kv| {
                    let value = kv.split_once('=').map(|(_, v)| v).unwrap_or(kv);
                    percent_encoding::percent_decode_str(value)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .collect(),
            location: format!("{version_url}{folder}/"),
            rows,
            objects: Some(objects),
            bytes: Some(bytes),
        })
        .collect()
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
