//! The patched Parquet dictionary encoders (`vendor/parquet`, see `vendor/README.md`): a
//! value equal to the one before it reuses that one's dictionary key without a hash lookup.
//! Random columns made of runs of repeated values (with nulls, empty strings, NaN and both
//! zeros) are written through arrow-rs's `ArrowWriter` and must read back unchanged, each
//! column chunk dictionary-encoded with exactly one dictionary entry per distinct value.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::Encoding;
use datafusion::parquet::column::page::Page;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use proptest::prelude::*;

/// One row: a string, an integer and a float, each optional.
type Row = (Option<String>, Option<i64>, Option<f64>);

/// Values drawn from a few choices, so that runs and repeats across runs both occur.
fn value() -> impl Strategy<Value = Row> {
    let text = prop_oneof![
        Just(None),
        Just(Some(String::new())),
        "[ab]{1,3}".prop_map(Some),
        Just(Some("a longer value shared by many rows".to_string())),
    ];
    let int = prop_oneof![Just(None), (-3i64..3).prop_map(Some)];
    let float = prop_oneof![
        Just(None),
        Just(Some(f64::NAN)),
        Just(Some(0.0)),
        Just(Some(-0.0)),
        (-2i32..2).prop_map(|v| Some(f64::from(v) / 2.0)),
    ];
    (text, int, float)
}

/// Runs of one value each, 1 to 12 rows long: the rows in order.
fn rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec((value(), 1usize..12), 1..60).prop_map(|runs| {
        runs.into_iter()
            .flat_map(|(row, n)| std::iter::repeat_n(row, n))
            .collect()
    })
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("i", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
    ]))
}

fn batch(rows: &[Row]) -> RecordBatch {
    let s: StringArray = rows.iter().map(|r| r.0.as_deref()).collect();
    let i: Int64Array = rows.iter().map(|r| r.1).collect();
    let f: Float64Array = rows.iter().map(|r| r.2).collect();
    let columns: Vec<ArrayRef> = vec![Arc::new(s), Arc::new(i), Arc::new(f)];
    RecordBatch::try_new(schema(), columns).expect("batch")
}

/// Writes `rows` in batches of `batch_rows` (a run may cross batches) into one row group of
/// a temporary file.
fn write(rows: &[Row], batch_rows: usize) -> std::fs::File {
    let props = WriterProperties::builder()
        .set_dictionary_enabled(true)
        .set_max_row_group_row_count(Some(rows.len().max(1)))
        .build();
    let out = tempfile::tempfile().expect("temporary file");
    let copy = out.try_clone().expect("file handle");
    let mut writer = ArrowWriter::try_new(copy, schema(), Some(props)).expect("writer");
    for chunk in rows.chunks(batch_rows) {
        writer.write(&batch(chunk)).expect("write");
    }
    writer.close().expect("close");
    out
}

/// How many distinct non-null values each column has, as the dictionary must hold them:
/// compared by their bytes, as the encoder does (NaN equals NaN, 0.0 differs from -0.0).
fn distinct(rows: &[Row]) -> [usize; 3] {
    let s: HashSet<&str> = rows.iter().filter_map(|r| r.0.as_deref()).collect();
    let i: HashSet<i64> = rows.iter().filter_map(|r| r.1).collect();
    let f: HashSet<u64> = rows.iter().filter_map(|r| r.2.map(f64::to_bits)).collect();
    [s.len(), i.len(), f.len()]
}

/// The values of each column's dictionary page, and whether each chunk is dictionary-encoded.
fn dictionaries(file: &std::fs::File) -> Vec<(bool, u32)> {
    let file = file.try_clone().expect("file handle");
    let reader = SerializedFileReader::new(file).expect("reader");
    let group = reader.get_row_group(0).expect("row group");
    (0..3)
        .map(|c| {
            let dictionary_encoded = group
                .metadata()
                .column(c)
                .encodings()
                .any(|e| e == Encoding::RLE_DICTIONARY);
            let mut pages = group.get_column_page_reader(c).expect("pages");
            let first = pages.get_next_page().expect("page").expect("a first page");
            let values = match first {
                Page::DictionaryPage { num_values, .. } => num_values,
                _ => 0,
            };
            (dictionary_encoded, values)
        })
        .collect()
}

fn read(file: &std::fs::File) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(file.try_clone().expect("file handle"))
        .expect("builder")
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("read")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn runs_of_repeated_values_round_trip_with_one_dictionary_entry_per_value(
        rows in rows(),
        batch_rows in 1usize..40,
    ) {
        let file = write(&rows, batch_rows);
        let expected = batch(&rows);
        let got = read(&file);
        let got = datafusion::arrow::compute::concat_batches(&schema(), &got).expect("concat");
        prop_assert_eq!(got.num_rows(), expected.num_rows());
        for c in 0..3 {
            // Compared as Arrow data: NaN is equal to NaN there, and -0.0 differs from 0.0.
            prop_assert_eq!(got.column(c).to_data(), expected.column(c).to_data(), "column {}", c);
        }
        let want = distinct(&rows);
        for (c, (encoded, values)) in dictionaries(&file).into_iter().enumerate() {
            if want[c] == 0 {
                continue; // an all-null chunk has no dictionary to check
            }
            prop_assert!(encoded, "column {} is not dictionary-encoded", c);
            prop_assert_eq!(values as usize, want[c], "dictionary entries of column {}", c);
        }
    }
}
