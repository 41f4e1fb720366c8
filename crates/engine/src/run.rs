//! Runs one job: plan, write a new table version, seal it, then swap the catalog entry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_catalog::{Catalog, CatalogError, CatalogKind, Catalogs, ColumnEntry, TableEntry};
use sluice_lake::{BookmarkState, Lake, LakeError, Manifest, ProcessedFile, TableLocation};
use sluice_planner::diagnose::{InputError, is_csv_error, locate_csv_error};
use sluice_planner::{PlanError, PlannedJob, SeenFiles, clean_message, plan_job_incremental};
use sluice_proto as pb;
use tracing::Instrument;

use crate::cluster::Engine;
use crate::commit::{Commit, Committed, commit, discard_version, schema_policy, table_columns};
use crate::failpoint::FAILPOINT_ENV;
use crate::in_process::InProcessShape;
use crate::introspection::ScanRows;
use crate::progress::RunEvent;
use crate::write::{WriteFailure, write_version};

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
    /// Data-quality rules failed with `on_failure: fail`; nothing was published. Holds every
    /// rule's outcome.
    #[error("{} of the job's data-quality rules failed", .0.iter().filter(|r| r.outcome != pb::QualityOutcome::Passed as i32).count())]
    Quality(Vec<pb::QualityResult>),
    /// The rules' outcomes could not be turned into rows of `sluice_quality.results`.
    #[error("cannot record the data-quality results: {0}")]
    QualityLog(String),
    /// Another run committed the table while this one ran; an append or bookmarked run
    /// built on the older version, so it publishes nothing (run it again).
    #[error(
        "table {table} moved from run {expected} to run {found} while this run ran; nothing was published (run it again)"
    )]
    Moved {
        /// The table.
        table: String,
        /// The run the catalog pointed at when this run started.
        expected: String,
        /// The run it points at now.
        found: String,
    },
    /// An append whose output columns differ from the table's.
    #[error(
        "target.mode: append: the output's columns differ from table {table}'s ({detail}); an append adds files with the table's columns only — write with mode: overwrite to replace the table"
    )]
    AppendSchema {
        /// The table.
        table: String,
        /// How they differ.
        detail: String,
    },
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
    /// How the plan ran when it ran in this process instead of on Ballista (the embedded
    /// engine; `stages`, `tasks` and `first_task` are then empty).
    pub in_process: Option<InProcessShape>,
    /// Each data-quality rule's outcome (empty without a `quality` block).
    pub quality: Vec<pb::QualityResult>,
    /// The catalog table the outcomes were appended to (`sluice_quality.results`), when
    /// there were outcomes and they were recorded.
    pub quality_table: Option<String>,
    /// What a run that published nothing did instead (no new input for an append or a
    /// bookmarked run); `None` when it published a version.
    pub note: Option<String>,
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
    let target = spec.target.clone().unwrap_or_default();
    let table_ref = target.table.clone().unwrap_or_default();
    let catalog = target_catalog(catalogs, &target).await?;
    let table = lake.table(&target)?;
    let registered = catalog
        .get_table(&table_ref.database, &table_ref.table)
        .await?;
    let start = Box::pin(starting_point(&table, spec, registered.as_ref())).await?;
    let planned = Box::pin(
        plan_job_incremental(engine.ctx(), spec, &|_, _| None, start.seen.as_ref())
            .instrument(tracing::info_span!("plan", job = %spec.name)),
    )
    .await?;
    let columns = output_columns(&planned)?;
    let policy = schema_policy(&target);
    // Check the schema against the registered table before spending time on the run.
    table_columns(
        registered.as_ref(),
        &table_ref,
        &planned.partition_by,
        &columns,
        policy,
    )?;
    if start.append
        && let Some(entry) = &registered
    {
        check_append_columns(entry, &planned, &columns)?;
    }
    let tracked: Vec<&sluice_planner::PlannedSource> = planned
        .sources
        .iter()
        .filter(|s| {
            start
                .seen
                .as_ref()
                .is_some_and(|seen| seen.contains_key(&s.name))
        })
        .collect();
    if !tracked.is_empty() && tracked.iter().all(|s| s.files.is_empty()) {
        let skipped: usize = tracked.iter().map(|s| s.skipped).sum();
        let note = format!(
            "no new input: the bookmark records all {skipped} file(s) of the tracked sources as processed; nothing was committed"
        );
        return Ok(nothing_committed(
            run_id,
            &planned,
            registered,
            &table_ref,
            catalog.kind(),
            started,
            note,
        ));
    }
    let staging_url = table.staging_url(&run_id);
    // The run's tasks keep their files only while this marker exists.
    table.open_staging(&run_id).await?;

    let executors_before = engine.scheduler().executor_ids().await;
    let written = Box::pin(
        write_version(
            engine,
            &planned,
            &staging_url,
            spec.timeout_seconds,
            &run_id,
            progress,
        )
        .instrument(tracing::info_span!("execute", staging = %staging_url)),
    )
    .await;
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            discard_version(&table, &run_id).await;
            return Err(explain_failure(engine, &planned, e).await);
        }
    };
    let executors_after = engine.scheduler().executor_ids().await;
    let mut lost: Vec<&String> = executors_before.difference(&executors_after).collect();
    if !lost.is_empty() {
        lost.sort();
        discard_version(&table, &run_id).await;
        let names: Vec<&str> = lost.iter().map(|s| s.as_str()).collect();
        return Err(RunError::ExecutorLost(names.join(", ")));
    }

    // Data-quality rules judge the staged output before anything is published.
    let quality = match Box::pin(
        crate::quality::evaluate(engine, catalogs, spec, &planned, &staging_url, &written)
            .instrument(tracing::info_span!("quality")),
    )
    .await
    {
        Ok(q) => q,
        Err(e) => {
            discard_version(&table, &run_id).await;
            if let RunError::Quality(results) = &e {
                record_quality(
                    lake,
                    catalog.as_ref(),
                    spec,
                    &run_id,
                    &table_ref,
                    false,
                    results,
                )
                .await;
            }
            return Err(e);
        }
    };

    let rows_written = written.rows;
    let new_files = tracked.iter().any(|s| !s.files.is_empty());
    if start.append && rows_written == 0 && !(start.records && new_files) {
        discard_version(&table, &run_id).await;
        return Ok(nothing_committed(
            run_id,
            &planned,
            registered,
            &table_ref,
            catalog.kind(),
            started,
            "no new rows to append; nothing was committed".to_string(),
        ));
    }
    let mut bookmark = start.bookmark;
    if start.records
        && let Some(state) = bookmark.as_mut()
    {
        for s in &tracked {
            let files = s
                .files
                .iter()
                .map(|f| ProcessedFile {
                    url: f.url.clone(),
                    size: f.size,
                    modified_ms: f.modified_ms,
                    etag: f.etag.clone(),
                    run_id: run_id.clone(),
                })
                .collect();
            state.record(&s.name, files);
        }
    }

    progress(RunEvent::Committing);
    let result = Box::pin(commit(Commit {
        catalog: catalog.as_ref(),
        policy,
        table: &table,
        table_ref: &table_ref,
        schema: Arc::new(planned.output.schema().as_arrow().clone()),
        partition_by: &planned.partition_by,
        columns: &columns,
        run_id: &run_id,
        rows: rows_written,
        files: written.files,
        carried: start.carried,
        bookmark,
        bookmark_moved: start.records,
        applied_reset: start.reset,
        based_on: start.based_on,
    }))
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

    let quality_table = record_quality(
        lake,
        catalog.as_ref(),
        spec,
        &run_id,
        &table_ref,
        true,
        &quality,
    )
    .await;
    let (scans, in_process) = match written.in_process {
        Some(run) => (
            ScanRows {
                scans: run.scans,
                ..ScanRows::default()
            },
            Some(run.shape),
        ),
        None => {
            let new_jobs = engine.scheduler().run_jobs(&run_id).await;
            (engine.scheduler().scan_rows(&new_jobs).await, None)
        }
    };
    let sources = source_reports(&planned, &scans);
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
        in_process,
        quality,
        quality_table,
        note: None,
    })
}

