//! Finds where a CSV read failed: the file, the line and the column.
//!
//! DataFusion reports CSV errors without the file name, and with line numbers relative to
//! the byte range a task read. When a run fails with such an error, the sources are read
//! again here, file by file from the start, to name the exact place. This runs only on the
//! failure path.

use std::sync::Arc;

use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::csv::reader::{Decoder, Format};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::object_store::ObjectStoreExt;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use sluice_proto as pb;

use crate::PlannedSource;

/// A bad value or row in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The source it belongs to.
    pub source: String,
    /// URL of the file.
    pub file: String,
    /// Line in the file, counted from 1 (the header is line 1).
    pub line: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.strip_prefix("file://").unwrap_or(&self.file);
        match self.line {
            Some(l) => write!(f, "{file}:{l}: {}", self.message),
            None => write!(f, "{file}: {}", self.message),
        }
    }
}

/// Whether `e` is a CSV read error: a CSV or parse error from Arrow's CSV reader, however
/// deeply DataFusion wrapped it.
pub fn is_csv_error(e: &DataFusionError) -> bool {
    if arrow_errors(e).any(|a| matches!(a, ArrowError::CsvError(_) | ArrowError::ParseError(_))) {
        return true;
    }
    match e.find_root() {
        // Typed errors that are not Arrow's CSV errors (checked above).
        DataFusionError::ArrowError(..)
        | DataFusionError::ParquetError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::IoError(_)
        | DataFusionError::SQL(..)
        | DataFusionError::SchemaError(..) => false,
        // A task that failed on a Ballista executor comes back as text only (Ballista sends
        // the failed task's message, e.g. `Job … failed: …`, not its error), so there the
        // message is all there is.
        root => is_csv_message(&root.to_string()),
    }
}

