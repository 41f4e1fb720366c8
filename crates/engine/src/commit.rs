//! Committing a written run: its reported files become the version, which is sealed, and
//! only then does the catalog move to it; older versions and staging folders go after.

use datafusion::arrow::datatypes::SchemaRef;
use sluice_catalog::schema::{Reconciled, Registered, SchemaChangePolicy, reconcile};
use sluice_catalog::{Catalog, CatalogError, ColumnEntry, PartitionEntry, TableEntry};
use sluice_lake::{BookmarkReset, BookmarkState, DataFile, Manifest, TableLocation};
use sluice_proto as pb;
use std::collections::BTreeMap;

use crate::failpoint::{crash_point, failpoint};
use crate::run::RunError;

/// Deletes a failed run's version and staging folders; a failure to do so is logged (the
/// catalog never pointed at them, so readers are not affected).
pub(crate) async fn discard_version(table: &TableLocation, run_id: &str) {
    if let Err(e) = table.delete_version(run_id).await {
        tracing::warn!(run = run_id, error = %e, "cannot delete the failed run's files");
    }
}

/// Name of the file an empty result is written as.
const EMPTY_FILE: &str = "part-00000-empty.parquet";

/// A Parquet file with `schema` holding `batch` (no rows without one): an empty result is
/// written so, as Spark and DuckDB write it, so that readers see a table with its columns.
pub(crate) fn parquet_bytes(
    schema: SchemaRef,
    batch: Option<&datafusion::arrow::record_batch::RecordBatch>,
) -> Result<Vec<u8>, RunError> {
    use datafusion::parquet::arrow::ArrowWriter;
    let mut buffer = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut buffer, schema, None).map_err(RunError::EmptyFile)?;
    if let Some(batch) = batch {
        writer.write(batch).map_err(RunError::EmptyFile)?;
    }
    writer.close().map_err(RunError::EmptyFile)?;
    Ok(buffer)
}

/// The catalog's schema change policy for `target`.
pub(crate) fn schema_policy(target: &pb::Target) -> SchemaChangePolicy {
    match target.schema_change() {
        pb::SchemaChangePolicy::Update => SchemaChangePolicy::Update,
        pb::SchemaChangePolicy::Log => SchemaChangePolicy::Log,
    }
}

/// The columns and partition keys to register, given the table as registered now.
pub(crate) fn table_columns(
    registered: Option<&TableEntry>,
    table_ref: &pb::TableRef,
    partition_by: &[String],
    columns: &[ColumnEntry],
    policy: SchemaChangePolicy,
) -> Result<Reconciled, CatalogError> {
    let partition_keys: Vec<ColumnEntry> = partition_by
        .iter()
        .map(|p| ColumnEntry {
            name: p.clone(),
            hive_type: "string".into(),
        })
        .collect();
    let data_columns: Vec<ColumnEntry> = columns
        .iter()
        .filter(|c| !partition_by.contains(&c.name))
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

/// What a commit needs: the finished run and where it goes.
pub(crate) struct Commit<'a> {
    /// The catalog the table is registered in.
    pub(crate) catalog: &'a dyn Catalog,
    /// How registered columns follow the data.
    pub(crate) policy: SchemaChangePolicy,
    /// The table's place in the lake.
    pub(crate) table: &'a TableLocation,
    /// The table's name.
    pub(crate) table_ref: &'a pb::TableRef,
    /// The output's schema (an empty result is written with it).
    pub(crate) schema: SchemaRef,
    /// The partition columns, in order.
    pub(crate) partition_by: &'a [String],
    /// The output's columns, as the catalog registers them.
    pub(crate) columns: &'a [ColumnEntry],
    /// The run.
    pub(crate) run_id: &'a str,
    /// Rows the write tasks reported.
    pub(crate) rows: u64,
    /// The files the write tasks reported, relative to the run's staging folder.
    pub(crate) files: Vec<DataFile>,
    /// For an append: the previous version, whose files the new version holds too.
    pub(crate) carried: Option<Manifest>,
    /// The job's bookmark as of this version, sealed into its manifest.
    pub(crate) bookmark: Option<BookmarkState>,
    /// Whether the bookmark moved (an `enable` run): then it is also saved as this run's
    /// snapshot for rewinds, and the reset it started from (if any) is done.
    pub(crate) bookmark_moved: bool,
    /// The pending reset this run started from.
    pub(crate) applied_reset: Option<BookmarkReset>,
    /// The run the catalog pointed at when the run started, when the run depends on it (an
    /// append, a bookmarked run): a commit that finds another one refuses to go on.
    pub(crate) based_on: Option<Option<String>>,
}

/// What a commit did.
pub(crate) struct Committed {
    /// The table as now registered.
    pub(crate) entry: TableEntry,
    /// The sealed version's manifest.
    pub(crate) manifest: Manifest,
    /// Old versions removed.
    pub(crate) versions_removed: usize,
    /// How the registered columns changed.
    pub(crate) schema_changes: Vec<String>,
}

