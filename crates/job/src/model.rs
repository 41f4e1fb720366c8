//! The job file as written by users (YAML), before it becomes a proto `JobSpec`.

use indexmap::IndexMap;
use serde::Deserialize;

/// The whole job file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Staging base: a folder (relative to the job file) or `s3://bucket/prefix`.
    #[serde(default)]
    pub staging: Option<String>,
    pub sources: IndexMap<String, SourceFile>,
    /// Each item is a single-key map: `- join: {...}`.
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub transforms: Vec<TransformFile>,
    pub target: TargetFile,
    #[serde(default)]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub max_retries: u32,
}

/// One named source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceFile {
    pub path: String,
    /// `csv` or `parquet`; by default taken from the path's extension.
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub header: Option<bool>,
    #[serde(default)]
    pub delimiter: Option<String>,
    #[serde(default)]
    pub quote: Option<String>,
    #[serde(default)]
    pub escape: Option<String>,
    #[serde(default)]
    pub null_value: Option<String>,
    #[serde(default)]
    pub newlines_in_values: Option<bool>,
    /// Explicit SQL types for some columns.
    #[serde(default)]
    pub columns: IndexMap<String, String>,
}

/// One transform: a single-key map naming its kind.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TransformFile {
    Join(JoinFile),
    DropFields(FieldsFile),
    DropDuplicateFields(InputFile),
    Select(FieldsFile),
    Rename(RenameFile),
    Cast(CastFile),
    Filter(FilterFile),
    Sql(SqlFile),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoinFile {
    pub name: String,
    pub left: String,
    pub right: String,
    #[serde(default, rename = "type")]
    pub join_type: Option<String>,
    pub on: Vec<KeyPairFile>,
}

/// `{left: a, right: b}` or the shorthand `"a = b"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum KeyPairFile {
    Pair { left: String, right: String },
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputFile {
    pub name: String,
    pub input: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldsFile {
    pub name: String,
    pub input: String,
    pub fields: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameFile {
    pub name: String,
    pub input: String,
    pub fields: IndexMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CastFile {
    pub name: String,
    pub input: String,
    pub fields: IndexMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterFile {
    pub name: String,
    pub input: String,
    pub predicate: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqlFile {
    pub name: String,
    pub inputs: Vec<String>,
    pub query: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetFile {
    pub input: String,
    pub table: TableFile,
    #[serde(default)]
    pub compression: Option<String>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub catalog: Option<String>,
    #[serde(default)]
    pub schema_change: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TableFile {
    pub database: String,
    pub name: String,
}
