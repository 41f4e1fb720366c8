//! Crawls a prefix of Parquet or CSV files into catalog tables, as an AWS Glue crawler does.
//!
//! [`crawl`] lists the prefix, classifies files by extension, reads each file's schema
//! (Parquet footers; the head of CSV files), merges the schemas (compatible types widen,
//! incompatible ones are an error naming both files), and turns `key=value` folders into
//! Hive partitions. A prefix holding data files or partition folders is one table; a prefix
//! holding plain folders is one table per folder. [`register`] commits a crawled table to a
//! catalog under a schema change policy.

mod infer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;
use sluice_catalog::schema::{Registered, SchemaChangePolicy, reconcile};
use sluice_catalog::{Catalog, CatalogError, ColumnEntry, PartitionEntry, TableEntry};
use url::Url;

pub use infer::FileSchema;

/// Files whose schemas are read at once.
const CONCURRENT_READS: usize = 8;

/// Why a crawl failed. Nothing is registered when it does.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    /// Listing or reading the store failed.
    #[error("cannot read {url}: {source}")]
    Store {
        /// What was being read.
        url: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// The prefix holds no Parquet or CSV files.
    #[error("no Parquet or CSV files under {0}")]
    NoData(String),
    /// A file's schema cannot be read.
    #[error("{file}: {message}")]
    BadFile {
        /// The file's URL.
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// Two files disagree on a column's type.
    #[error(
        "column '{column}' is {first_type} in {first_file} but {other_type} in {other_file}; \
         the types cannot be merged"
    )]
    IncompatibleColumn {
        /// The column.
        column: String,
        /// The file that set the type first.
        first_file: String,
        /// Its type there.
        first_type: String,
        /// The disagreeing file.
        other_file: String,
        /// Its type there.
        other_type: String,
    },
    /// A table mixes Parquet and CSV files.
    #[error("table {table} mixes formats: {first} is {first_format} but {other} is {other_format}")]
    MixedFormats {
        /// The table.
        table: String,
        /// A file of the first format.
        first: String,
        /// Its format.
        first_format: &'static str,
        /// A file of the other format.
        other: String,
        /// Its format.
        other_format: &'static str,
    },
    /// Files sit at different folder depths, so partitions cannot be told apart.
    #[error(
        "table {table}: {first} and {other} sit at different folder depths; \
         partition folders must be equally deep"
    )]
    UnevenDepth {
        /// The table.
        table: String,
        /// One file.
        first: String,
        /// A file at another depth.
        other: String,
    },
    /// The crawl does not fit the options.
    #[error("{0}")]
    Invalid(String),
    /// The catalog refused the table.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// A table found by a crawl, ready to register.
#[derive(Debug, Clone)]
pub struct CrawledTable {
    /// The entry to register (columns, partitions, crawler parameters).
    pub entry: TableEntry,
    /// Data files read.
    pub files: usize,
}

/// What a crawl found.
#[derive(Debug, Clone)]
pub struct CrawlReport {
    /// Tables found, sorted by name.
    pub tables: Vec<CrawledTable>,
    /// Files skipped because they are neither Parquet nor CSV.
    pub skipped: Vec<String>,
}

/// A data file under the prefix.
#[derive(Debug, Clone)]
struct DataFile {
    /// Path components below the prefix (folders, then the file name).
    parts: Vec<String>,
    location: Path,
    size: u64,
    format: infer::Format,
}

