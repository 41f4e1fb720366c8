//! Crawls a prefix of Parquet or CSV files into catalog tables, as an AWS Glue crawler does.
//!
//! [`crawl`] lists the prefix, classifies files by extension, reads each file's schema
//! (Parquet footers; the head of CSV files), merges the schemas (compatible types widen,
//! incompatible ones are an error naming both files), and turns `key=value` folders into
//! Hive partitions. A prefix holding data files or partition folders is one table; a prefix
//! holding plain folders is one table per folder. [`register`] commits a crawled table to a
//! catalog under a schema change policy.

mod grouping;
mod infer;
mod listing;
mod table;

use std::sync::Arc;

use object_store::ObjectStore;
use sluice_catalog::schema::{Registered, SchemaChangePolicy, reconcile};
use sluice_catalog::{Catalog, CatalogError, TableEntry};
use url::Url;

use listing::folder_url;

pub use infer::FileSchema;

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
    let (files, skipped) = listing::list_data_files(&store, &prefix_url).await?;
    let groups = grouping::group_tables(&store, &prefix_url, files, table).await?;
    let mut tables = Vec::new();
    for (name, (url, files)) in groups {
        check_name(&name, "table")?;
        tables.push(table::build_table(&store, database, &name, &url, files).await?);
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

    /// Folder names as Sluice's writer (and Spark) leave them, escaped by the object
    /// store's path rules: the catalog holds the values, each partition its own counts.
    #[tokio::test]
    async fn partition_folder_values_are_percent_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        for (folder, rows) in [
            ("kind=a%2Fb", &[1, 2][..]),
            ("kind=100%25", &[3][..]),
            ("kind=x=y", &[4][..]),
            ("kind=plain", &[5, 6, 7][..]),
        ] {
            write_parquet(&root.join(folder).join("part-0.parquet"), &ids(rows));
        }
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let report = crawl(store, &prefix(&root), "db", None).await.unwrap();
        let t = &report.tables[0].entry;
        let mut found: Vec<(String, Option<u64>, bool)> = t
            .partitions
            .iter()
            .map(|p| {
                let folder_kept = p.location.ends_with('/')
                    && std::path::Path::new(p.location.trim_start_matches("file://")).is_dir();
                (p.values.join("|"), p.rows, folder_kept)
            })
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("100%".to_string(), Some(1), true),
                ("a/b".to_string(), Some(2), true),
                ("plain".to_string(), Some(3), true),
                ("x=y".to_string(), Some(1), true),
            ]
        );
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
