//! Table catalogs: where a table's current data lives and what its columns are.
//!
//! [`Catalog`] is what jobs commit to and queries read from. [`EmbeddedCatalog`] keeps one
//! JSON document per table inside the lake, replaced atomically (a single object put), so
//! it needs no server. [`GlueCatalog`] registers the same entries in the AWS Glue Data
//! Catalog in the shape a Glue crawler gives them. [`Catalogs`] picks one per target.

mod embedded;
mod glue;
pub mod schema;
pub mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedCatalog;
pub use glue::GlueCatalog;

/// Errors from a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The backing store failed.
    #[error("catalog storage error at {location}: {source}")]
    Store {
        /// The object the failure concerns.
        location: String,
        #[source]
        /// The underlying error.
        source: object_store::Error,
    },
    /// A stored entry could not be read.
    #[error("catalog entry {location} is corrupt: {source}")]
    Corrupt {
        /// The object the failure concerns.
        location: String,
        #[source]
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A schema cannot be represented in the catalog.
    #[error("{0}")]
    Schema(String),
    /// A column's type changed in a way readers of the table cannot follow.
    #[error(
        "table {table}: column '{column}' is registered as {registered} but the data has {found}; \
         the types are incompatible (cast the column, or write to a new table)"
    )]
    IncompatibleType {
        /// `database.table`.
        table: String,
        /// The column.
        column: String,
        /// Type in the catalog.
        registered: String,
        /// Type in the new data.
        found: String,
    },
    /// An AWS Glue call failed.
    #[error("glue {operation} failed for {target}: {message}")]
    Glue {
        /// The API operation (`GetTable`, `BatchCreatePartition`, …).
        operation: &'static str,
        /// What it was called for.
        target: String,
        /// The service's message.
        message: String,
    },
    /// An AWS Glue call failed with an error (the SDK's, kept as the source).
    #[error(
        "glue {operation} failed for {target}: {}",
        aws_sdk_glue::error::DisplayErrorContext(&**.source)
    )]
    GlueCall {
        /// The API operation (`GetTable`, `BatchCreatePartition`, …).
        operation: &'static str,
        /// What it was called for.
        target: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A column as the catalog knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ColumnEntry {
    /// Column name.
    pub name: String,
    /// Athena/Hive type name (`bigint`, `string`, `decimal(10,2)`).
    #[serde(rename = "type")]
    pub hive_type: String,
}

/// One Hive partition of a table.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionEntry {
    /// Values of the partition keys, in key order.
    pub values: Vec<String>,
    /// URL of its folder, ending in `/`.
    pub location: String,
    /// Rows in the partition, when known: its own `recordCount` (a partition never
    /// carries the table's total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Data files in the partition, when known: its `objectCount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<u64>,
    /// Bytes of those files, when known: its `sizeKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// A registered table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableEntry {
    /// Database (Glue database, Flight SQL schema).
    pub database: String,
    /// Table name.
    pub name: String,
    /// URL of the current data, ending in `/`.
    pub location: String,
    /// `parquet` or `csv`.
    pub classification: String,
    /// Data columns (partition keys excluded).
    pub columns: Vec<ColumnEntry>,
    /// Partition key columns, in folder order.
    pub partition_keys: Vec<ColumnEntry>,
    /// The table's partitions.
    pub partitions: Vec<PartitionEntry>,
    /// Crawler-style parameters: recordCount, objectCount, sizeKey, averageRecordSize, ….
    pub parameters: BTreeMap<String, String>,
    /// The run that wrote the current data, if a Sluice job did.
    pub run_id: Option<String>,
    /// Increases by one with every commit.
    pub version: u64,
    /// When the entry was last committed (RFC 3339).
    pub updated_at: String,
}

/// A place where tables are registered.
#[async_trait::async_trait]
pub trait Catalog: Send + Sync {
    /// A short name for messages (`embedded`, `glue`).
    fn kind(&self) -> &'static str;
    /// The table, if registered.
    async fn get_table(
        &self,
        database: &str,
        name: &str,
    ) -> Result<Option<TableEntry>, CatalogError>;
    /// Every registered table, sorted by database and name.
    async fn list_tables(&self) -> Result<Vec<TableEntry>, CatalogError>;
    /// Creates or replaces the table in one atomic step; returns the entry as stored
    /// (with its new version number).
    async fn commit_table(&self, entry: TableEntry) -> Result<TableEntry, CatalogError>;
}

/// Who registered a table, in its `UPDATED_BY_CRAWLER` parameter, when Sluice did (a job's
/// target or `sluice crawl`).
pub const UPDATED_BY: &str = "sluice";

/// The parameters a Glue crawler sets on a table it registers, computed from the data:
/// the counts below plus `UPDATED_BY_CRAWLER` ([`UPDATED_BY`]) and the crawler's schema
/// serializer and deserializer versions. Job targets and `sluice crawl` both use them.
pub fn crawler_parameters(
    classification: &str,
    records: u64,
    objects: u64,
    bytes: u64,
) -> BTreeMap<String, String> {
    let mut p = count_parameters(records, objects, bytes);
    p.insert("classification".into(), classification.into());
    p.insert("compressionType".into(), "none".into());
    p.insert("typeOfData".into(), "file".into());
    p.insert("UPDATED_BY_CRAWLER".into(), UPDATED_BY.into());
    p.insert("CrawlerSchemaSerializerVersion".into(), "1.0".into());
    p.insert("CrawlerSchemaDeserializerVersion".into(), "1.0".into());
    p
}

