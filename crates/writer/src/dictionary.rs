//! Which columns a file writes without dictionary encoding: those whose values barely repeat.
//!
//! The Parquet writer builds a dictionary for every column and only gives up on one (for the
//! rest of the row group) once its dictionary page outgrows its limit. For a column of
//! nearly unique values (ids, names, measurements) that is work for nothing, repeated in
//! every row group: interning the values cost about a tenth of the Spotify x100 job. DuckDB
//! decides per column chunk whether a dictionary pays; Sluice decides per file, from the
//! file's first rows.

use std::collections::HashSet;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::hash_utils::{HLL_RANDOM_STATE, create_hashes};
use datafusion::error::Result;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

/// Rows of a file's first batch that are looked at.
const SAMPLE_ROWS: usize = 8192;
/// Fewer non-null values than this in the sample decide nothing (the writer's own fallback
/// still applies).
const MIN_SAMPLE: usize = 1024;
/// A column whose sampled values are more than half distinct is written plain.
const PLAIN_ABOVE: f64 = 0.5;

/// `props` with dictionary encoding off for every column of `first` (a file's first batch,
/// as it is written) whose values barely repeat. A column the writer would not encode with
/// a dictionary anyway (booleans, nested types), or with too few values to judge, keeps
/// `props`' setting.
pub(crate) fn with_plain_columns(
    props: &WriterProperties,
    first: &RecordBatch,
) -> Result<WriterProperties> {
    let mut plain = Vec::new();
    for (field, column) in first.schema().fields().iter().zip(first.columns()) {
        let path = ColumnPath::from(field.name().as_str());
        if !props.dictionary_enabled(&path) || !judged(field.data_type()) {
            continue;
        }
        let sample = column.slice(0, column.len().min(SAMPLE_ROWS));
        if mostly_distinct(sample.as_ref())? {
            plain.push(path);
        }
    }
    if plain.is_empty() {
        return Ok(props.clone());
    }
    let mut builder = props.clone().into_builder();
    for path in plain {
        builder = builder.set_column_dictionary_enabled(path, false);
    }
    Ok(builder.build())
}

/// Types written as one Parquet column that a dictionary may encode.
fn judged(t: &DataType) -> bool {
    !(t.is_nested()
        || matches!(
            t,
            DataType::Boolean | DataType::Null | DataType::Dictionary(_, _)
        ))
}

/// Whether more than [`PLAIN_ABOVE`] of `values`' non-null entries are distinct (by their
/// 64-bit hashes: a collision only undercounts).
fn mostly_distinct(values: &dyn Array) -> Result<bool> {
    let non_null = values.len() - values.null_count();
    if non_null < MIN_SAMPLE {
        return Ok(false);
    }
    let mut hashes = vec![0u64; values.len()];
    create_hashes([values], &HLL_RANDOM_STATE, &mut hashes)?;
    let distinct: HashSet<u64> = hashes
        .iter()
        .enumerate()
        .filter(|(i, _)| values.is_valid(*i))
        .map(|(_, h)| *h)
        .collect();
    Ok(distinct.len() as f64 > PLAIN_ABOVE * non_null as f64)
}
