//! Reads a Sluice job file (YAML) into the proto [`JobSpec`], checking its structure.
//!
//! Every error names the file, line and path of the offending value, and suggests a near
//! name where one fits: `job.yaml:23:15: transforms[1].join.left: no node 'albms' (did you
//! mean 'albums'?)`. Column-level checks need the data's schema and live in the planner;
//! its errors carry a path too, which [`LoadedJob::locate`] turns into a line.

mod model;
pub mod names;
pub mod source_map;
pub mod suggest;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use sluice_proto as pb;

pub use source_map::{DuplicateKey, Position, SourceMap};

/// One problem found in a job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Path of the value, such as `transforms[1].join.on[0].left`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Why a job file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The job file.
        file: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not parse or does not have the job's shape.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The job file.
        file: PathBuf,
        /// 1-based line of the mistake.
        line: usize,
        /// 1-based column of the mistake.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The job is well formed but its contents are inconsistent.
    #[error("{}", render(.file, .located))]
    Invalid {
        /// The job file.
        file: PathBuf,
        /// Every problem, with its place in the file when known.
        located: Vec<(Option<Position>, Diagnostic)>,
    },
}

fn render(file: &Path, located: &[(Option<Position>, Diagnostic)]) -> String {
    located
        .iter()
        .map(|(pos, d)| format_located(file, *pos, d))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `file:line:col: path: message`.
pub fn format_located(file: &Path, pos: Option<Position>, d: &Diagnostic) -> String {
    match pos {
        Some(p) => format!(
            "{}:{}:{}: {}: {}",
            file.display(),
            p.line,
            p.column,
            d.path,
            d.message
        ),
        None => format!("{}: {}: {}", file.display(), d.path, d.message),
    }
}

/// A job file read from disk: the spec plus what is needed to point back into the file.
#[derive(Debug, Clone)]
pub struct LoadedJob {
    /// The file it came from.
    pub file: PathBuf,
    /// The spec, with the staging area resolved to an absolute URL.
    pub spec: pb::JobSpec,
    /// Positions of the file's values.
    pub source_map: SourceMap,
}

impl LoadedJob {
    /// Where `path` stands in the file.
    pub fn locate(&self, path: &str) -> Option<Position> {
        self.source_map.locate(path)
    }

    /// Renders a diagnostic as `file:line:col: path: message`.
    pub fn describe(&self, d: &Diagnostic) -> String {
        format_located(&self.file, self.locate(&d.path), d)
    }
}

/// Reads and checks the job file at `path`. Relative staging paths resolve against its folder.
pub fn load(path: &Path) -> Result<LoadedJob, JobFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| JobFileError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    parse(&text, path, &base)
}

/// Parses job text; `file` is only used in messages, `base_dir` anchors relative paths.
pub fn parse(text: &str, file: &Path, base_dir: &Path) -> Result<LoadedJob, JobFileError> {
    let source_map = SourceMap::build(text);
    // Deserializers keep the last of two equal keys: a repeated source would silently
    // replace the first, so any repeated key (at any level) is an error naming both lines.
    if !source_map.duplicates().is_empty() {
        return Err(JobFileError::Invalid {
            file: file.to_path_buf(),
            located: source_map
                .duplicates()
                .iter()
                .map(|d| {
                    (
                        Some(d.at),
                        Diagnostic::new(
                            &d.path,
                            format!("duplicate key '{}' (first at line {})", d.key, d.first.line),
                        ),
                    )
                })
                .collect(),
        });
    }
    let job: model::JobFile = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let (line, column) = within_text(text, line, column);
        JobFileError::Syntax {
            file: file.to_path_buf(),
            line,
            column,
            message: e.to_string(),
        }
    })?;
    let (spec, diagnostics) = convert(job, base_dir);
    if !diagnostics.is_empty() {
        return Err(JobFileError::Invalid {
            file: file.to_path_buf(),
            located: diagnostics
                .into_iter()
                .map(|d| (source_map.locate(&d.path), d))
                .collect(),
        });
    }
    Ok(LoadedJob {
        file: file.to_path_buf(),
        spec,
        source_map,
    })
}

/// A position inside `text`: the YAML parser places errors at the end of the input on the
/// line after the last one, which the file does not have; they move to the end of the last
/// line.
fn within_text(text: &str, line: usize, column: usize) -> (usize, usize) {
    let lines: Vec<&str> = text.split(['\n', '\r']).collect();
    let last = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
    if line < 1 {
        (1, column.max(1))
    } else if line > last {
        let end = lines.last().map_or(0, |l| l.chars().count());
        (last, end + 1)
    } else {
        (line, column.max(1))
    }
}

