//! Sources: list the files, check them, infer schemas, and read them as frames.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::datasource::listing::ListingTableUrl;

use datafusion::prelude::{CsvReadOptions, DataFrame, ParquetReadOptions, SessionContext};
use futures::TryStreamExt;
use sluice_job::suggest;
use sluice_proto as pb;

use crate::PlanError;

/// How many rows per file are read to infer CSV column types.
const INFER_ROWS: usize = 10_000;

/// One input file of a source.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Full URL of the file.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch.
    pub modified_ms: i64,
    /// The object store's ETag (empty when it gives none).
    pub etag: String,
}

impl SourceFile {
    /// What identifies this version of the file for a bookmark: (url, size, modified ms,
    /// ETag); a file whose size, time or ETag changed is a new file.
    pub fn key(&self) -> (String, u64, i64, String) {
        (
            self.url.clone(),
            self.size,
            self.modified_ms,
            self.etag.clone(),
        )
    }
}

/// Per source name, the files a job bookmark records as processed (see
/// [`SourceFile::key`]). A source named here reads only its other files; a source not
/// named reads every file.
pub type SeenFiles =
    std::collections::HashMap<String, std::collections::HashSet<(String, u64, i64, String)>>;

/// A source as planned: its files and read options.
#[derive(Debug, Clone)]
pub struct PlannedSource {
    /// Source name in the job.
    pub name: String,
    /// The files it reads, sorted by URL.
    pub files: Vec<SourceFile>,
    /// Files listed but skipped because its bookmark records them as processed.
    pub skipped: usize,
    /// The source's spec.
    pub spec: pb::Source,
    /// The schema the files are read with.
    pub schema: Arc<Schema>,
}

/// Decides whether a listed source file may be read: `None` if so, else why not.
pub type FileCheck<'a> = dyn Fn(&pb::Source, &str) -> Option<String> + Send + Sync + 'a;

/// Resolves `source.path` against the staging URL.
pub fn source_url(staging: &str, path: &str) -> String {
    if path.contains("://") || staging.is_empty() {
        path.to_string()
    } else if let Some(stripped) = path.strip_prefix('/') {
        format!("file:///{stripped}")
    } else {
        format!("{staging}{path}")
    }
}

pub(crate) async fn plan_source(
    ctx: &SessionContext,
    staging: &str,
    source: &pb::Source,
    path: &str,
    check: &FileCheck<'_>,
    seen: Option<&std::collections::HashSet<(String, u64, i64, String)>>,
) -> Result<(DataFrame, PlannedSource), PlanError> {
    let listed = checked_files(ctx, staging, source, path, check).await?;
    let total = listed.len();
    let files: Vec<SourceFile> = match seen {
        Some(seen) => listed
            .iter()
            .filter(|f| !seen.contains(&f.key()))
            .cloned()
            .collect(),
        None => listed.clone(),
    };
    let skipped = total - files.len();
    // With nothing new, the source is its first file's schema with no rows (one file is
    // read for the schema; none is scanned).
    let nothing_new = files.is_empty();
    let read: Vec<SourceFile> = if nothing_new {
        listed.into_iter().take(1).collect()
    } else {
        files.clone()
    };
    let urls: Vec<String> = read.iter().map(|f| f.url.clone()).collect();
    let df = match &source.format {
        Some(pb::source::Format::Csv(csv)) => {
            if csv.has_header
                && let Some(empty) = read.iter().find(|f| f.size == 0)
            {
                return Err(PlanError::at(
                    format!("{path}.path"),
                    format!("{}: the file is empty (expected a header line)", empty.url),
                ));
            }
            read_csv(ctx, urls, csv, path).await?
        }
        _ => ctx
            .read_parquet(urls, ParquetReadOptions::default())
            .await
            .map_err(|e| PlanError::at(format!("{path}.path"), crate::clean_message(&e)))?,
    };
    let schema = Arc::new(df.schema().as_arrow().clone());
    let df = if nothing_new {
        df.limit(0, Some(0))?
    } else {
        df
    };
    let df = df.alias(&source.name)?;
    Ok((
        df,
        PlannedSource {
            name: source.name.clone(),
            files,
            skipped,
            spec: source.clone(),
            schema,
        },
    ))
}