/// Publishes the run's reported files as its version, seals it, and moves the catalog to it;
/// then removes what older runs left.
pub(crate) async fn commit(commit: Commit<'_>) -> Result<Committed, RunError> {
    let Commit {
        catalog,
        policy,
        table,
        table_ref,
        schema,
        partition_by,
        columns,
        run_id,
        rows,
        mut files,
        carried,
        bookmark,
        bookmark_moved,
        applied_reset,
        based_on,
    } = commit;
    let carries_files = carried.as_ref().is_some_and(|m| !m.files.is_empty());
    if files.is_empty() && partition_by.is_empty() && !carries_files {
        // An empty result is a table with the output's columns and no rows.
        let empty = table
            .put_staged(run_id, EMPTY_FILE, parquet_bytes(schema, None)?)
            .await?;
        files.push(empty);
    }
    // Exactly the files the successful tasks reported move into the version folder; anything
    // else in the staging folder is from a failed, retried or superseded task attempt and
    // never becomes part of the table.
    table.publish(run_id, &files).await?;
    // An append's version also holds the previous version's files, copied as they are.
    let mut rows = rows;
    if let Some(previous) = &carried {
        table
            .copy_from_version(&previous.run_id, run_id, &previous.files)
            .await?;
        rows += previous.rows;
        files.extend(previous.files.iter().cloned());
        files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    crash_point("after_publish");
    let manifest = Manifest {
        run_id: run_id.to_string(),
        rows,
        files,
        bookmark: bookmark.clone(),
    };
    table.seal(&manifest).await?;
    crash_point("after_seal");
    if failpoint("before_commit") {
        return Err(RunError::Failpoint("before_commit"));
    }
    if failpoint("slow_commit") {
        eprintln!("failpoint slow_commit: holding the commit 10 s");
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    }
    let previous = catalog
        .get_table(&table_ref.database, &table_ref.table)
        .await?;
    if let Some(expected) = &based_on {
        let now = previous.as_ref().and_then(|p| p.run_id.clone());
        if &now != expected {
            return Err(RunError::Moved {
                table: format!("{}.{}", table_ref.database, table_ref.table),
                expected: expected.clone().unwrap_or_else(|| "none".into()),
                found: now.unwrap_or_else(|| "none".into()),
            });
        }
    }
    let version_url = table.version_url(run_id);
    let reconciled = table_columns(previous.as_ref(), table_ref, partition_by, columns, policy)?;
    for change in &reconciled.changes {
        let applied = match policy {
            SchemaChangePolicy::Update => "table updated",
            SchemaChangePolicy::Log => "table columns kept (schema_change: log)",
        };
        tracing::warn!(table = %format!("{}.{}", table_ref.database, table_ref.table), "{change}; {applied}");
    }
    let partitions = partitions_of(&manifest, partition_by, &version_url);
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
    if bookmark_moved && let Some(state) = &bookmark {
        // History for rewinds; losing it (a crash right here) loses only a rewind point.
        if let Err(e) = table.write_bookmark_snapshot(run_id, state).await {
            tracing::warn!(run = run_id, error = %e, "cannot save the bookmark snapshot");
        }
        if let Some(reset) = &applied_reset
            && let Err(e) = table.clear_bookmark_reset(reset).await
        {
            tracing::warn!(run = run_id, error = %e, "cannot clear the bookmark reset");
        }
    }
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

/// One catalog partition per `key=value` folder of the manifest's files, with its counts.
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
    use super::*;

    fn file(path: &str, size: u64, rows: Option<u64>) -> DataFile {
        DataFile {
            path: path.into(),
            size,
            rows,
        }
    }

    /// One partition per `key=value` folder, its values unescaped, with the counts of its
    /// own files only; a file whose rows are unknown makes its partition's rows unknown.
    #[test]
    fn partitions_are_the_manifests_folders_with_their_own_counts() {
        let manifest = Manifest {
            run_id: "1".into(),
            rows: 0,
            files: vec![
                file("genre=a%2Fb/year=2020/part-0.parquet", 10, Some(1)),
                file("genre=a%2Fb/year=2020/part-1.parquet", 20, Some(2)),
                file("genre=pop/year=2021/part-0.parquet", 40, None),
                file("genre=pop/year=2021/part-1.parquet", 80, Some(8)),
            ],
            bookmark: None,
        };
        let keys = ["genre".to_string(), "year".to_string()];
        let version = "s3://b/lake/db/t/run-1/";
        let partition = |values: [&str; 2], folder: &str, rows, objects, bytes| PartitionEntry {
            values: values.map(String::from).to_vec(),
            location: format!("{version}{folder}/"),
            rows,
            objects: Some(objects),
            bytes: Some(bytes),
        };
        assert_eq!(
            partitions_of(&manifest, &keys, version),
            [
                partition(["a/b", "2020"], "genre=a%2Fb/year=2020", Some(3), 2, 30),
                partition(["pop", "2021"], "genre=pop/year=2021", None, 2, 120),
            ]
        );
        assert!(partitions_of(&manifest, &[], version).is_empty());
    }
}
