//! The patched min/max of byte-array columns in the Parquet writer (`vendor/parquet`, see
//! `vendor/README.md`): values are compared by their first 16 bytes as an integer first,
//! by all their bytes only where those are equal. Random strings and byte strings (empty,
//! sharing long prefixes, around the 8- and 16-byte edges, with NUL, 0xFF and multi-byte
//! characters) are written through arrow-rs's `ArrowWriter`, as plain, view and binary
//! arrays, with and without a dictionary; each column chunk's statistics must hold exactly
//! the smallest and the largest value in byte order, computed here by sorting.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BinaryArray, RecordBatch, StringArray, StringViewArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use datafusion::parquet::file::statistics::Statistics;
use proptest::prelude::*;

/// A string from pieces that make prefixes collide: a shared 15-, 16- or 17-byte stem, NUL,
/// a two-byte character, DEL and ASCII letters; 0 to about 40 bytes long.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("0123456789abcde".to_string()),
        Just("0123456789abcdef".to_string()),
        Just("0123456789abcdefg".to_string()),
        Just("\0".to_string()),
        Just("é".to_string()),
        Just("\u{7f}".to_string()),
        "[ab]{1,3}",
    ];
    prop::collection::vec(piece, 0..4).prop_map(|pieces| pieces.concat())
}

/// Bytes, 0 to 24 long, of 0x00, 0x01, 'a' and 0xFF: every edge of unsigned byte order.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0u8, 1, b'a', 0xFF]), 0..24)
}

/// One row: a string (written as Utf8 and as Utf8View) and a byte string, each optional.
type Row = (Option<String>, Option<Vec<u8>>);

fn rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec(
        (
            prop::option::weighted(0.9, text()),
            prop::option::weighted(0.9, bytes()),
        ),
        1..80,
    )
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("v", DataType::Utf8View, true),
        Field::new("b", DataType::Binary, true),
    ]))
}

fn batch(rows: &[Row]) -> RecordBatch {
    let s: StringArray = rows.iter().map(|r| r.0.as_deref()).collect();
    let v: StringViewArray = rows.iter().map(|r| r.0.as_deref()).collect();
    let b: BinaryArray = rows.iter().map(|r| r.1.as_deref()).collect();
    let columns: Vec<ArrayRef> = vec![Arc::new(s), Arc::new(v), Arc::new(b)];
    RecordBatch::try_new(schema(), columns).expect("batch")
}

/// Writes `rows` in batches of `batch_rows` into one row group of a temporary file, with
/// untruncated chunk statistics; returns each column's (min, max) bytes from its footer.
fn written_min_max(
    rows: &[Row],
    batch_rows: usize,
    dictionary: bool,
) -> Vec<Option<(Vec<u8>, Vec<u8>)>> {
    let props = WriterProperties::builder()
        .set_dictionary_enabled(dictionary)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_statistics_truncate_length(None)
        .set_max_row_group_row_count(Some(rows.len().max(1)))
        .build();
    let out = tempfile::tempfile().expect("temporary file");
    let copy = out.try_clone().expect("file handle");
    let mut writer = ArrowWriter::try_new(copy, schema(), Some(props)).expect("writer");
    for chunk in rows.chunks(batch_rows) {
        writer.write(&batch(chunk)).expect("write");
    }
    writer.close().expect("close");
    let reader = SerializedFileReader::new(out).expect("reader");
    let group = reader.metadata().row_group(0).clone();
    (0..3)
        .map(|c| match group.column(c).statistics() {
            Some(Statistics::ByteArray(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(min), Some(max)) => Some((min.data().to_vec(), max.data().to_vec())),
                _ => None,
            },
            None => None,
            Some(other) => panic!("column {c}: statistics of another type: {other:?}"),
        })
        .collect()
}

/// The smallest and largest of `values` in byte order, by sorting.
fn expected<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut all: Vec<&[u8]> = values.collect();
    all.sort();
    Some((all.first()?.to_vec(), all.last()?.to_vec()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn chunk_statistics_hold_the_byte_order_min_and_max(
        rows in rows(),
        batch_rows in 1usize..30,
        dictionary in any::<bool>(),
    ) {
        let got = written_min_max(&rows, batch_rows, dictionary);
        let strings = expected(rows.iter().filter_map(|r| r.0.as_deref().map(str::as_bytes)));
        let binary = expected(rows.iter().filter_map(|r| r.1.as_deref()));
        prop_assert_eq!(&got[0], &strings, "Utf8 column");
        prop_assert_eq!(&got[1], &strings, "Utf8View column");
        prop_assert_eq!(&got[2], &binary, "Binary column");
    }
}