/// Crawls `prefix` (a folder URL: `file:///…/` or `s3://bucket/…/`) in `store` into tables
/// of `database`. `table` names the table when the prefix holds one.
pub async fn crawl(
    store: Arc<dyn ObjectStore>,
    prefix: &Url,
    database: &str,
    table: Option<&str>,
) -> Result<CrawlReport, CrawlError> {
    check_name(database, "database")?;
    if let Some(t) = table {
        check_name(t, "table")?;
    }
    let prefix_url = folder_url(prefix);
    let root = Path::from_url_path(prefix_url.path()).map_err(|e| CrawlError::Store {
        url: prefix_url.to_string(),
        source: e.into(),
    })?;
    let metas: Vec<_> = store
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(|source| CrawlError::Store {
            url: prefix_url.to_string(),
            source,
        })?;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for m in metas {
        let Some(rest) = m.location.prefix_match(&root) else {
            continue;
        };
        let parts: Vec<String> = rest.map(|p| p.as_ref().to_string()).collect();
        // Like a crawler: `_SUCCESS`, `_temporary/`, `.hidden` and Sluice's own catalog
        // folder are not data.
        if parts
            .iter()
            .any(|p| p.starts_with('_') || p.starts_with('.'))
        {
            continue;
        }
        let name = parts.last().cloned().unwrap_or_default();
        match infer::Format::of(&name) {
            Some(format) => files.push(DataFile {
                parts,
                location: m.location,
                size: m.size,
                format,
            }),
            None => skipped.push(format!("{prefix_url}{}", parts.join("/"))),
        }
    }
    if files.is_empty() {
        return Err(CrawlError::NoData(prefix_url.to_string()));
    }

    // One table at the prefix, or one per folder below it.
    let single = files
        .iter()
        .any(|f| f.parts.len() == 1 || f.parts[0].contains('='));
    let mut groups: BTreeMap<String, (Url, Vec<DataFile>)> = BTreeMap::new();
    if single && files.iter().all(|f| f.parts.len() == 1) {
        // Loose files: one table unless their columns differ, as a crawler groups them.
        let loose = group_loose_files(&store, &prefix_url, files).await?;
        let one_table = loose.len() == 1;
        for (name, group) in loose {
            // Tables that share a folder are located at their file, as a crawler does.
            let url = match group.as_slice() {
                [only] if !one_table => prefix_url
                    .join(&only.parts[0])
                    .map_err(|e| CrawlError::Invalid(format!("{prefix_url}: {e}")))?,
                _ => prefix_url.clone(),
            };
            groups.insert(name, (url, group));
        }
        if one_table {
            let only = std::mem::take(&mut groups);
            let name = match table {
                Some(t) => t.to_string(),
                None => table_name(last_segment(&prefix_url)),
            };
            for (_, g) in only {
                groups.insert(name.clone(), g);
            }
        }
    } else if single {
        let name = match table {
            Some(t) => t.to_string(),
            None => table_name(last_segment(&prefix_url)),
        };
        groups.insert(name, (prefix_url.clone(), files));
    } else {
        for mut f in files {
            let folder = f.parts.remove(0);
            let url = prefix_url
                .join(&format!("{folder}/"))
                .map_err(|e| CrawlError::Invalid(format!("{prefix_url}{folder}: {e}")))?;
            groups
                .entry(table_name(&folder))
                .or_insert_with(|| (url, Vec::new()))
                .1
                .push(f);
        }
    }
    if let Some(t) = table {
        if groups.len() > 1 {
            let names: Vec<&str> = groups.keys().map(String::as_str).collect();
            return Err(CrawlError::Invalid(format!(
                "{prefix_url} holds {} tables ({}); --table names one table: point the URL at one of them",
                groups.len(),
                names.join(", ")
            )));
        }
        let only = std::mem::take(&mut groups);
        for (_, g) in only {
            groups.insert(t.to_string(), g);
        }
    }
    let mut tables = Vec::new();
    for (name, (url, files)) in groups {
        check_name(&name, "table")?;
        tables.push(crawl_table(&store, database, &name, &url, files).await?);
    }
    Ok(CrawlReport { tables, skipped })
}

/// Registers a crawled table in `catalog`, reconciling with the registered table under
/// `policy`; returns the entry as stored and the schema changes it made.
pub async fn register(
    catalog: &dyn Catalog,
    table: &CrawledTable,
    policy: SchemaChangePolicy,
) -> Result<(TableEntry, Vec<String>), CrawlError> {
    let mut entry = table.entry.clone();
    let previous = catalog.get_table(&entry.database, &entry.name).await?;
    let reconciled = reconcile(
        &format!("{}.{}", entry.database, entry.name),
        previous.as_ref().map(|p| Registered {
            columns: &p.columns,
            partition_keys: &p.partition_keys,
        }),
        &entry.columns,
        &entry.partition_keys,
        policy,
    )?;
    entry.columns = reconciled.columns;
    entry.partition_keys = reconciled.partition_keys;
    let stored = catalog.commit_table(entry).await?;
    Ok((stored, reconciled.changes))
}