/// Every [`ArrowError`] in the chain of `e`'s sources (and `e`'s own, if it is one).
fn arrow_errors(e: &DataFusionError) -> impl Iterator<Item = &ArrowError> {
    let first: &(dyn std::error::Error + 'static) = e;
    std::iter::successors(Some(first), |e| e.source()).filter_map(|e| {
        e.downcast_ref::<ArrowError>()
            .or_else(|| match e.downcast_ref::<DataFusionError>() {
                Some(DataFusionError::ArrowError(a, _)) => Some(a.as_ref()),
                _ => None,
            })
    })
}

/// Whether a failure message (from a remote task, where only the text survives) names a
/// CSV read error, as Arrow's `CsvError` and `ParseError` print themselves.
fn is_csv_message(message: &str) -> bool {
    ["Csv error", "CsvError", "Parser error", "ParseError"]
        .iter()
        .any(|m| message.contains(m))
}

/// Whether `e` is DataFusion's refusal of a CSV file whose records have unequal lengths
/// while it infers the schema. DataFusion reports it as a plain `Execution` error, so only
/// its text tells it apart.
fn is_inference_width_error(e: &DataFusionError) -> bool {
    matches!(e.find_root(), DataFusionError::Execution(m) if m.contains("whilst inferring schema"))
}

/// Reads every CSV source from the start and returns the first bad row found.
pub async fn locate_csv_error(
    ctx: &SessionContext,
    sources: &[PlannedSource],
) -> Option<InputError> {
    for source in sources {
        let Some(pb::source::Format::Csv(csv)) = &source.spec.format else {
            continue;
        };
        for file in &source.files {
            if let Some(message) = check_file(ctx, &file.url, &source.schema, csv).await {
                return Some(InputError {
                    source: source.name.clone(),
                    file: file.url.clone(),
                    line: message.0,
                    message: message.1,
                });
            }
        }
    }
    None
}

/// The error for a CSV source (`path`, such as `sources.albums`) whose schema could not be
/// inferred: a bad row is named by its file and line, counted from the start of the file.
pub(crate) async fn inference_error(
    ctx: &SessionContext,
    path: &str,
    urls: &[String],
    csv: &pb::CsvFormat,
    e: &DataFusionError,
) -> crate::PlanError {
    let message = crate::clean_message(e);
    let located = if is_csv_error(e) || is_inference_width_error(e) {
        let source = path.strip_prefix("sources.").unwrap_or(path);
        locate_inference_error(ctx, source, urls, csv).await
    } else {
        None
    };
    let message = located.map_or(message, |found| found.to_string());
    crate::PlanError::at(format!("{path}.path"), message)
}

/// Reads each of `urls` from the start, every field as text, and returns the first row
/// that cannot be read: a wrong number of fields, or bytes that are not UTF-8. Used when
/// inferring a source's schema fails, as DataFusion's inference reports lines counted from
/// the start of a chunk of the file, not of the file.
pub async fn locate_inference_error(
    ctx: &SessionContext,
    source: &str,
    urls: &[String],
    csv: &pb::CsvFormat,
) -> Option<InputError> {
    for url in urls {
        let found = match first_record(ctx, url, csv).await {
            Err(e) => Some((None, e.to_string())),
            Ok(None) => None,
            Ok(Some(names)) => {
                let fields: Vec<Field> = (1..=names.len())
                    .map(|i| Field::new(format!("column_{i}"), DataType::Utf8, true))
                    .collect();
                check_file(ctx, url, &Arc::new(Schema::new(fields)), csv).await
            }
        };
        if let Some((line, message)) = found {
            return Some(InputError {
                source: source.to_string(),
                file: url.clone(),
                line,
                message,
            });
        }
    }
    None
}

/// Why a file's first record could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The URL names no file the session's object stores can open.
    #[error(transparent)]
    Open(#[from] DataFusionError),
    /// The store failed while the file was read.
    #[error("cannot read the file: {0}")]
    Read(#[source] object_store::Error),
    /// The first record does not parse (Arrow's message, in terms of the file).
    #[error("{0}")]
    FirstRecord(String),
}

/// The fields of the first record of the file as column names (its header, if it has one;
/// `column_1`, `column_2`, ... if not); `None` for an empty file.
pub(crate) async fn first_record(
    ctx: &SessionContext,
    url: &str,
    csv: &pb::CsvFormat,
) -> Result<Option<Vec<String>>, ReadError> {
    /// Enough for any header line; a first record longer than this is cut.
    const HEAD: usize = 1 << 20;
    let mut stream = open(ctx, url).await?;
    let mut head: Vec<u8> = Vec::new();
    while head.len() < HEAD && !head.contains(&b'\n') {
        match stream.next().await {
            Some(Ok(bytes)) => head.extend_from_slice(bytes.as_ref()),
            Some(Err(e)) => return Err(ReadError::Read(e)),
            None => break,
        }
    }
    if head.is_empty() {
        return Ok(None);
    }
    let byte = crate::sources::option_byte;
    let mut format = Format::default()
        .with_header(csv.has_header)
        .with_delimiter(byte(&csv.delimiter, b','))
        .with_quote(byte(&csv.quote, b'"'));
    if let Some(e) = csv.escape.as_bytes().first() {
        format = format.with_escape(*e);
    }
    // Only the first line is complete for sure: read that one record.
    let end = match head.iter().position(|b| *b == b'\n') {
        Some(i) if !csv.newlines_in_values => i + 1,
        _ => head.len(),
    };
    let (schema, _) = format
        .infer_schema(std::io::Cursor::new(&head[..end]), Some(1))
        .map_err(|e| ReadError::FirstRecord(explain(e, &Schema::empty()).1))?;
    Ok(Some(
        schema.fields().iter().map(|f| f.name().clone()).collect(),
    ))
}

/// The file's bytes, as a stream of chunks.
async fn open(
    ctx: &SessionContext,
    url: &str,
) -> Result<impl futures::Stream<Item = object_store::Result<impl AsRef<[u8]>>> + Unpin, ReadError>
{
    let table_url = ListingTableUrl::parse(url)?;
    let store = ctx.runtime_env().object_store(&table_url)?;
    let location = table_url.prefix().clone();
    match store.get(&location).await {
        Ok(r) => Ok(r.into_stream()),
        Err(e) => Err(ReadError::Read(e)),
    }
}

/// A decoder for `schema` with the source's CSV options.
fn decoder(schema: &Arc<Schema>, csv: &pb::CsvFormat) -> Decoder {
    let byte = crate::sources::option_byte;
    let mut builder = ReaderBuilder::new(schema.clone())
        .with_header(csv.has_header)
        .with_delimiter(byte(&csv.delimiter, b','))
        .with_quote(byte(&csv.quote, b'"'))
        .with_batch_size(1024);
    if let Some(e) = csv.escape.as_bytes().first() {
        builder = builder.with_escape(*e);
    }
    if !csv.null_value.is_empty()
        && let Ok(re) = regex_for(&csv.null_value)
    {
        builder = builder.with_null_regex(re);
    }
    builder.build_decoder()
}

/// Feeds `pending` to the decoder, keeping what it has not consumed yet (a partial row).
fn feed(decoder: &mut Decoder, pending: &mut Vec<u8>) -> Result<(), ArrowError> {
    loop {
        // An empty slice tells the decoder the input has ended, so an empty chunk (a store
        // may send one mid-file) must never reach it: it would end the row it is inside.
        if pending.is_empty() {
            return Ok(());
        }
        let consumed = decoder.decode(pending)?;
        pending.drain(..consumed);
        if decoder.capacity() == 0 {
            decoder.flush()?;
            continue;
        }
        if consumed == 0 {
            return Ok(());
        }
    }
}

/// Tells the decoder the input has ended and reads its last rows.
fn finish(decoder: &mut Decoder) -> Result<(), ArrowError> {
    decoder
        .decode(&[])
        .and_then(|_| decoder.flush())
        .map(|_| ())
}

/// The first bad row of a CSV file that arrives in `chunks` (as a store streams it; any
/// split), read with `schema` and the source's options: `(line, message)`, the line being
/// the one the bad record starts on, counted from 1 with the header as line 1 (a record
/// whose quoted fields hold line breaks spans several lines; blank lines count too). The
/// same reading as a failed run's, without I/O.
pub fn locate_in_chunks(
    chunks: &[&[u8]],
    schema: &Arc<Schema>,
    csv: &pb::CsvFormat,
) -> Option<(Option<u64>, String)> {
    let (record, message) = first_bad_record(chunks, schema, csv)?;
    let line = record.map(|r| {
        let mut lines = RecordLines::new(csv);
        chunks
            .iter()
            .find_map(|chunk| lines.find(chunk, r))
            .unwrap_or(r)
    });
    Some((line, message))
}

/// The first bad record of the file in `chunks`: `(record, message)`, records counted
/// from 1 as Arrow counts them (the header is record 1).
fn first_bad_record(
    chunks: &[&[u8]],
    schema: &Arc<Schema>,
    csv: &pb::CsvFormat,
) -> Option<(Option<u64>, String)> {
    let mut decoder = decoder(schema, csv);
    let mut pending: Vec<u8> = Vec::new();
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        if let Err(e) = feed(&mut decoder, &mut pending) {
            return Some(explain(e, schema));
        }
    }
    finish(&mut decoder).err().map(|e| explain(e, schema))
}

/// Finds the line on which a record of a CSV file starts, splitting the file into records
/// as Arrow's reader (csv-core) does: quoted fields may hold delimiters and line breaks, a
/// quote is escaped by doubling it or by the escape byte, `\r\n`, `\n` and `\r` end a
/// record, and blank lines are skipped (they hold no record, but they are lines).
struct RecordLines {
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
    state: Scan,
    /// The line of the next byte, counted from 1.
    line: u64,
    /// Whether the last byte was a `\r` (a `\n` right after it ends the same line).
    after_cr: bool,
    /// Records started so far.
    records: u64,
}

/// Where the scan of [`RecordLines`] is, as csv-core's states.
#[derive(Clone, Copy)]
enum Scan {
    /// Between records (blank lines are skipped here).
    StartRecord,
    /// At the start of a field.
    StartField,
    /// Inside an unquoted field.
    InField,
    /// Inside a quoted field.
    InQuoted,
    /// Right after the escape byte inside a quoted field.
    Escaped,
    /// Right after a quote inside a quoted field: a doubled quote, or the field's end.
    AfterQuote,
}

impl RecordLines {
    fn new(csv: &pb::CsvFormat) -> Self {
        let byte = crate::sources::option_byte;
        Self {
            delimiter: byte(&csv.delimiter, b','),
            quote: byte(&csv.quote, b'"'),
            escape: csv.escape.as_bytes().first().copied(),
            state: Scan::StartRecord,
            line: 1,
            after_cr: false,
            records: 0,
        }
    }

    /// Reads the next bytes of the file; returns the line on which record `target`
    /// (counted from 1) starts once it is reached.
    fn find(&mut self, bytes: &[u8], target: u64) -> Option<u64> {
        for &c in bytes {
            let end = c == b'\r' || c == b'\n';
            if matches!(self.state, Scan::StartRecord) && !end {
                self.records += 1;
                if self.records == target {
                    return Some(self.line);
                }
                self.state = Scan::StartField;
            }
            let (quote, delimiter) = (c == self.quote, c == self.delimiter);
            self.state = match self.state {
                Scan::StartRecord => Scan::StartRecord,
                Scan::StartField | Scan::AfterQuote if quote => Scan::InQuoted,
                Scan::StartField | Scan::InField | Scan::AfterQuote if delimiter => {
                    Scan::StartField
                }
                Scan::StartField | Scan::InField | Scan::AfterQuote if end => Scan::StartRecord,
                Scan::StartField | Scan::InField | Scan::AfterQuote => Scan::InField,
                Scan::InQuoted if quote => Scan::AfterQuote,
                Scan::InQuoted if Some(c) == self.escape => Scan::Escaped,
                Scan::InQuoted | Scan::Escaped => Scan::InQuoted,
            };
            match c {
                b'\r' => {
                    self.line += 1;
                    self.after_cr = true;
                }
                b'\n' => {
                    if !self.after_cr {
                        self.line += 1;
                    }
                    self.after_cr = false;
                }
                _ => self.after_cr = false,
            }
        }
        None
    }
}

/// The line of `url` on which record `record` (counted from 1, as Arrow counts) starts,
/// reading the file again from its start; `None` if it cannot be read or is shorter.
async fn line_of_record(
    ctx: &SessionContext,
    url: &str,
    record: u64,
    csv: &pb::CsvFormat,
) -> Option<u64> {
    let mut stream = open(ctx, url).await.ok()?;
    let mut lines = RecordLines::new(csv);
    while let Some(Ok(bytes)) = stream.next().await {
        if let Some(line) = lines.find(bytes.as_ref(), record) {
            return Some(line);
        }
    }
    None
}

/// The first bad row of the file at `url`: `(line, message)`, as [`locate_in_chunks`].
async fn check_file(
    ctx: &SessionContext,
    url: &str,
    schema: &Arc<Schema>,
    csv: &pb::CsvFormat,
) -> Option<(Option<u64>, String)> {
    let (record, message) = first_bad_record_of(ctx, url, schema, csv).await?;
    let line = match record {
        Some(r) => Some(line_of_record(ctx, url, r, csv).await.unwrap_or(r)),
        None => None,
    };
    Some((line, message))
}

/// The first bad record of the file at `url`, as [`first_bad_record`].
async fn first_bad_record_of(
    ctx: &SessionContext,
    url: &str,
    schema: &Arc<Schema>,
    csv: &pb::CsvFormat,
) -> Option<(Option<u64>, String)> {
    let mut stream = match open(ctx, url).await {
        Ok(s) => s,
        Err(e) => return Some((None, e.to_string())),
    };
    let mut decoder = decoder(schema, csv);
    let mut pending: Vec<u8> = Vec::new();
    loop {
        match stream.next().await {
            Some(Ok(bytes)) => pending.extend_from_slice(bytes.as_ref()),
            Some(Err(e)) => return Some((None, format!("cannot read the file: {e}"))),
            None => break,
        }
        if let Err(e) = feed(&mut decoder, &mut pending) {
            return Some(explain(e, schema));
        }
    }
    finish(&mut decoder).err().map(|e| explain(e, schema))
}

fn regex_for(value: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^{}$", regex::escape(value)))
}

/// Rewrites arrow's message in terms of column names: `(record, message)`, the record
/// counted from 1 with the header as record 1 (Arrow's "line").
fn explain(e: ArrowError, schema: &Schema) -> (Option<u64>, String) {
    let text = match &e {
        ArrowError::CsvError(s) | ArrowError::ParseError(s) => s.clone(),
        other => other.to_string(),
    };
    // "incorrect number of fields for line N, expected A got B": N counts records, header included.
    if let Some(rest) = text.strip_prefix("incorrect number of fields for line ") {
        let (n, tail) = rest.split_once(',').unwrap_or((rest, ""));
        let line = n.trim().parse::<u64>().ok();
        let tail = tail.trim().replace(" got ", " fields, found ");
        return (line, format!("wrong number of fields: {tail}"));
    }
    // "Encountered invalid UTF-8 data for line N and field F": N counts records as above.
    if let Some(rest) = text.strip_prefix("Encountered invalid UTF-8 data for line ") {
        let (n, field) = rest.split_once(" and field ").unwrap_or((rest, ""));
        let column = field
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|i| schema.fields().get(i.checked_sub(1)?))
            .map(|f| format!("column '{}': ", f.name()))
            .unwrap_or_default();
        return (
            n.trim().parse::<u64>().ok(),
            format!("{column}the text is not valid UTF-8"),
        );
    }
    // "Error while parsing value 'V' as type 'T' for column C at line L. Row data: ..."
    if let Some(rest) = text.strip_prefix("Error while parsing value ") {
        let value = rest.split(" as type ").next().unwrap_or("").to_string();
        let ty = between(rest, "as type '", "'").unwrap_or_default();
        let column = between(rest, "for column ", " ")
            .and_then(|c| c.parse::<usize>().ok())
            .and_then(|i| schema.fields().get(i).map(|f| f.name().clone()))
            .unwrap_or_default();
        let row = between(rest, "at line ", ".").and_then(|l| l.parse::<u64>().ok());
        // Arrow counts lines from 0 here, the header (if any) included.
        let line = row.map(|r| r + 1);
        return (
            line,
            format!("column '{column}': cannot read {value} as {ty}"),
        );
    }
    (None, text)
}

fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let from = s.find(start)? + start.len();
    let rest = &s[from..];
    let to = rest.find(end).unwrap_or(rest.len());
    Some(rest[..to].to_string())
}
