//! The job file as written by users (YAML), before it becomes a proto `JobSpec`. Each
//! transform kind's shape lives in its own module under [`transforms`](crate::transforms).

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
    pub transforms: Vec<crate::transforms::TransformFile>,
    pub target: TargetFile,
    #[serde(default)]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub max_retries: u32,
    /// `enable`, `pause` or `disable` (default).
    #[serde(default)]
    pub bookmark: Option<String>,
    /// Data-quality rules over the output.
    #[serde(default)]
    pub quality: Option<QualityFile>,
    /// A cron line, or a map with `cron`, `timezone` and `after`.
    #[serde(default)]
    pub schedule: Option<ScheduleFile>,
}

/// The `quality:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QualityFile {
    /// A DQDL ruleset.
    pub rules: String,
    /// `fail` (default) or `warn`.
    #[serde(default)]
    pub on_failure: Option<String>,
}

/// The `schedule:` value: `"cron(0 6 * * ? *)"` or `{ cron, timezone, after }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ScheduleFile {
    /// Just a cron expression, read in UTC.
    Cron(String),
    /// The full form.
    Full(ScheduleMap),
}

/// The full form of `schedule:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleMap {
    #[serde(default)]
    pub cron: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    /// Jobs whose successful runs start this one.
    #[serde(default)]
    pub after: Vec<String>,
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
    /// Whether the job's bookmark tracks this source (default true).
    #[serde(default)]
    pub bookmark: Option<bool>,
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
    /// `overwrite` (default) or `append`.
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TableFile {
    pub database: String,
    pub name: String,
}
