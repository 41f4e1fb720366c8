//! The CSV error locator (`sluice_planner::diagnose`): whatever the file, a bad row is named
//! by its file and by the line it starts on, as an editor counts lines, however the file is
//! cut into chunks and the rows fall into the decoder's batches: with or without a header,
//! quoted fields, CRLF endings, quoted fields holding line breaks and unterminated quotes.
//! Property tests over generated files, and every file of the corpus in `tests/corpus/csv/`.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use sluice_planner::diagnose::{locate_csv_error, locate_in_chunks};
use sluice_planner::{PlannedSource, SourceFile};
use sluice_proto as pb;

use crate::support::repo;

/// What is wrong with the bad row.
#[derive(Debug, Clone, Copy)]
enum Defect {
    MissingField,
    ExtraField,
    NotANumber,
    NotUtf8,
    /// A quote opened at the start of the row's first field and never closed as a field
    /// ends: the field runs on to the next quote, or to the end of the file.
    UnterminatedQuote,
}

/// A CSV file: `columns` columns (the first a string, the others bigint), `rows` rows, and
/// `defect` in data row `bad` (counted from 0) if any. With `multiline`, every third row's
/// string (quoted) holds a line break, so records and lines part.
#[derive(Debug, Clone)]
struct File {
    header: bool,
    crlf: bool,
    quoted: bool,
    multiline: bool,
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
                    let v = if c == 0 && self.breaks_in(r) {
                        let end = String::from_utf8_lossy(end).into_owned();
                        format!("name {r}{end}continued")
                    } else if c == 0 {
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
                    Defect::UnterminatedQuote => fields[0] = b"\"open".to_vec(),
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

    /// Whether data row `row`'s string holds a line break.
    fn breaks_in(&self, row: usize) -> bool {
        self.multiline && row.is_multiple_of(3) && self.bad.is_none_or(|(bad, _)| bad != row)
    }

    /// The line of the file that data row `row` starts on.
    fn line_of(&self, row: usize) -> u64 {
        let breaks = (0..row).filter(|r| self.breaks_in(*r)).count();
        (row + 1 + usize::from(self.header) + breaks) as u64
    }
}

fn file() -> impl Strategy<Value = File> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        2usize..6,
        1usize..2600,
    )
        .prop_flat_map(|(header, crlf, quoted, multiline, columns, rows)| {
            let defect = prop_oneof![
                Just(Defect::MissingField),
                Just(Defect::ExtraField),
                Just(Defect::NotANumber),
                Just(Defect::NotUtf8),
                Just(Defect::UnterminatedQuote),
            ];
            (
                Just(File {
                    header,
                    crlf,
                    // Line breaks in values need quotes.
                    quoted: quoted || multiline,
                    multiline,
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
                    Defect::MissingField | Defect::ExtraField | Defect::UnterminatedQuote => {
                        "wrong number of fields"
                    }
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
        multiline: false,
        columns: 2,
        rows: 1,
        bad: None,
    };
    let bytes = f.bytes();
    let chunks: Vec<&[u8]> = vec![&bytes[..1], &[], &bytes[1..]];
    assert_eq!(locate_in_chunks(&chunks, &f.schema(), &f.format()), None);
}

/// One case of `tests/corpus/csv/cases.txt`.
struct Case {
    file: String,
    csv: pb::CsvFormat,
    schema: Arc<Schema>,
    /// The line and a part of the message, unless the file is good.
    expected: Option<(u64, String)>,
}

fn corpus_dir() -> std::path::PathBuf {
    repo().join("tests/corpus/csv")
}

/// The cases of the corpus's `cases.txt`; see its header for the format.
fn corpus_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(corpus_dir().join("cases.txt")).expect("cases.txt");
    let mut cases = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let mut next = |what: &str| {
            words
                .next()
                .unwrap_or_else(|| panic!("cases.txt: no {what} in `{line}`"))
                .to_string()
        };
        let (file, options, columns, at) =
            (next("file"), next("options"), next("columns"), next("line"));
        let message = line
            .split_whitespace()
            .skip(4)
            .collect::<Vec<_>>()
            .join(" ");
        let mut csv = pb::CsvFormat {
            has_header: true,
            delimiter: ",".into(),
            quote: "\"".into(),
            newlines_in_values: true,
            ..Default::default()
        };
        for option in options.split(',').filter(|o| *o != "-") {
            match option.split_once('=') {
                Some(("header", v)) => csv.has_header = v == "yes",
                Some(("delimiter", v)) => csv.delimiter = v.into(),
                Some(("escape", v)) => csv.escape = v.into(),
                _ => panic!("cases.txt: unknown option `{option}` in `{line}`"),
            }
        }
        let fields: Vec<Field> = columns
            .split(',')
            .map(|c| match c.split_once(':') {
                None => Field::new(c, DataType::Utf8, true),
                Some((name, "int64")) => Field::new(name, DataType::Int64, true),
                Some((_, other)) => panic!("cases.txt: unknown type `{other}` in `{line}`"),
            })
            .collect();
        let expected = match at.as_str() {
            "-" => None,
            n => Some((
                n.parse()
                    .unwrap_or_else(|_| panic!("cases.txt: line `{n}`")),
                message,
            )),
        };
        cases.push(Case {
            file,
            csv,
            schema: Arc::new(Schema::new(fields)),
            expected,
        });
    }
    cases
}

/// Ways to cut `bytes` into chunks: whole, byte by byte, and in pieces of a few sizes.
fn chunkings(bytes: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut out = vec![vec![bytes]];
    for size in [1, 2, 3, 5, 7, 13] {
        out.push(bytes.chunks(size).collect());
    }
    out
}

/// A source reading `files` of the corpus with the case's options.
fn source(case: &Case, files: &[&Path]) -> PlannedSource {
    PlannedSource {
        name: "corpus".into(),
        files: files
            .iter()
            .map(|f| SourceFile {
                url: format!("file://{}", f.display()),
                size: 0,
                modified_ms: 0,
                etag: String::new(),
            })
            .collect(),
        skipped: 0,
        spec: pb::Source {
            name: "corpus".into(),
            path: case.file.clone(),
            format: Some(pb::source::Format::Csv(case.csv.clone())),
            bookmark: None,
        },
        schema: case.schema.clone(),
    }
}

/// Every file of the corpus: the locator names the line its bad record starts on, with the
/// expected message, however the file arrives in chunks; read from disk as a failed run
/// reads it, the error names the file (and not the good file read before it) and the line.
#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_file_is_located_by_its_file_and_line() {
    let cases = corpus_cases();
    let mut listed: Vec<&str> = cases.iter().map(|c| c.file.as_str()).collect();
    listed.sort_unstable();
    let mut present: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv"))
        .collect();
    present.sort_unstable();
    assert_eq!(
        listed, present,
        "cases.txt lists exactly the corpus's files"
    );

    let ctx = SessionContext::new();
    let good = corpus_dir().join("good_multiline.csv");
    let mut checked = 0;
    for case in &cases {
        let path = corpus_dir().join(&case.file);
        let bytes = std::fs::read(&path).expect("corpus file");
        let expected = case.expected.as_ref().map(|(l, m)| (Some(*l), m.as_str()));
        for chunks in chunkings(&bytes) {
            let found = locate_in_chunks(&chunks, &case.schema, &case.csv);
            let found = found.as_ref().map(|(l, m)| (*l, m.as_str()));
            match (found, expected) {
                (None, None) => {}
                (Some((line, message)), Some((want_line, want_message))) => {
                    assert!(
                        line == want_line && message.contains(want_message),
                        "{}: found line {line:?}: {message}; expected line {want_line:?}: \
                         {want_message} (chunks of {} bytes)",
                        case.file,
                        chunks[0].len()
                    );
                }
                (found, _) => panic!(
                    "{}: found {found:?}, expected {expected:?} (chunks of {} bytes)",
                    case.file,
                    chunks[0].len()
                ),
            }
        }
        // From disk, after a good file of the same source when the options allow one.
        let defaults =
            case.csv.has_header && case.csv.delimiter == "," && case.csv.escape.is_empty();
        let files: Vec<&Path> = if defaults && path != good {
            vec![good.as_path(), path.as_path()]
        } else {
            vec![path.as_path()]
        };
        let found = locate_csv_error(&ctx, &[source(case, &files)]).await;
        match (&found, &case.expected) {
            (None, None) => {}
            (Some(e), Some((line, message))) => {
                let shown = e.to_string();
                let want = format!("{}:{line}: ", path.display());
                assert!(
                    shown.starts_with(&want) && shown.contains(message.as_str()),
                    "{}: the error reads `{shown}`; expected `{want}… {message}`",
                    case.file
                );
                assert_eq!(e.line, Some(*line), "{shown}");
                assert_eq!(e.source, "corpus");
            }
            (found, expected) => panic!("{}: found {found:?}, expected {expected:?}", case.file),
        }
        checked += 1;
    }
    assert!(checked >= 12, "{checked} corpus files");
}