/// Appends a run's rule outcomes to `sluice_quality.results` (nothing without rules).
/// Returns the table's name, or `None` when there was nothing to record or recording failed
/// (logged: the run's own outcome stands either way).
async fn record_quality(
    lake: &Lake,
    catalog: &dyn Catalog,
    spec: &pb::JobSpec,
    run_id: &str,
    target: &pb::TableRef,
    published: bool,
    results: &[pb::QualityResult],
) -> Option<String> {
    if results.is_empty() {
        return None;
    }
    let evaluation = crate::quality_log::Evaluation {
        run_id,
        job: &spec.name,
        target,
        published,
        results,
    };
    match Box::pin(crate::quality_log::append_results(
        lake,
        catalog,
        &evaluation,
    ))
    .await
    {
        Ok(table) => Some(table),
        Err(e) => {
            tracing::warn!(run = run_id, error = %e, "cannot record the data-quality results");
            None
        }
    }
}

/// Where a run starts from: the table's current version and the job's bookmark.
struct StartingPoint {
    /// Whether the target appends.
    append: bool,
    /// For an append, the current version (its files are carried into the new one).
    carried: Option<Manifest>,
    /// The bookmark the new version carries (recorded into when `records`).
    bookmark: Option<BookmarkState>,
    /// Per tracked source, the files already processed (`None`: bookmarks disabled).
    seen: Option<SeenFiles>,
    /// Whether this run records what it reads (`bookmark: enable`).
    records: bool,
    /// The pending reset the bookmark came from.
    reset: Option<sluice_lake::BookmarkReset>,
    /// The run the catalog points at, when the run depends on it.
    based_on: Option<Option<String>>,
}

