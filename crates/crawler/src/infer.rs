//! One file's schema: a Parquet footer, or the head of a CSV file.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use sluice_catalog::ColumnEntry;
use sluice_catalog::types::hive_type;

use crate::CrawlError;

/// Bytes of a CSV file read to infer its schema.
const CSV_SAMPLE_BYTES: u64 = 1 << 20;

/// File formats a crawl recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header line.
    Csv,
}

impl Format {
    /// The format of a file, by its name's extension.
    pub(crate) fn of(name: &str) -> Option<Self> {
        let lower = name.to_lowercase();
        if [".parquet", ".parq", ".pq"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            Some(Self::Parquet)
        } else if lower.ends_with(".csv") {
            Some(Self::Csv)
        } else {
            None
        }
    }

    /// The classification a crawler gives it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
        }
    }
}

/// What one file contributes to its table.
#[derive(Debug, Clone)]
pub struct FileSchema {
    /// Its columns, in file order, with Athena types.
    pub columns: Vec<ColumnEntry>,
    /// Rows (exact for Parquet; estimated from the sample for large CSV files).
    pub rows: u64,
    /// Whether a CSV file quotes fields.
    pub quoted: bool,
}

/// Reads the schema of the file at `location` (`display` names it in errors).
pub(crate) async fn read_schema(
    store: Arc<dyn ObjectStore>,
    location: &Path,
    size: u64,
    format: Format,
    display: &str,
) -> Result<FileSchema, CrawlError> {
    let bad = |message: String| CrawlError::BadFile {
        file: display.to_string(),
        message,
    };
    let (schema, rows, quoted) =
        match format {
            Format::Parquet => {
                let not_parquet = |e: String| bad(format!("not a readable Parquet file: {e}"));
                // The footer: its last 8 bytes give the metadata's length.
                let read = |range: std::ops::Range<u64>| {
                    let store = store.clone();
                    async move {
                        store
                            .get_range(location, range)
                            .await
                            .map_err(|source| CrawlError::Store {
                                url: display.to_string(),
                                source,
                            })
                    }
                };
                if size < 12 {
                    return Err(not_parquet(format!("only {size} bytes")));
                }
                let tail = read(size - 8..size).await?;
                let tail: &[u8; 8] = tail[..]
                    .try_into()
                    .map_err(|_| not_parquet("short footer".into()))?;
                let length = FooterTail::try_new(tail)
                    .map_err(|e| not_parquet(e.to_string()))?
                    .metadata_length() as u64;
                if length + 8 > size {
                    return Err(not_parquet("footer longer than the file".into()));
                }
                let bytes = read(size - 8 - length..size - 8).await?;
                let metadata = ParquetMetaDataReader::decode_metadata(&bytes)
                    .map_err(|e| not_parquet(e.to_string()))?;
                let file = metadata.file_metadata();
                let schema = parquet::arrow::parquet_to_arrow_schema(
                    file.schema_descr(),
                    file.key_value_metadata(),
                )
                .map_err(|e| not_parquet(e.to_string()))?;
                (schema, file.num_rows().max(0) as u64, false)
            }
            Format::Csv => {
                let end = size.min(CSV_SAMPLE_BYTES);
                let bytes = store.get_range(location, 0..end).await.map_err(|source| {
                    CrawlError::Store {
                        url: display.to_string(),
                        source,
                    }
                })?;
                // Infer from whole lines only.
                let sample = if end < size {
                    let cut = bytes.iter().rposition(|b| *b == b'\n').unwrap_or(0);
                    &bytes[..cut]
                } else {
                    &bytes[..]
                };
                // Every record of the sample (at most CSV_SAMPLE_BYTES) informs the types, and
                // counts the rows: exactly for small files, by extrapolation for large ones.
                let (schema, records) = arrow_csv::reader::Format::default()
                    .with_header(true)
                    .infer_schema(sample, None)
                    .map_err(|e| bad(format!("not a readable CSV file: {e}")))?;
                let rows = if end < size && !sample.is_empty() {
                    records as u64 * size / sample.len() as u64
                } else {
                    records as u64
                };
                (schema, rows, sample.contains(&b'"'))
            }
        };
    let mut columns = Vec::new();
    for field in schema.fields() {
        let name = field.name().to_lowercase();
        sluice_job::names::check_catalog_name(&name).map_err(|e| bad(format!("column {e}")))?;
        // A CSV column with no values in the sample is text, as a crawler reads it.
        let t = match field.data_type() {
            arrow_schema::DataType::Null => "string".to_string(),
            other => hive_type(other).map_err(|e| bad(format!("column '{name}': {e}")))?,
        };
        columns.push(ColumnEntry { name, hive_type: t });
    }
    Ok(FileSchema {
        columns,
        rows,
        quoted,
    })
}
