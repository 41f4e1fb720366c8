//! Property tests of the job-file parser: whatever the text, `parse` returns (never panics),
//! and every error it returns points at a line of the file.
//!
//! Inputs are the job files in `tests/corpus/`, mutated line by line and character by
//! character (lines deleted, repeated, swapped, re-indented; YAML punctuation inserted;
//! text cut short), plus short random YAML-like text.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use sluice_job::{JobFileError, LoadedJob, parse};

/// The corpus: (file name, text).
fn corpus() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("corpus entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name")
                .to_string();
            let text = std::fs::read_to_string(&path).expect("corpus file");
            (name, text)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the corpus has its files");
    files
}

fn parse_text(text: &str) -> Result<LoadedJob, JobFileError> {
    parse(text, Path::new("job.yaml"), Path::new("/staging"))
}

/// The last line a position may name: YAML breaks lines at `\n`, `\r` and `\r\n`; an
/// error at the very end of the text may stand on the line after the last break.
fn max_line(text: &str) -> usize {
    text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1
}

/// Checks that an error names a line of the text, for every problem it reports.
fn assert_located(text: &str, result: &Result<LoadedJob, JobFileError>) {
    let last = max_line(text);
    match result {
        Ok(_) | Err(JobFileError::Read { .. }) => {}
        Err(JobFileError::Syntax { line, column, .. }) => {
            assert!(
                (1..=last).contains(line) && *column >= 1,
                "syntax error at {line}:{column} outside 1..={last}"
            );
        }
        Err(JobFileError::Invalid { located, .. }) => {
            assert!(!located.is_empty(), "an invalid job names its problems");
            for (pos, d) in located {
                let pos = pos.unwrap_or_else(|| panic!("no line for {d}\n---\n{text}"));
                assert!(
                    (1..=last).contains(&pos.line) && pos.column >= 1,
                    "{d} at {}:{} outside 1..={last}",
                    pos.line,
                    pos.column
                );
            }
        }
    }
    if let Err(e) = result {
        let shown = e.to_string();
        let digits = shown
            .strip_prefix("job.yaml:")
            .map(|rest| rest.chars().take_while(char::is_ascii_digit).count());
        assert!(
            matches!(digits, Some(n) if n > 0),
            "the message starts with file:line: {shown}"
        );
    }
}

/// One edit of a job file.
#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(Index),
    RepeatLine(Index),
    SwapLines(Index, Index),
    Indent(Index, bool),
    Insert(Index, String),
    Truncate(Index),
}

/// Text that means something to YAML or to the job format.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            ":",
            ": ",
            "- ",
            "-",
            "{",
            "}",
            "[",
            "]",
            ",",
            "\"",
            "'",
            "&a ",
            "*a",
            "? ",
            "\n",
            "  ",
            "\t",
            "#",
            "!!str ",
            "!!map ",
            "---\n",
            "...\n",
            "~",
            "null",
            "|\n  ",
            ">-",
            "\\",
            "\r\n",
            "é",
            "🚀",
            "\u{feff}",
            "<<: *a\n",
            "name: x\n",
            "sources:\n",
            "transforms: []\n",
            "  - join: {}\n",
            "path: a.csv",
            "=",
            "0x1F",
            "1e400",
        ])
        .prop_map(str::to_string),
        "[ -~]{1,12}",
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<Index>().prop_map(Edit::DeleteLine),
        any::<Index>().prop_map(Edit::RepeatLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<Index>(), any::<bool>()).prop_map(|(i, more)| Edit::Indent(i, more)),
        (any::<Index>(), fragment()).prop_map(|(i, s)| Edit::Insert(i, s)),
        any::<Index>().prop_map(Edit::Truncate),
    ]
}

/// The byte offset of the `i`th character boundary of `text` (text length included).
fn boundary(text: &str, i: &Index) -> usize {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain([text.len()])
        .collect();
    bounds[i.index(bounds.len())]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut text = text.to_string();
    for e in edits {
        let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        let n = lines.len();
        match e {
            Edit::DeleteLine(i) => {
                lines.remove(i.index(n));
            }
            Edit::RepeatLine(i) => {
                let at = i.index(n);
                let line = lines[at].clone();
                lines.insert(at, line);
            }
            Edit::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
            Edit::Indent(i, more) => {
                let line = &mut lines[i.index(n)];
                if *more {
                    line.insert_str(0, "  ");
                } else if let Some(rest) = line.strip_prefix("  ") {
                    *line = rest.to_string();
                }
            }
            Edit::Insert(i, s) => {
                let at = boundary(&text, i);
                text.insert_str(at, s);
                continue;
            }
            Edit::Truncate(i) => {
                let at = boundary(&text, i);
                text.truncate(at);
                continue;
            }
        }
        text = lines.join("\n");
    }
    text
}

#[test]
fn the_corpus_parses_as_expected() {
    for (name, text) in corpus() {
        let result = parse_text(&text);
        assert_located(&text, &result);
        if name.starts_with("invalid") {
            let Err(JobFileError::Invalid { located, .. }) = &result else {
                panic!("{name}: expected an invalid job, got {result:?}");
            };
            assert!(located.len() >= 15, "{name}: {located:?}");
        } else {
            let job = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!job.spec.sources.is_empty(), "{name}");
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for open in ["[", "{a: ", "- "] {
        let text = format!("name: x\nsources: {}", open.repeat(5_000));
        let result = parse_text(&text);
        assert!(result.is_err());
        assert_located(&text, &result);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn edited_job_files_never_panic_and_errors_have_lines(
        file in any::<Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let files = corpus();
        let (_, text) = &files[file.index(files.len())];
        let text = apply(text, &edits);
        let result = parse_text(&text);
        assert_located(&text, &result);
    }

    #[test]
    fn random_yaml_like_text_never_panics_and_errors_have_lines(
        text in "(name|sources|target|transforms|path|input|table|[a-z]|[:{}\\[\\],&*!|>'\"#?~ -]|\n|  ){0,120}",
    ) {
        let result = parse_text(&text);
        assert_located(&text, &result);
    }
}