/// Reads the table's current version's manifest and the job's bookmark.
async fn starting_point(
    table: &TableLocation,
    spec: &pb::JobSpec,
    registered: Option<&TableEntry>,
) -> Result<StartingPoint, RunError> {
    let target = spec.target.clone().unwrap_or_default();
    let append = target.mode() == pb::WriteMode::Append;
    let current_run = registered.and_then(|r| r.run_id.clone());
    let manifest = match &current_run {
        Some(id) => table.read_manifest(id).await?,
        None => None,
    };
    if append
        && let Some(entry) = registered
        && manifest.is_none()
    {
        return Err(RunError::AppendSchema {
            table: format!("{}.{}", entry.database, entry.name),
            detail: format!(
                "its current version {} has no Sluice manifest to append to",
                entry.location
            ),
        });
    }
    let mode = spec.bookmark();
    let (bookmark, reset, seen) = if mode == pb::BookmarkMode::Disable {
        // The bookmark is neither used nor moved; the new version keeps it as it was.
        let kept = manifest
            .as_ref()
            .and_then(|m| m.bookmark.clone())
            .filter(|b| b.job == spec.name);
        (kept, None, None)
    } else {
        let (state, reset) = table
            .starting_bookmark(&spec.name, manifest.as_ref())
            .await?;
        let seen: SeenFiles = spec
            .sources
            .iter()
            .filter(|s| s.bookmark.unwrap_or(true))
            .map(|s| (s.name.clone(), state.seen(&s.name)))
            .collect();
        (Some(state), reset, Some(seen))
    };
    let depends = append || mode != pb::BookmarkMode::Disable;
    Ok(StartingPoint {
        append,
        carried: if append { manifest } else { None },
        bookmark,
        seen,
        records: mode == pb::BookmarkMode::Enable,
        reset,
        based_on: depends.then_some(current_run),
    })
}