/// Lists the files of `source` and refuses the first one `check` refuses: checked as
/// listed, before any is read, since a glob or a link can lead anywhere.
pub(crate) async fn checked_files(
    ctx: &SessionContext,
    staging: &str,
    source: &pb::Source,
    path: &str,
    check: &FileCheck<'_>,
) -> Result<Vec<SourceFile>, PlanError> {
    let url_text = source_url(staging, &source.path);
    let files = list_files(ctx, &url_text, &format!("{path}.path")).await?;
    for f in &files {
        if let Some(why) = check(source, &f.url) {
            return Err(PlanError::at(format!("{path}.path"), why));
        }
    }
    Ok(files)
}

async fn list_files(
    ctx: &SessionContext,
    url_text: &str,
    path: &str,
) -> Result<Vec<SourceFile>, PlanError> {
    let url =
        listing_url(url_text).map_err(|e| PlanError::at(path, format!("'{url_text}': {e}")))?;
    let store = ctx
        .runtime_env()
        .object_store(&url)
        .map_err(|e| PlanError::at(path, format!("'{url_text}': {}", crate::clean_message(&e))))?;
    let state = ctx.state();
    let listing = match url.list_all_files(&state, store.as_ref(), "").await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await,
        Err(e) => Err(e),
    };
    // A folder that does not exist lists as an error on some stores: that is "no file".
    let listed = match listing {
        Ok(files) => files,
        Err(e) if is_not_found(&e) => Vec::new(),
        Err(e) => {
            let message = crate::clean_message(&e);
            // object_store reports S3's error code only inside its text (the client's error
            // types are private), so a missing bucket is recognised by its code there.
            let message = if message.contains("NoSuchBucket") {
                format!(
                    "the bucket '{}' does not exist",
                    url.object_store().as_str()
                )
            } else {
                message
            };
            return Err(PlanError::at(
                path,
                format!("cannot list '{url_text}': {message}"),
            ));
        }
    };
    let mut files: Vec<SourceFile> = listed
        .into_iter()
        .filter(|m| {
            let name = m.location.filename().unwrap_or_default();
            !(name.starts_with('.') || name.starts_with('_'))
        })
        .map(|m| SourceFile {
            url: format!("{}{}", url.object_store().as_str(), m.location),
            size: m.size,
            modified_ms: m.last_modified.timestamp_millis(),
            etag: m.e_tag.clone().unwrap_or_default(),
        })
        .collect();
    files.sort_by(|a, b| a.url.cmp(&b.url));
    if files.is_empty() {
        return Err(PlanError::at(path, format!("no file matches '{url_text}'")));
    }
    Ok(files)
}

