//! Property tests of the CSV error locator (`sluice_planner::diagnose::locate_in_chunks`):
//! whatever the file, a bad row is named by its line in the file, however the file is cut
//! into chunks and the rows fall into the decoder's batches, with or without a header,
//! quoted fields and CRLF endings.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use proptest::prelude::*;
use sluice_planner::diagnose::locate_in_chunks;
use sluice_proto as pb;

/// What is wrong with the bad row.
#[derive(Debug, Clone, Copy)]
enum Defect {
    MissingField,
    ExtraField,
    NotANumber,
    NotUtf8,
}

/// A CSV file: `columns` columns (the first a string, the others bigint), `rows` rows, and
/// `defect` in data row `bad` (counted from 0) if any.
#[derive(Debug, Clone)]
struct File {
    header: bool,
    crlf: bool,
    quoted: bool,
    columns: usize,
    rows: usize,
    bad: Option<(usize, Defect)>,
}

impl File {
    fn schema(&self) -> Arc<Schema> {
        let fields: Vec<Field> = (1..=self.columns)
            .map(|i| {
                let ty = if i == 1 {
                    DataType::Utf8
                } else {
                    DataType::Int64
                };
                Field::new(format!("c{i}"), ty, true)
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn bytes(&self) -> Vec<u8> {
        let end: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        let mut out = Vec::new();
        if self.header {
            let names: Vec<String> = (1..=self.columns).map(|i| format!("c{i}")).collect();
            out.extend_from_slice(names.join(",").as_bytes());
            out.extend_from_slice(end);
        }
        for r in 0..self.rows {
            let mut fields: Vec<Vec<u8>> = (0..self.columns)
                .map(|c| {
                    let v = if c == 0 {
                        format!("name {r}")
                    } else {
                        (r * 10 + c).to_string()
                    };
                    if self.quoted {
                        format!("\"{v}\"").into_bytes()
                    } else {
                        v.into_bytes()
                    }
                })
                .collect();
            if let Some((bad, defect)) = self.bad
                && bad == r
            {
                match defect {
                    Defect::MissingField => {
                        fields.pop();
                    }
                    Defect::ExtraField => fields.push(b"9".to_vec()),
                    Defect::NotANumber => fields[self.columns - 1] = b"lots".to_vec(),
                    Defect::NotUtf8 => fields[0] = vec![b'x', 0xff, 0xfe],
                }
            }
            out.extend_from_slice(&fields.join(&b","[..]));
            out.extend_from_slice(end);
        }
        out
    }

    fn format(&self) -> pb::CsvFormat {
        pb::CsvFormat {
            has_header: self.header,
            delimiter: ",".into(),
            quote: "\"".into(),
            ..Default::default()
        }
    }

    /// The line of the file that holds data row `row`.
    fn line_of(&self, row: usize) -> u64 {
        (row + 1 + usize::from(self.header)) as u64
    }
}

fn file() -> impl Strategy<Value = File> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        2usize..6,
        1usize..2600,
    )
        .prop_flat_map(|(header, crlf, quoted, columns, rows)| {
            let defect = prop_oneof![
                Just(Defect::MissingField),
                Just(Defect::ExtraField),
                Just(Defect::NotANumber),
                Just(Defect::NotUtf8),
            ];
            (
                Just(File {
                    header,
                    crlf,
                    quoted,
                    columns,
                    rows,
                    bad: None,
                }),
                prop::option::weighted(0.9, (0..rows, defect)),
            )
        })
        .prop_map(|(mut f, bad)| {
            f.bad = bad;
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_bad_row_is_named_by_its_line_in_the_file(
        f in file(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let bytes = f.bytes();
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.extend([0, bytes.len()]);
        at.sort_unstable();
        let chunks: Vec<&[u8]> = at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
        let found = locate_in_chunks(&chunks, &f.schema(), &f.format());
        match f.bad {
            None => prop_assert_eq!(found, None),
            Some((row, defect)) => {
                let (line, message) = found.expect("the bad row is found");
                prop_assert_eq!(line, Some(f.line_of(row)), "{:?}: {}", defect, message);
                let expected = match defect {
                    Defect::MissingField | Defect::ExtraField => "wrong number of fields",
                    Defect::NotANumber => "cannot read",
                    Defect::NotUtf8 => "not valid UTF-8",
                };
                prop_assert!(message.contains(expected), "{:?}: {}", defect, message);
            }
        }
    }
}

/// An empty chunk in the middle of a row (two cuts at the same place, or a store sending an
/// empty buffer) does not end the row: found by the property above.
#[test]
fn an_empty_chunk_inside_a_row_does_not_end_it() {
    let f = File {
        header: false,
        crlf: false,
        quoted: false,
        columns: 2,
        rows: 1,
        bad: None,
    };
    let bytes = f.bytes();
    let chunks: Vec<&[u8]> = vec![&bytes[..1], &[], &bytes[1..]];
    assert_eq!(locate_in_chunks(&chunks, &f.schema(), &f.format()), None);
}