/// The crawler's size parameters of a table or of one partition: `recordCount`,
/// `objectCount`, `sizeKey` and `averageRecordSize`.
pub fn count_parameters(records: u64, objects: u64, bytes: u64) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    p.insert("recordCount".into(), records.to_string());
    p.insert("objectCount".into(), objects.to_string());
    p.insert("sizeKey".into(), bytes.to_string());
    let avg = bytes.checked_div(records).unwrap_or(0);
    p.insert("averageRecordSize".into(), avg.to_string());
    p
}

/// The parameters of one partition of `table`: the table's, with the size parameters
/// replaced by the partition's own. A count the partition does not know is left out rather
/// than given the table's total.
pub fn partition_parameters(
    table: &BTreeMap<String, String>,
    partition: &PartitionEntry,
) -> BTreeMap<String, String> {
    let mut p = table.clone();
    for key in ["recordCount", "objectCount", "sizeKey", "averageRecordSize"] {
        p.remove(key);
    }
    if let Some(rows) = partition.rows {
        p.insert("recordCount".into(), rows.to_string());
        if let Some(bytes) = partition.bytes {
            let avg = bytes.checked_div(rows).unwrap_or(0);
            p.insert("averageRecordSize".into(), avg.to_string());
        }
    }
    if let Some(objects) = partition.objects {
        p.insert("objectCount".into(), objects.to_string());
    }
    if let Some(bytes) = partition.bytes {
        p.insert("sizeKey".into(), bytes.to_string());
    }
    p
}

/// How files of a classification are declared to Hive readers (Athena), as a crawler
/// declares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFormat {
    /// Hadoop input format class.
    pub input_format: &'static str,
    /// Hadoop output format class.
    pub output_format: &'static str,
    /// SerDe class.
    pub serde: &'static str,
    /// SerDe parameters.
    pub serde_parameters: BTreeMap<String, String>,
}

/// The storage format of a `parquet` or `csv` table; for CSV the table `parameters`
/// `delimiter` and `areColumnsQuoted` choose between LazySimpleSerDe and OpenCSVSerde.
pub fn storage_format(
    classification: &str,
    parameters: &BTreeMap<String, String>,
) -> StorageFormat {
    if classification == "csv" {
        let delimiter = parameters
            .get("delimiter")
            .cloned()
            .unwrap_or_else(|| ",".into());
        let quoted = parameters.get("areColumnsQuoted").map(String::as_str) == Some("true");
        let (serde, serde_parameters) = if quoted {
            (
                "org.apache.hadoop.hive.serde2.OpenCSVSerde",
                BTreeMap::from([
                    ("separatorChar".to_string(), delimiter),
                    ("quoteChar".to_string(), "\"".to_string()),
                ]),
            )
        } else {
            (
                "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                BTreeMap::from([("field.delim".to_string(), delimiter)]),
            )
        };
        return StorageFormat {
            input_format: "org.apache.hadoop.mapred.TextInputFormat",
            output_format: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            serde,
            serde_parameters,
        };
    }
    StorageFormat {
        input_format: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        output_format: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        serde: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        serde_parameters: BTreeMap::from([("serialization.format".to_string(), "1".to_string())]),
    }
}

/// Which catalog a table is registered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatalogKind {
    /// JSON entries inside the lake.
    #[default]
    Embedded,
    /// The AWS Glue Data Catalog.
    Glue,
}

impl std::str::FromStr for CatalogKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "embedded" => Ok(Self::Embedded),
            "glue" => Ok(Self::Glue),
            other => Err(format!(
                "unknown catalog '{other}': expected embedded or glue"
            )),
        }
    }
}

/// The catalogs a runner can register tables in: the lake's embedded one, and Glue,
/// connected on first use.
pub struct Catalogs {
    default: CatalogKind,
    embedded: Arc<dyn Catalog>,
    glue: tokio::sync::OnceCell<Arc<dyn Catalog>>,
}

impl Catalogs {
    /// The set with `embedded` as the lake's catalog and `default` used when a target
    /// names none.
    pub fn new(embedded: Arc<dyn Catalog>, default: CatalogKind) -> Self {
        Self {
            default,
            embedded,
            glue: tokio::sync::OnceCell::new(),
        }
    }

    /// The catalog used when a target names none.
    pub fn default_kind(&self) -> CatalogKind {
        self.default
    }

    /// The catalog of `kind` (the default when `None`).
    pub async fn get(&self, kind: Option<CatalogKind>) -> Result<Arc<dyn Catalog>, CatalogError> {
        match kind.unwrap_or(self.default) {
            CatalogKind::Embedded => Ok(self.embedded.clone()),
            CatalogKind::Glue => self
                .glue
                .get_or_try_init(|| async {
                    let glue: Arc<dyn Catalog> = Arc::new(GlueCatalog::from_env().await?);
                    Ok(glue)
                })
                .await
                .cloned(),
        }
    }
}