/// Refuses an append whose output columns (names, types, partition keys) differ from the
/// registered table's.
fn check_append_columns(
    entry: &TableEntry,
    planned: &PlannedJob,
    columns: &[ColumnEntry],
) -> Result<(), RunError> {
    let describe = |cols: &mut dyn Iterator<Item = (&String, &String)>| {
        cols.map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let data: Vec<&ColumnEntry> = columns
        .iter()
        .filter(|c| !planned.partition_by.contains(&c.name))
        .collect();
    let same_data = data.len() == entry.columns.len()
        && data
            .iter()
            .zip(&entry.columns)
            .all(|(a, b)| a.name == b.name && a.hive_type == b.hive_type);
    let keys: Vec<&String> = entry.partition_keys.iter().map(|k| &k.name).collect();
    let same_keys = keys.len() == planned.partition_by.len()
        && keys.iter().zip(&planned.partition_by).all(|(a, b)| *a == b);
    if same_data && same_keys {
        return Ok(());
    }
    let detail = if same_data {
        format!(
            "partition keys [{}] vs the table's [{}]",
            planned.partition_by.join(", "),
            keys.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!(
            "output: {}; table: {}",
            describe(&mut data.iter().map(|c| (&c.name, &c.hive_type))),
            describe(&mut entry.columns.iter().map(|c| (&c.name, &c.hive_type)))
        )
    };
    Err(RunError::AppendSchema {
        table: format!("{}.{}", entry.database, entry.name),
        detail,
    })
}

/// The report of a run that committed nothing (no new input), with why in its note.
fn nothing_committed(
    run_id: String,
    planned: &PlannedJob,
    registered: Option<TableEntry>,
    table_ref: &pb::TableRef,
    catalog: &'static str,
    started: Instant,
    note: String,
) -> RunReport {
    let table = registered.unwrap_or_else(|| TableEntry {
        database: table_ref.database.clone(),
        name: table_ref.table.clone(),
        location: String::new(),
        classification: "parquet".into(),
        columns: Vec::new(),
        partition_keys: Vec::new(),
        partitions: Vec::new(),
        parameters: Default::default(),
        run_id: None,
        version: 0,
        updated_at: String::new(),
    });
    RunReport {
        run_id,
        sources: source_reports(planned, &ScanRows::default()),
        rows_written: 0,
        files_written: 0,
        bytes_written: 0,
        table,
        versions_removed: 0,
        catalog,
        schema_changes: Vec::new(),
        elapsed: started.elapsed(),
        stages: 0,
        tasks: 0,
        first_task: None,
        in_process: None,
        quality: Vec::new(),
        quality_table: None,
        note: Some(note),
    }
}

/// The bookmark of job `spec` (with the earlier runs it can be rewound to), as of the
/// version its target's catalog entry points at.
pub async fn job_bookmark(
    lake: &Lake,
    catalogs: &Catalogs,
    spec: &pb::JobSpec,
) -> Result<pb::Bookmark, RunError> {
    let target = spec.target.clone().unwrap_or_default();
    let table_ref = target.table.clone().unwrap_or_default();
    let catalog = target_catalog(catalogs, &target).await?;
    let table = lake.table(&target)?;
    let current = catalog
        .get_table(&table_ref.database, &table_ref.table)
        .await?
        .and_then(|e| e.run_id);
    Ok(table.show_bookmark(&spec.name, current.as_deref()).await?)
}

/// Resets the bookmark of job `spec`: its next run reads every file (`to_run_id` `None`) or
/// starts from the bookmark run `to_run_id` left. Returns the bookmark the next run starts
/// from.
pub async fn reset_job_bookmark(
    lake: &Lake,
    catalogs: &Catalogs,
    spec: &pb::JobSpec,
    to_run_id: Option<&str>,
) -> Result<pb::Bookmark, RunError> {
    let target = spec.target.clone().unwrap_or_default();
    lake.table(&target)?.reset_bookmark(to_run_id).await?;
    job_bookmark(lake, catalogs, spec).await
}

/// What each source contributed: its files and bytes, and the rows its scans produced
/// (when the scheduler's metrics name them).
fn source_reports(planned: &PlannedJob, scans: &ScanRows) -> Vec<SourceReport> {
    planned
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
        .collect()
}

/// The run error a failed write stands for: a located bad input row, a timeout, or the
/// execution error itself.
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

/// The output's columns as the catalog registers them; an error names a column Athena
/// cannot take.
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