/// Turns `dir` (relative to `base_dir`, or a URL) into an absolute URL ending in `/`.
pub fn resolve_base_url(dir: &str, base_dir: &Path) -> Result<String, String> {
    let mut url = if dir.contains("://") {
        url::Url::parse(dir).map_err(|e| format!("'{dir}' is not a valid URL: {e}"))?
    } else {
        let p = Path::new(dir);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base_dir.join(p)
        };
        let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
        url::Url::from_directory_path(&abs)
            .map_err(|_| format!("'{}' is not an absolute folder path", abs.display()))?
    };
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url.to_string())
}

struct Converter {
    diagnostics: Vec<Diagnostic>,
    /// Node names defined so far, in order.
    defined: Vec<String>,
}

impl Converter {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(path, message));
    }

    /// The option `value` names (`options` lists each spelling with what it means), or
    /// `fallback` after recording an error that lists the choices and the nearest one.
    fn choose<T: Copy>(
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
    fn check_input(&mut self, path: String, input: &str) {
        if self.defined.iter().any(|d| d == input) {
            return;
        }
        let hint = suggest::hint(input, self.defined.iter().map(String::as_str));
        self.error(
            path,
            format!("no source or transform named '{input}' is defined before this point{hint}"),
        );
    }

    fn define(&mut self, path: String, name: &str) {
        if name.trim().is_empty() {
            self.error(path, "a name is required");
        } else if self.defined.iter().any(|d| d == name) {
            self.error(path, format!("the name '{name}' is already used"));
        } else if let Err(e) = names::check_node_name(name) {
            self.error(path, e);
        } else {
            self.defined.push(name.to_string());
        }
    }

    fn one_byte(&mut self, path: String, value: &Option<String>, default: &str) -> String {
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

fn convert(job: model::JobFile, base_dir: &Path) -> (pb::JobSpec, Vec<Diagnostic>) {
    let mut c = Converter {
        diagnostics: Vec::new(),
        defined: Vec::new(),
    };
    if let Err(e) = names::check_job_name(&job.name) {
        c.error("name", e);
    }
    let staging = match resolve_base_url(job.staging.as_deref().unwrap_or("."), base_dir) {
        Ok(u) => u,
        Err(e) => {
            c.error("staging", e);
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
        transforms.push(convert_transform(&mut c, &format!("transforms[{i}]"), t));
    }
    let target = convert_target(&mut c, &job.target);
    let spec = pb::JobSpec {
        name: job.name,
        description: job.description,
        staging,
        sources,
        transforms,
        target: Some(target),
        timeout_seconds: job.timeout_seconds,
        max_retries: job.max_retries,
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
                    c.error(format!("{path}.columns.{col}"), e);
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
    }
}

fn convert_transform(c: &mut Converter, path: &str, t: &model::TransformFile) -> pb::Transform {
    use model::TransformFile as T;
    use pb::transform::Kind;
    let (name, kind) = match t {
        T::Join(j) => {
            let p = format!("{path}.join");
            c.check_input(format!("{p}.left"), &j.left);
            c.check_input(format!("{p}.right"), &j.right);
            let join_type = c.choose(
                format!("{p}.type"),
                "join type",
                j.join_type.as_deref().unwrap_or("inner"),
                &[
                    ("inner", pb::JoinType::Inner),
                    ("left", pb::JoinType::Left),
                    ("left_outer", pb::JoinType::Left),
                    ("right", pb::JoinType::Right),
                    ("right_outer", pb::JoinType::Right),
                    ("full", pb::JoinType::Full),
                    ("full_outer", pb::JoinType::Full),
                    ("outer", pb::JoinType::Full),
                    ("semi", pb::JoinType::LeftSemi),
                    ("left_semi", pb::JoinType::LeftSemi),
                    ("anti", pb::JoinType::LeftAnti),
                    ("left_anti", pb::JoinType::LeftAnti),
                ],
                pb::JoinType::Inner,
            );
            if j.on.is_empty() {
                c.error(format!("{p}.on"), "at least one key pair is required");
            }
            let mut on = Vec::new();
            for (k, pair) in j.on.iter().enumerate() {
                match pair {
                    model::KeyPairFile::Pair { left, right } => on.push(pb::KeyPair {
                        left: left.clone(),
                        right: right.clone(),
                    }),
                    model::KeyPairFile::Text(text) => match text.split_once('=') {
                        Some((l, r)) if !l.trim().is_empty() && !r.trim().is_empty() => {
                            on.push(pb::KeyPair {
                                left: l.trim().to_string(),
                                right: r.trim().to_string(),
                            })
                        }
                        _ => c.error(
                            format!("{p}.on[{k}]"),
                            format!("'{text}' is not a key pair: write 'left_column = right_column' or {{left: .., right: ..}}"),
                        ),
                    },
                }
            }
            (
                (format!("{p}.name"), j.name.clone()),
                Kind::Join(pb::Join {
                    left: j.left.clone(),
                    right: j.right.clone(),
                    join_type: join_type as i32,
                    on,
                }),
            )
        }
        T::DropFields(f) => {
            let p = format!("{path}.drop_fields");
            c.check_input(format!("{p}.input"), &f.input);
            (
                (format!("{p}.name"), f.name.clone()),
                Kind::DropFields(pb::DropFields {
                    input: f.input.clone(),
                    fields: f.fields.clone(),
                }),
            )
        }
        T::DropDuplicateFields(f) => {
            let p = format!("{path}.drop_duplicate_fields");
            c.check_input(format!("{p}.input"), &f.input);
            (
                (format!("{p}.name"), f.name.clone()),
                Kind::DropDuplicateFields(pb::DropDuplicateFields {
                    input: f.input.clone(),
                }),
            )
        }
        T::Select(f) => {
            let p = format!("{path}.select");
            c.check_input(format!("{p}.input"), &f.input);
            if f.fields.is_empty() {
                c.error(format!("{p}.fields"), "at least one field is required");
            }
            (
                (format!("{p}.name"), f.name.clone()),
                Kind::Select(pb::Select {
                    input: f.input.clone(),
                    fields: f.fields.clone(),
                }),
            )
        }
        T::Rename(f) => {
            let p = format!("{path}.rename");
            c.check_input(format!("{p}.input"), &f.input);
            (
                (format!("{p}.name"), f.name.clone()),
                Kind::Rename(pb::Rename {
                    input: f.input.clone(),
                    fields: f
                        .fields
                        .iter()
                        .map(|(from, to)| pb::FieldRename {
                            from: from.clone(),
                            to: to.clone(),
                        })
                        .collect(),
                }),
            )
        }
        T::Cast(f) => {
            let p = format!("{path}.cast");
            c.check_input(format!("{p}.input"), &f.input);
            for (col, ty) in &f.fields {
                if let Err(e) = names::parse_sql_type(ty) {
                    c.error(format!("{p}.fields.{col}"), e);
                }
            }
            (
                (format!("{p}.name"), f.name.clone()),
                Kind::Cast(pb::Cast {
                    input: f.input.clone(),
                    fields: f
                        .fields
                        .iter()
                        .map(|(name, ty)| pb::ColumnType {
                            name: name.clone(),
                            sql_type: ty.clone(),
                        })
                        .collect(),
                }),
            )
        }
        T::Filter(f) => {
            let p = format!("{path}.filter");
            c.check_input(format!("{p}.input"), &f.input);
            if f.predicate.trim().is_empty() {
                c.error(format!("{p}.predicate"), "a predicate is required");
            }
            (
                (format!("{p}.name"), f.name.clone()),
                Kind::Filter(pb::Filter {
                    input: f.input.clone(),
                    predicate: f.predicate.clone(),
                }),
            )
        }
        T::Sql(f) => {
            let p = format!("{path}.sql");
            for (i, input) in f.inputs.iter().enumerate() {
                c.check_input(format!("{p}.inputs[{i}]"), input);
            }
            if f.query.trim().is_empty() {
                c.error(format!("{p}.query"), "a query is required");
            }
            (
                (format!("{p}.name"), f.name.clone()),
                Kind::Sql(pb::Sql {
                    inputs: f.inputs.clone(),
                    query: f.query.clone(),
                }),
            )
        }
    };
    let (name_path, name) = name;
    c.define(name_path, &name);
    pb::Transform {
        name,
        kind: Some(kind),
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
        c.error("target.table.database", e);
    }
    if let Err(e) = names::check_catalog_name(&t.table.name) {
        c.error("target.table.name", e);
    }
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
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPOTIFY: &str = r#"
name: spotify
sources:
  albums: { path: albums.csv }
  artists: { path: artists.csv }
  tracks: { path: tracks.csv, columns: { track_popularity: bigint } }
transforms:
  - join: { name: albums_artists, left: albums, right: artists, on: ["artist_id = id"] }
  - join:
      name: joined
      left: albums_artists
      right: tracks
      type: inner
      on: [{ left: track_id, right: id }]
  - drop_duplicate_fields: { name: spotify, input: joined }
target:
  input: spotify
  table: { database: spotify, name: tracks }
"#;

    fn parse_str(text: &str) -> Result<LoadedJob, JobFileError> {
        parse(text, Path::new("job.yaml"), Path::new("/staging"))
    }

    #[test]
    fn parses_the_spotify_job() {
        let job = parse_str(SPOTIFY).expect("valid job");
        assert_eq!(job.spec.staging, "file:///staging/");
        assert_eq!(job.spec.sources.len(), 3);
        assert_eq!(job.spec.transforms.len(), 3);
        let Some(pb::transform::Kind::Join(j)) = &job.spec.transforms[0].kind else {
            panic!("first transform is a join");
        };
        assert_eq!(j.on[0].left, "artist_id");
        assert_eq!(j.on[0].right, "id");
        let target = job.spec.target.expect("target");
        assert_eq!(target.compression, pb::Compression::Snappy as i32);
    }

    #[test]
    fn unknown_input_names_line_and_suggests() {
        let text = SPOTIFY.replace("left: albums_artists", "left: albums_artist");
        let err = parse_str(&text).expect_err("invalid").to_string();
        assert!(
            err.contains("job.yaml:11:") && err.contains("transforms[1].join.left"),
            "{err}"
        );
        assert!(err.contains("did you mean 'albums_artists'?"), "{err}");
    }

    #[test]
    fn shape_errors_carry_a_line() {
        let text = SPOTIFY.replace("type: inner", "type: inner\n      kind: x");
        let err = parse_str(&text).expect_err("invalid");
        assert!(
            matches!(err, JobFileError::Syntax { line: 14, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("unknown field `kind`"), "{err}");
    }

    #[test]
    fn a_repeated_source_is_an_error_naming_both_lines() {
        // The second `artists` would otherwise replace the first silently.
        let text = SPOTIFY.replace("  tracks: {", "  artists: { path: empty.csv }\n  tracks: {");
        let err = parse_str(&text).expect_err("duplicate source").to_string();
        assert_eq!(
            err, "job.yaml:6:3: sources.artists: duplicate key 'artists' (first at line 5)",
            "{err}"
        );
    }

    #[test]
    fn repeated_keys_are_errors_at_every_level() {
        let cases = [
            // top level
            (
                SPOTIFY.replace("name: spotify\n", "name: spotify\nname: other\n"),
                "job.yaml:3:1: name: duplicate key 'name' (first at line 2)",
            ),
            // inside a flow mapping
            (
                SPOTIFY.replace("{ path: albums.csv }", "{ path: albums.csv, path: a.csv }"),
                "job.yaml:4:31: sources.albums.path: duplicate key 'path' (first at line 4)",
            ),
            // inside a sequence item
            (
                SPOTIFY.replace(
                    "      type: inner\n",
                    "      type: inner\n      type: left\n",
                ),
                "job.yaml:14:7: transforms[1].join.type: duplicate key 'type' (first at line 13)",
            ),
            // quoted and plain spellings are the same key
            (
                SPOTIFY.replace(
                    "  input: spotify\n",
                    "  input: spotify\n  \"input\": joined\n",
                ),
                "job.yaml:18:3: target.input: duplicate key 'input' (first at line 17)",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_str(&text).expect_err(expected).to_string();
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn every_repeated_key_is_reported() {
        let text = SPOTIFY
            .replace("name: spotify\n", "name: spotify\nname: again\n")
            .replace("  tracks: {", "  albums: { path: b.csv }\n  tracks: {");
        let err = parse_str(&text).expect_err("duplicates").to_string();
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(err.contains("name: duplicate key 'name'"), "{err}");
        assert!(
            err.contains("sources.albums: duplicate key 'albums'"),
            "{err}"
        );
    }

    #[test]
    fn equal_keys_in_different_mappings_are_fine() {
        // Every source has a `path`, every transform a `name`: not duplicates.
        parse_str(SPOTIFY).expect("valid job");
    }

    #[test]
    fn bad_table_names_and_types_are_reported_together() {
        let text = SPOTIFY
            .replace("name: tracks }", "name: Tracks-2023 }")
            .replace("bigint }", "bigintt }");
        let err = parse_str(&text).expect_err("invalid").to_string();
        assert!(err.contains("target.table.name"), "{err}");
        assert!(
            err.contains("sources.tracks.columns.track_popularity"),
            "{err}"
        );
        assert!(err.contains("did you mean 'bigint'?"), "{err}");
    }
}
