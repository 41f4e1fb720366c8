//! Table catalogs: where a table's current data lives and what its columns are.
//!
//! [`Catalog`] is what jobs commit to and queries read from. [`EmbeddedCatalog`] keeps one
//! JSON document per table inside the lake, replaced atomically (a single object put), so
//! it needs no server. The entry mirrors what a Glue crawler registers for a Parquet table.

mod embedded;
pub mod types;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedCatalog;

/// Errors from a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The backing store failed.
    #[error("catalog storage error at {location}: {source}")]
    Store {
        location: String,
        #[source]
        source: object_store::Error,
    },
    /// A stored entry could not be read.
    #[error("catalog entry {location} is corrupt: {source}")]
    Corrupt {
        location: String,
        #[source]
        source: serde_json::Error,
    },
    /// A schema cannot be represented in the catalog.
    #[error("{0}")]
    Schema(String),
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionEntry {
    /// Values of the partition keys, in key order.
    pub values: Vec<String>,
    /// URL of its folder, ending in `/`.
    pub location: String,
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

/// Parameters a Glue crawler sets on a Parquet table, computed from the written data.
pub fn crawler_parameters(
    classification: &str,
    records: u64,
    objects: u64,
    bytes: u64,
) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    p.insert("classification".into(), classification.into());
    p.insert("compressionType".into(), "none".into());
    p.insert("typeOfData".into(), "file".into());
    p.insert("recordCount".into(), records.to_string());
    p.insert("objectCount".into(), objects.to_string());
    p.insert("sizeKey".into(), bytes.to_string());
    let avg = bytes.checked_div(records).unwrap_or(0);
    p.insert("averageRecordSize".into(), avg.to_string());
    p
}
