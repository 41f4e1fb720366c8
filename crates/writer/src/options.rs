//! What a write is told and what it returns: the leaf the logical node, the physical
//! plan and the codecs all depend on.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// Where and how to write.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Serialize, Deserialize)]
pub struct WriteOptions {
    /// Folder URL the files go to, ending in `/`.
    pub folder_url: String,
    /// Parquet compression: `snappy`, `zstd(3)`, `gzip(6)`, `uncompressed`.
    pub compression: String,
    /// Hive partition columns: each task writes the rows of every `key=value` folder it
    /// meets into a file of its own there, without the partition columns.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// A file in the folder (its name) that exists while the write's run may still keep
    /// files there. A task that finds it gone once its files are closed deletes them: the
    /// run has ended (failed, cancelled or committed) and its folder was cleared, so they
    /// would only be left behind. `None`: files are always kept.
    #[serde(default)]
    pub live_marker: Option<String>,
}

/// The rows a write returns: one per written file.
pub fn written_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("file", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
    ]))
}
