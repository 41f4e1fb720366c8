//! Conversion of the job file as written ([`model`](crate::model)) into the proto
//! `JobSpec`, collecting every structural problem as a [`Diagnostic`] with its path.

use std::collections::HashSet;
use std::path::Path;

use sluice_proto as pb;

use crate::error::{BaseUrlError, Diagnostic};
use crate::{model, names, suggest};

/// Turns `dir` (relative to `base_dir`, or a URL) into an absolute URL ending in `/`.
pub fn resolve_base_url(dir: &str, base_dir: &Path) -> Result<String, BaseUrlError> {
    let mut url = if dir.contains("://") {
        url::Url::parse(dir).map_err(|source| BaseUrlError::Url {
            dir: dir.to_string(),
            source,
        })?
    } else {
        let p = Path::new(dir);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base_dir.join(p)
        };
        let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
        url::Url::from_directory_path(&abs).map_err(|_| BaseUrlError::NotAbsolute(abs.clone()))?
    };
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url.to_string())
}

/// Collects diagnostics and the node names defined so far while a job converts.
pub(crate) struct Converter {
    diagnostics: Vec<Diagnostic>,
    /// Node names defined so far, in order.
    defined: Vec<String>,
}

impl Converter {
    /// Records a problem at `path`.
    pub(crate) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(path, message));
    }

    /// The option `value` names (`options` lists each spelling with what it means), or
    /// `fallback` after recording an error that lists the choices and the nearest one.
    pub(crate) fn choose<T: Copy>(
        &mut self,
        path: impl Into<String>,
        what: &str,
        value: &str,
        options: &[(&str, T)],
        fallback: T,
    ) -> T {
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == value) {
            return *v;
        }
        let mut names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        names.dedup();
        self.error(
            path,
            format!(
                "unknown {what} '{value}': expected one of {}{}",
                names.join(", "),
                suggest::hint(value, names.iter().copied())
            ),
        );
        fallback
    }

    /// Checks that `input` names a node defined earlier.
    pub(crate) fn check_input(&mut self, path: String, input: &str) {
        if self.defined.iter().any(|d| d == input) {
            return;
        }
        let hint = suggest::hint(input, self.defined.iter().map(String::as_str));
        self.error(
            path,
            format!("no source or transform named '{input}' is defined before this point{hint}"),
        );
    }

    /// Records `name` as defined, or an error when it is empty, taken or not an identifier.
    pub(crate) fn define(&mut self, path: String, name: &str) {
        if name.trim().is_empty() {
            self.error(path, "a name is required");
        } else if self.defined.iter().any(|d| d == name) {
            self.error(path, format!("the name '{name}' is already used"));
        } else if let Err(e) = names::check_node_name(name) {
            self.error(path, e.to_string());
        } else {
            self.defined.push(name.to_string());
        }
    }

    /// The single character `value` gives (`\\t` for a tab), or `default`.
    pub(crate) fn one_byte(
        &mut self,
        path: String,
        value: &Option<String>,
        default: &str,
    ) -> String {
        match value {
            None => default.to_string(),
            Some(v) if v.len() == 1 => v.clone(),
            Some(v) if v == "\\t" => "\t".to_string(),
            Some(v) => {
                self.error(path, format!("must be one ASCII character, got '{v}'"));
                default.to_string()
            }
        }
    }
}

pub(crate) fn convert(job: model::JobFile, base_dir: &Path) -> (pb::JobSpec, Vec<Diagnostic>) {
    let mut c = Converter {
        diagnostics: Vec::new(),
        defined: Vec::new(),
    };
    if let Err(e) = names::check_job_name(&job.name) {
        c.error("name", e.to_string());
    }
    let staging = match resolve_base_url(job.staging.as_deref().unwrap_or("."), base_dir) {
        Ok(u) => u,
        Err(e) => {
            c.error("staging", e.to_string());
            String::new()
        }
    };
    if job.sources.is_empty() {
        c.error("sources", "at least one source is required");
    }
    let mut sources = Vec::new();
    for (name, s) in &job.sources {
        let path = format!("sources.{name}");
        c.define(path.clone(), name);
        sources.push(convert_source(&mut c, &path, name, s));
    }
    let mut transforms = Vec::new();
    for (i, t) in job.transforms.iter().enumerate() {
        transforms.push(crate::transforms::convert(
            &mut c,
            &format!("transforms[{i}]"),
            t,
        ));
    }
    let target = convert_target(&mut c, &job.target);
    let bookmark = c.choose(
        "bookmark",
        "bookmark option",
        job.bookmark.as_deref().unwrap_or("disable"),
        &[
            ("disable", pb::BookmarkMode::Disable),
            ("enable", pb::BookmarkMode::Enable),
            ("pause", pb::BookmarkMode::Pause),
            ("job-bookmark-disable", pb::BookmarkMode::Disable),
            ("job-bookmark-enable", pb::BookmarkMode::Enable),
            ("job-bookmark-pause", pb::BookmarkMode::Pause),
        ],
        pb::BookmarkMode::Disable,
    );
    let quality = job
        .quality
        .as_ref()
        .map(|q| crate::quality::convert(&mut c, q));
    let schedule = job
        .schedule
        .as_ref()
        .map(|s| crate::schedule::convert(&mut c, s));
    let spec = pb::JobSpec {
        name: job.name,
        description: job.description,
        staging,
        sources,
        transforms,
        target: Some(target),
        timeout_seconds: job.timeout_seconds,
        max_retries: job.max_retries,
        bookmark: bookmark as i32,
        quality,
        schedule,
    };
    (spec, c.diagnostics)
}