fn is_not_found(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as E;
    match e.find_root() {
        E::ObjectStore(os) => matches!(os.as_ref(), object_store::Error::NotFound { .. }),
        E::IoError(io) => io.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

/// Why a source path is not a listing URL.
#[derive(Debug, thiserror::Error)]
pub enum ListingUrlError {
    /// DataFusion refused the path or URL.
    #[error("{}", crate::clean_message(.0))]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// The part before the glob is not a URL.
    #[error("{0}")]
    Url(#[from] url::ParseError),
    /// The glob does not parse.
    #[error("bad pattern '{pattern}': {source}")]
    Pattern {
        /// The glob, e.g. `*.csv`.
        pattern: String,
        /// Why it does not parse.
        #[source]
        source: glob::PatternError,
    },
}

/// A listing URL for `text`, with glob characters (`*`, `?`, `[`) after the last folder
/// that has none (DataFusion splits globs only for plain paths, not for URLs).
pub fn listing_url(text: &str) -> Result<ListingTableUrl, ListingUrlError> {
    if !text.contains("://") {
        return Ok(ListingTableUrl::parse(text)?);
    }
    let Some(star) = text.find(['*', '?', '[']) else {
        return Ok(ListingTableUrl::parse(text)?);
    };
    let cut = text[..star].rfind('/').map_or(0, |i| i + 1);
    let (base, pattern) = text.split_at(cut);
    let url = url::Url::parse(base)?;
    let glob = glob::Pattern::new(pattern).map_err(|source| ListingUrlError::Pattern {
        pattern: pattern.to_string(),
        source,
    })?;
    Ok(ListingTableUrl::try_new(url, Some(glob))?)
}

/// The one-byte CSV option `s` (delimiter, quote), or `default` when unset.
pub(crate) fn option_byte(s: &str, default: u8) -> u8 {
    s.as_bytes().first().copied().unwrap_or(default)
}

fn csv_options<'a>(csv: &pb::CsvFormat) -> CsvReadOptions<'a> {
    let byte = option_byte;
    let mut o = CsvReadOptions::new()
        .has_header(csv.has_header)
        .delimiter(byte(&csv.delimiter, b','))
        .quote(byte(&csv.quote, b'"'))
        .newlines_in_values(csv.newlines_in_values)
        .file_extension("")
        .schema_infer_max_records(INFER_ROWS);
    if let Some(e) = csv.escape.as_bytes().first() {
        o = o.escape(*e);
    }
    if !csv.null_value.is_empty() {
        o = o.null_regex(Some(format!("^{}$", regex_escape(&csv.null_value))));
    }
    o
}

async fn read_csv(
    ctx: &SessionContext,
    urls: Vec<String>,
    csv: &pb::CsvFormat,
    path: &str,
) -> Result<DataFrame, PlanError> {
    let read_err = |e: datafusion::error::DataFusionError| {
        PlanError::at(format!("{path}.path"), crate::clean_message(&e))
    };
    if let Some(schema) = declared_schema(ctx, &urls, csv).await {
        return ctx
            .read_csv(urls, csv_options(csv).schema(&schema))
            .await
            .map_err(read_err);
    }
    let inferred = match ctx.read_csv(urls.clone(), csv_options(csv)).await {
        Ok(df) => df,
        Err(e) => return Err(crate::diagnose::inference_error(ctx, path, &urls, csv, &e).await),
    };
    if csv.columns.is_empty() {
        return Ok(inferred);
    }
    let mut fields: Vec<Field> = inferred
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for c in &csv.columns {
        let col_path = format!("{path}.columns.{}", c.name);
        let ty = crate::types::parse(&c.sql_type)
            .map_err(|e| PlanError::at(&col_path, e.to_string()))?;
        let Some(f) = fields.iter_mut().find(|f| f.name() == &c.name) else {
            let names: Vec<&str> = inferred
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            return Err(PlanError::at(
                col_path,
                format!(
                    "no column '{}' in the CSV header{}",
                    c.name,
                    suggest::hint(&c.name, names)
                ),
            ));
        };
        *f = Field::new(f.name(), ty, true);
    }
    let schema = Schema::new(fields);
    ctx.read_csv(urls, csv_options(csv).schema(&schema))
        .await
        .map_err(read_err)
}

/// The schema of a CSV source whose job declares the type of every column: the header's
/// columns in order, with their declared types. Nothing is sampled then, as with a schema
/// given to DuckDB or Spark. `None` (infer, then apply the declared types) when the files
/// have no header, their headers differ or cannot be read, or a header column is not
/// declared; inference then reports what is wrong in its own words.
async fn declared_schema(
    ctx: &SessionContext,
    urls: &[String],
    csv: &pb::CsvFormat,
) -> Option<Schema> {
    if !csv.has_header || csv.columns.is_empty() {
        return None;
    }
    let mut header: Option<Vec<String>> = None;
    for url in urls {
        let names = crate::diagnose::first_record(ctx, url, csv).await.ok()??;
        match &header {
            Some(first) if *first != names => return None,
            Some(_) => {}
            None => header = Some(names),
        }
    }
    let header = header?;
    let distinct: std::collections::HashSet<&String> = header.iter().collect();
    if distinct.len() != header.len() || header.len() != csv.columns.len() {
        return None;
    }
    let fields = header
        .iter()
        .map(|name| {
            let declared = csv.columns.iter().find(|c| &c.name == name)?;
            let ty = crate::types::parse(&declared.sql_type).ok()?;
            Some(Field::new(name, ty, true))
        })
        .collect::<Option<Vec<Field>>>()?;
    Some(Schema::new(fields))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}