async fn crawl_table(
    store: &Arc<dyn ObjectStore>,
    database: &str,
    name: &str,
    url: &Url,
    files: Vec<DataFile>,
) -> Result<CrawledTable, CrawlError> {
    let file_url = |f: &DataFile| {
        if url.path().ends_with('/') {
            format!("{url}{}", f.parts.join("/"))
        } else {
            url.to_string()
        }
    };
    // One format per table.
    let first = &files[0];
    if let Some(other) = files.iter().find(|f| f.format != first.format) {
        return Err(CrawlError::MixedFormats {
            table: name.to_string(),
            first: file_url(first),
            first_format: first.format.name(),
            other: file_url(other),
            other_format: other.format.name(),
        });
    }
    let format = first.format;
    // Equal depth, so folder levels are partition levels.
    let depth = first.parts.len();
    if let Some(other) = files.iter().find(|f| f.parts.len() != depth) {
        return Err(CrawlError::UnevenDepth {
            table: name.to_string(),
            first: file_url(first),
            other: file_url(other),
        });
    }
    let partition_keys = partition_keys(&files, depth - 1);

    let schemas: Vec<FileSchema> = futures::stream::iter(files.iter().map(|f| {
        let store = store.clone();
        let display = file_url(f);
        async move { infer::read_schema(store, &f.location, f.size, f.format, &display).await }
    }))
    .buffered(CONCURRENT_READS)
    .try_collect()
    .await?;

    let columns = merge_schemas(&files, &schemas, &file_url, format)?;
    if let Some(clash) = columns
        .iter()
        .find(|c| partition_keys.iter().any(|k| k.name == c.name))
    {
        return Err(CrawlError::Invalid(format!(
            "table {name}: '{}' is both a column in the files and a partition folder key",
            clash.name
        )));
    }

    // Each partition's own rows, files and bytes, as a crawler counts them per partition.
    let mut partitions: BTreeMap<Vec<String>, (u64, u64, u64)> = BTreeMap::new();
    for (f, schema) in files.iter().zip(&schemas) {
        let folders = &f.parts[..depth - 1];
        if !folders.is_empty() {
            let counts = partitions.entry(folders.to_vec()).or_default();
            counts.0 += schema.rows;
            counts.1 += 1;
            counts.2 += f.size;
        }
    }
    let partitions = partitions
        .into_iter()
        .map(|(folders, (rows, objects, bytes))| PartitionEntry {
            values: folders
                .iter()
                .map(|d| d.split_once('=').map(|(_, v)| v).unwrap_or(d).to_string())
                .collect(),
            location: format!("{url}{}/", folders.join("/")),
            rows: Some(rows),
            objects: Some(objects),
            bytes: Some(bytes),
        })
        .collect();

    let records: u64 = schemas.iter().map(|s| s.rows).sum();
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let mut parameters =
        sluice_catalog::crawler_parameters(format.name(), records, files.len() as u64, bytes);
    if format == infer::Format::Csv {
        let quoted = schemas.iter().any(|s| s.quoted);
        parameters.insert("delimiter".into(), ",".into());
        parameters.insert("skip.header.line.count".into(), "1".into());
        parameters.insert("columnsOrdered".into(), "true".into());
        parameters.insert("areColumnsQuoted".into(), quoted.to_string());
    }
    Ok(CrawledTable {
        entry: TableEntry {
            database: database.to_string(),
            name: name.to_string(),
            location: url.to_string(),
            classification: format.name().to_string(),
            columns,
            partition_keys,
            partitions,
            parameters,
            run_id: None,
            version: 0,
            updated_at: String::new(),
        },
        files: files.len(),
    })
}

/// Share of columns two files must have in common to be one table (as a Glue crawler's
/// default grouping).
const SAME_TABLE_OVERLAP: f64 = 0.7;