fn convert_source(c: &mut Converter, path: &str, name: &str, s: &model::SourceFile) -> pb::Source {
    let format = s.format.clone().unwrap_or_else(|| {
        let lower = s.path.to_lowercase();
        if lower.ends_with(".parquet") || lower.ends_with(".parq") {
            "parquet".into()
        } else {
            "csv".into()
        }
    });
    if s.path.trim().is_empty() {
        c.error(format!("{path}.path"), "a path is required");
    }
    let format = match format.as_str() {
        "csv" => {
            let mut columns = Vec::new();
            for (col, ty) in &s.columns {
                if let Err(e) = names::parse_sql_type(ty) {
                    c.error(format!("{path}.columns.{col}"), e.to_string());
                }
                columns.push(pb::ColumnType {
                    name: col.clone(),
                    sql_type: ty.clone(),
                });
            }
            let delimiter = c.one_byte(format!("{path}.delimiter"), &s.delimiter, ",");
            let quote = c.one_byte(format!("{path}.quote"), &s.quote, "\"");
            let escape = match &s.escape {
                None => String::new(),
                Some(_) => c.one_byte(format!("{path}.escape"), &s.escape, ""),
            };
            pb::source::Format::Csv(pb::CsvFormat {
                has_header: s.header.unwrap_or(true),
                delimiter,
                quote,
                escape,
                null_value: s.null_value.clone().unwrap_or_default(),
                columns,
                newlines_in_values: s.newlines_in_values.unwrap_or(false),
            })
        }
        "parquet" => {
            let csv_only = [
                ("header", s.header.is_some()),
                ("delimiter", s.delimiter.is_some()),
                ("quote", s.quote.is_some()),
                ("escape", s.escape.is_some()),
                ("null_value", s.null_value.is_some()),
                ("newlines_in_values", s.newlines_in_values.is_some()),
                ("columns", !s.columns.is_empty()),
            ];
            for (opt, set) in csv_only {
                if set {
                    c.error(
                        format!("{path}.{opt}"),
                        format!("'{opt}' applies to CSV sources only"),
                    );
                }
            }
            pb::source::Format::Parquet(pb::ParquetFormat {})
        }
        other => {
            c.error(
                format!("{path}.format"),
                format!(
                    "unknown format '{other}': expected 'csv' or 'parquet'{}",
                    suggest::hint(other, ["csv", "parquet"])
                ),
            );
            pb::source::Format::Parquet(pb::ParquetFormat {})
        }
    };
    pb::Source {
        name: name.to_string(),
        path: s.path.clone(),
        format: Some(format),
        bookmark: s.bookmark,
    }
}

fn convert_target(c: &mut Converter, t: &model::TargetFile) -> pb::Target {
    c.check_input("target.input".into(), &t.input);
    let compression = c.choose(
        "target.compression",
        "compression",
        t.compression.as_deref().unwrap_or("snappy"),
        &[
            ("snappy", pb::Compression::Snappy),
            ("zstd", pb::Compression::Zstd),
            ("gzip", pb::Compression::Gzip),
            ("none", pb::Compression::None),
            ("uncompressed", pb::Compression::None),
        ],
        pb::Compression::Snappy,
    );
    let catalog = c.choose(
        "target.catalog",
        "catalog",
        t.catalog.as_deref().unwrap_or("default"),
        &[
            ("default", pb::CatalogKind::Default),
            ("embedded", pb::CatalogKind::Embedded),
            ("glue", pb::CatalogKind::Glue),
        ],
        pb::CatalogKind::Default,
    );
    let schema_change = c.choose(
        "target.schema_change",
        "schema change policy",
        t.schema_change.as_deref().unwrap_or("update"),
        &[
            ("update", pb::SchemaChangePolicy::Update),
            ("log", pb::SchemaChangePolicy::Log),
        ],
        pb::SchemaChangePolicy::Update,
    );
    if let Err(e) = names::check_catalog_name(&t.table.database) {
        c.error("target.table.database", e.to_string());
    }
    if let Err(e) = names::check_catalog_name(&t.table.name) {
        c.error("target.table.name", e.to_string());
    }
    let mode = c.choose(
        "target.mode",
        "write mode",
        t.mode.as_deref().unwrap_or("overwrite"),
        &[
            ("overwrite", pb::WriteMode::Overwrite),
            ("append", pb::WriteMode::Append),
        ],
        pb::WriteMode::Overwrite,
    );
    let mut seen = HashSet::new();
    for (i, col) in t.partition_by.iter().enumerate() {
        if !seen.insert(col) {
            c.error(
                format!("target.partition_by[{i}]"),
                format!("'{col}' is listed twice"),
            );
        }
    }
    pb::Target {
        input: t.input.clone(),
        compression: compression as i32,
        partition_by: t.partition_by.clone(),
        table: Some(pb::TableRef {
            database: t.table.database.clone(),
            table: t.table.name.clone(),
        }),
        location: t.location.clone().unwrap_or_default(),
        catalog: catalog as i32,
        schema_change: schema_change as i32,
        mode: mode as i32,
    }
}
