//! Finds where a CSV read failed: the file, the line and the column.
//!
//! DataFusion reports CSV errors without the file name, and with line numbers relative to
//! the byte range a task read. When a run fails with such an error, the sources are read
//! again here, file by file from the start, to name the exact place. This runs only on the
//! failure path.

use std::sync::Arc;

use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::error::ArrowError;
use datafusion::datasource::listing::ListingTableUrl;
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

/// Whether a failure message looks like a CSV read error.
pub fn is_csv_error(message: &str) -> bool {
    ["Csv error", "CsvError", "Parser error", "ParseError"]
        .iter()
        .any(|m| message.contains(m))
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

async fn check_file(
    ctx: &SessionContext,
    url: &str,
    schema: &Arc<Schema>,
    csv: &pb::CsvFormat,
) -> Option<(Option<u64>, String)> {
    let table_url = ListingTableUrl::parse(url).ok()?;
    let store = ctx.runtime_env().object_store(&table_url).ok()?;
    let location = table_url.prefix().clone();
    let mut stream = match store.get(&location).await {
        Ok(r) => r.into_stream(),
        Err(e) => return Some((None, format!("cannot read the file: {e}"))),
    };
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
    let mut decoder = builder.build_decoder();
    let header_lines = u64::from(csv.has_header);
    let mut pending: Vec<u8> = Vec::new();
    let mut finished = false;
    while !finished {
        match stream.next().await {
            Some(Ok(bytes)) => pending.extend_from_slice(&bytes),
            Some(Err(e)) => return Some((None, format!("cannot read the file: {e}"))),
            None => finished = true,
        }
        loop {
            // An empty slice tells the decoder the input has ended.
            let consumed = match decoder.decode(&pending) {
                Ok(n) => n,
                Err(e) => return Some(explain(e, schema, header_lines)),
            };
            pending.drain(..consumed);
            if decoder.capacity() == 0 {
                if let Err(e) = decoder.flush() {
                    return Some(explain(e, schema, header_lines));
                }
                continue;
            }
            if consumed == 0 || pending.is_empty() {
                break;
            }
        }
    }
    match decoder.decode(&[]).and_then(|_| decoder.flush()) {
        Err(e) => Some(explain(e, schema, header_lines)),
        Ok(_) => None,
    }
}

fn regex_for(value: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^{}$", regex::escape(value)))
}

/// Rewrites arrow's message in terms of file lines and column names.
fn explain(e: ArrowError, schema: &Schema, header_lines: u64) -> (Option<u64>, String) {
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
    // "Error while parsing value 'V' as type 'T' for column C at line L. Row data: ..."
    if let Some(rest) = text.strip_prefix("Error while parsing value ") {
        let value = rest.split(" as type ").next().unwrap_or("").to_string();
        let ty = between(rest, "as type '", "'").unwrap_or_default();
        let column = between(rest, "for column ", " ")
            .and_then(|c| c.parse::<usize>().ok())
            .and_then(|i| schema.fields().get(i).map(|f| f.name().clone()))
            .unwrap_or_default();
        let row = between(rest, "at line ", ".").and_then(|l| l.parse::<u64>().ok());
        // Arrow counts data rows from 1 across batches; the file has the header above them.
        let line = row.map(|r| r + header_lines);
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