/// Groups loose files (no folders) into tables: a file joins the first group whose columns
/// overlap its own by at least [`SAME_TABLE_OVERLAP`]; other files start a table named
/// after the file.
async fn group_loose_files(
    store: &Arc<dyn ObjectStore>,
    prefix: &Url,
    files: Vec<DataFile>,
) -> Result<BTreeMap<String, Vec<DataFile>>, CrawlError> {
    let schemas: Vec<FileSchema> = futures::stream::iter(files.iter().map(|f| {
        let store = store.clone();
        let display = format!("{prefix}{}", f.parts.join("/"));
        async move { infer::read_schema(store, &f.location, f.size, f.format, &display).await }
    }))
    .buffered(CONCURRENT_READS)
    .try_collect()
    .await?;
    let mut groups: Vec<(String, BTreeSet<String>, Vec<DataFile>)> = Vec::new();
    for (file, schema) in files.into_iter().zip(schemas) {
        let names: BTreeSet<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
        let similar = groups.iter_mut().find(|(_, cols, _)| {
            let common = cols.intersection(&names).count() as f64;
            let all = cols.union(&names).count().max(1) as f64;
            common / all >= SAME_TABLE_OVERLAP
        });
        match similar {
            Some((_, cols, members)) => {
                cols.extend(names);
                members.push(file);
            }
            None => {
                let stem = file.parts[0]
                    .rsplit_once('.')
                    .map(|(s, _)| s)
                    .unwrap_or(&file.parts[0]);
                groups.push((table_name(stem), names, vec![file]));
            }
        }
    }
    Ok(groups
        .into_iter()
        .map(|(name, _, files)| (name, files))
        .collect())
}

/// Partition keys for `levels` folder levels: `key` where every folder of a level is
/// `key=value` with one key, else `partition_<i>` as a crawler names them.
fn partition_keys(files: &[DataFile], levels: usize) -> Vec<ColumnEntry> {
    (0..levels)
        .map(|i| {
            let keys: BTreeSet<Option<&str>> = files
                .iter()
                .map(|f| f.parts[i].split_once('=').map(|(k, _)| k))
                .collect();
            let name = match keys.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(k)] => table_name(k),
                _ => format!("partition_{i}"),
            };
            ColumnEntry {
                name,
                hive_type: "string".into(),
            }
        })
        .collect()
}

/// Merges per-file schemas in file order: new columns are appended, types widen where one
/// widens to the other (and integer with floating point in CSV, as a crawler does).
fn merge_schemas(
    files: &[DataFile],
    schemas: &[FileSchema],
    file_url: &dyn Fn(&DataFile) -> String,
    format: infer::Format,
) -> Result<Vec<ColumnEntry>, CrawlError> {
    let mut merged: Vec<(ColumnEntry, usize)> = Vec::new();
    for (i, schema) in schemas.iter().enumerate() {
        for col in &schema.columns {
            let Some((existing, first)) = merged.iter_mut().find(|(c, _)| c.name == col.name)
            else {
                merged.push((col.clone(), i));
                continue;
            };
            if existing.hive_type == col.hive_type {
                continue;
            }
            let wider = sluice_catalog::schema::wider_type(&existing.hive_type, &col.hive_type)
                .map(str::to_string)
                .or_else(|| {
                    let pair = [existing.hive_type.as_str(), col.hive_type.as_str()];
                    let numeric = pair.iter().all(|t| *t == "bigint" || *t == "double");
                    (format == infer::Format::Csv && numeric).then(|| "double".to_string())
                });
            match wider {
                Some(t) => existing.hive_type = t,
                None => {
                    return Err(CrawlError::IncompatibleColumn {
                        column: col.name.clone(),
                        first_file: file_url(&files[*first]),
                        first_type: existing.hive_type.clone(),
                        other_file: file_url(&files[i]),
                        other_type: col.hive_type.clone(),
                    });
                }
            }
        }
    }
    Ok(merged.into_iter().map(|(c, _)| c).collect())
}

fn folder_url(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

fn last_segment(url: &Url) -> &str {
    url.path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .or(url.host_str())
        .unwrap_or("table")
}

/// A folder name as an Athena table or column name: lower case, other characters as `_`.
fn table_name(folder: &str) -> String {
    folder
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn check_name(name: &str, what: &str) -> Result<(), CrawlError> {
    sluice_job::names::check_catalog_name(name)
        .map_err(|e| CrawlError::Invalid(format!("{what} name {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray};
    use object_store::local::LocalFileSystem;

    fn write_parquet(path: &std::path::Path, batch: &RecordBatch) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::File::create(path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
    }

    fn ids(values: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(values.to_vec())) as _)])
            .unwrap()
    }

    fn prefix(dir: &std::path::Path) -> Url {
        Url::from_directory_path(dir).unwrap()
    }

    #[tokio::test]
    async fn hive_folders_become_partitions_and_files_merge() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Sales-Data");
        write_parquet(&root.join("year=2023/month=1/a.parquet"), &ids(&[1, 2]));
        let wider = RecordBatch::try_from_iter([
            ("id", Arc::new(Int32Array::from(vec![3])) as _),
            ("name", Arc::new(StringArray::from(vec!["x"])) as _),
        ])
        .unwrap();
        write_parquet(&root.join("year=2024/month=2/b.parquet"), &wider);
        std::fs::write(root.join("_SUCCESS"), "").unwrap();
        std::fs::write(root.join("year=2024/notes.txt"), "hi").unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let report = crawl(store, &prefix(&root), "db", None).await.unwrap();
        assert_eq!(report.tables.len(), 1);
        assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
        let t = &report.tables[0].entry;
        assert_eq!(t.name, "sales_data");
        let cols: Vec<(&str, &str)> = t
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.hive_type.as_str()))
            .collect();
        assert_eq!(cols, [("id", "bigint"), ("name", "string")]);
        let keys: Vec<&str> = t.partition_keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(keys, ["year", "month"]);
        let values: Vec<Vec<String>> = t.partitions.iter().map(|p| p.values.clone()).collect();
        assert_eq!(values, [vec!["2023", "1"], vec!["2024", "2"]]);
        assert!(
            t.partitions[0]
                .location
                .ends_with("Sales-Data/year=2023/month=1/")
        );
        assert_eq!(t.parameters["recordCount"], "3");
        assert_eq!(t.parameters["objectCount"], "2");
    }

    #[tokio::test]
    async fn incompatible_types_name_both_files() {
        let dir = tempfile::tempdir().unwrap();
        write_parquet(&dir.path().join("t/a.parquet"), &ids(&[1]));
        let text =
            RecordBatch::try_from_iter([("id", Arc::new(StringArray::from(vec!["one"])) as _)])
                .unwrap();
        write_parquet(&dir.path().join("t/b.parquet"), &text);
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let e = crawl(store, &prefix(&dir.path().join("t")), "db", None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.parquet") && e.contains("b.parquet"), "{e}");
        assert!(e.contains("bigint") && e.contains("string"), "{e}");
    }

    #[tokio::test]
    async fn plain_folders_are_one_table_each_and_csv_is_classified() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("albums")).unwrap();
        std::fs::create_dir_all(dir.path().join("artists")).unwrap();
        std::fs::write(
            dir.path().join("albums/a.csv"),
            "id,Title,year\n1,\"A, B\",2001\n2,C,2002.5\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("artists/x.csv"), "id,name\n1,x\n").unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let report = crawl(store.clone(), &prefix(dir.path()), "db", None)
            .await
            .unwrap();
        let names: Vec<&str> = report
            .tables
            .iter()
            .map(|t| t.entry.name.as_str())
            .collect();
        assert_eq!(names, ["albums", "artists"]);
        let albums = &report.tables[0].entry;
        assert_eq!(albums.classification, "csv");
        assert_eq!(albums.columns[1].name, "title");
        assert_eq!(albums.columns[2].hive_type, "double");
        assert_eq!(albums.parameters["areColumnsQuoted"], "true");
        assert_eq!(albums.parameters["recordCount"], "2");
        let e = crawl(store, &prefix(dir.path()), "db", Some("t"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds 2 tables"), "{e}");
    }
}
