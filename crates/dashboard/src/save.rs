//! Writes a dashboard back as the YAML a person would write: keys in the order the README
//! documents them, nothing left at its default, SQL as `|` blocks, encodings and layouts
//! as in the example. The playground saves through it, so a file it writes reads like
//! one written by hand and stays the single source of truth.
//!
//! It writes the file model ([`DashboardFile`]), not the validated [`crate::Dashboard`]:
//! what was left out (a panel's title, a filter's label) stays left out. Comments are not
//! kept, except the comment block at the top of the file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::model::{
    DashboardFile, DefaultFile, EncodingFile, FilterFile, OptionsFile, PanelFile, ScalarText,
};

/// Why a dashboard file could not be read for editing or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SaveError {
    /// The file does not have a dashboard's shape (it would not load either).
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing the file (or its temporary copy) failed.
    #[error("cannot write {file}: {source}")]
    Write {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Parses dashboard YAML into the file model (shape only; [`crate::load::parse`] checks
/// the rest).
pub(crate) fn read_model(text: &str, file: &Path) -> Result<DashboardFile, SaveError> {
    serde_yaml::from_str(text).map_err(|e| SaveError::Parse {
        file: file.to_path_buf(),
        message: e.to_string(),
    })
}

/// The comment block at the top of `text` (comment and blank lines before the first key),
/// kept when the file is written again.
pub(crate) fn header_comment(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('#') || (t.is_empty() && !out.is_empty()) {
            out.push_str(line.trim_end());
            out.push('\n');
        } else if !t.is_empty() {
            break;
        }
    }
    let trimmed = out.trim_end();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}\n")
    }
}

/// `dashboard` as YAML, after `header` (comment lines, possibly empty).
pub(crate) fn to_yaml(dashboard: &DashboardFile, header: &str) -> String {
    let mut out = String::from(header);
    line(&mut out, 0, "id", &plain_or_quoted(&dashboard.id));
    line(&mut out, 0, "title", &plain_or_quoted(&dashboard.title));
    if let Some(d) = &dashboard.description {
        key_text(&mut out, 0, "description", d, false);
    }
    out.push_str("\ndatasets:\n");
    for (name, ds) in &dashboard.datasets {
        let _ = writeln!(out, "  {}:", plain_or_quoted(name));
        key_text(&mut out, 4, "sql", ds.sql.trim(), true);
    }
    if !dashboard.filters.is_empty() {
        out.push_str("\nfilters:\n");
        for f in &dashboard.filters {
            filter(&mut out, f);
        }
    }
    out.push_str("\npanels:\n");
    for (i, p) in dashboard.panels.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        panel(&mut out, p);
    }
    out
}

fn filter(out: &mut String, f: &FilterFile) {
    let _ = writeln!(out, "  - id: {}", plain_or_quoted(&f.id));
    if let Some(label) = &f.label {
        line(out, 4, "label", &plain_or_quoted(label));
    }
    line(out, 4, "type", &kind_name(f.kind));
    line(out, 4, "column", &plain_or_quoted(&f.column));
    if let Some(ds) = &f.datasets {
        line(
            out,
            4,
            "datasets",
            &flow_list(ds.iter().map(String::as_str)),
        );
    }
    match &f.options {
        None => {}
        Some(OptionsFile::List(values)) => {
            line(out, 4, "options", &flow_scalars(values));
        }
        Some(OptionsFile::Sql { sql }) => {
            let sql = sql.trim();
            if sql.contains('\n') {
                out.push_str("    options:\n");
                key_text(out, 6, "sql", sql, true);
            } else {
                // Quoted as in the README: SQL is rarely a safe bare scalar.
                line(out, 4, "options", &format!("{{ sql: {} }}", quoted(sql)));
            }
        }
    }
    match &f.default {
        None => {}
        Some(DefaultFile::One(v)) => line(out, 4, "default", &scalar(v, false)),
        Some(DefaultFile::Many(vs)) => line(out, 4, "default", &flow_scalars(vs)),
    }
}

fn panel(out: &mut String, p: &PanelFile) {
    let _ = writeln!(out, "  - id: {}", plain_or_quoted(&p.id));
    if let Some(title) = &p.title {
        line(out, 4, "title", &plain_or_quoted(title));
    }
    line(out, 4, "type", &kind_name(p.kind));
    line(out, 4, "dataset", &plain_or_quoted(&p.dataset));
    encoding(out, &p.encoding);
    if let Some(l) = &p.layout {
        line(
            out,
            4,
            "layout",
            &format!("{{ x: {}, y: {}, w: {}, h: {} }}", l.x, l.y, l.w, l.h),
        );
    }
}

fn encoding(out: &mut String, e: &EncodingFile) {
    let mut body = String::new();
    for (key, value) in [
        ("x", &e.x),
        ("y", &e.y),
        ("series", &e.series),
        ("value", &e.value),
    ] {
        if let Some(v) = value {
            line(&mut body, 6, key, &plain_or_quoted(v));
        }
    }
    if let Some(columns) = &e.columns {
        line(
            &mut body,
            6,
            "columns",
            &flow_list(columns.iter().map(String::as_str)),
        );
    }
    if let Some(sort) = &e.sort {
        line(&mut body, 6, "sort", &plain_or_quoted(sort));
    }
    if let Some(limit) = e.limit {
        line(&mut body, 6, "limit", &limit.to_string());
    }
    if let Some(format) = &e.format {
        // Formats are always quoted, as in the README (",.0f" looks odd bare).
        line(&mut body, 6, "format", &quoted(format));
    }
    if !body.is_empty() {
        out.push_str("    encoding:\n");
        out.push_str(&body);
    }
}

/// `key: value` at `indent` spaces.
fn line(out: &mut String, indent: usize, key: &str, value: &str) {
    let _ = writeln!(out, "{:indent$}{key}: {value}", "");
}

/// `key: text`, as a literal block when the text has several lines: `|` for SQL (the
/// loader trims it), `|-` for other text, which must come back exactly.
fn key_text(out: &mut String, indent: usize, key: &str, text: &str, sql: bool) {
    match block(text, indent + 2, !sql) {
        Some(b) => {
            let chomp = if sql { "|" } else { "|-" };
            let _ = write!(out, "{:indent$}{key}: {chomp}\n{b}", "");
        }
        None => line(out, indent, key, &plain_or_quoted(text)),
    }
}

/// `text` as the lines of a literal block indented by `indent`, when a block can hold it
/// (`exact`: with no change at all; else trailing spaces may go, as the loader trims SQL).
fn block(text: &str, indent: usize, exact: bool) -> Option<String> {
    let trailing_space = text.lines().any(|l| l != l.trim_end()) || text.ends_with('\n');
    if exact && trailing_space {
        return None;
    }
    let text = text.trim_end();
    let printable = text
        .chars()
        .all(|c| c == '\n' || c == '\t' || !c.is_control());
    if !text.contains('\n') || !printable || text.starts_with([' ', '\t']) {
        return None;
    }
    let mut out = String::new();
    for l in text.lines() {
        if l.trim().is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{:indent$}{}", "", l.trim_end());
        }
    }
    Some(out)
}

/// A text scalar: bare when YAML reads it back as the same text, else double-quoted.
fn plain_or_quoted(text: &str) -> String {
    if is_plain(text, false) {
        text.to_string()
    } else {
        quoted(text)
    }
}

/// A text scalar inside `[ ]` or `{ }`.
fn flow_scalar(text: &str) -> String {
    if is_plain(text, true) {
        text.to_string()
    } else {
        quoted(text)
    }
}

/// A double-quoted scalar (JSON's escapes are a subset of YAML's).
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn is_plain(text: &str, flow: bool) -> bool {
    if text.is_empty()
        || text != text.trim()
        || text.chars().any(|c| c.is_control())
        || text.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`',
        ])
        || text.contains(": ")
        || text.contains(" #")
        || text.ends_with(':')
        || (flow && text.contains([',', '[', ']', '{', '}']))
    {
        return false;
    }
    // Whatever YAML would read as another type (true, null, 1e3, 0x1f, ~) is quoted.
    let doc = if flow {
        format!("[{text}]")
    } else {
        text.to_string()
    };
    match serde_yaml::from_str::<serde_yaml::Value>(&doc) {
        Ok(serde_yaml::Value::String(s)) => !flow && s == text,
        Ok(serde_yaml::Value::Sequence(items)) => {
            flow && items.len() == 1 && items[0] == serde_yaml::Value::String(text.to_string())
        }
        _ => false,
    }
}

fn scalar(v: &ScalarText, flow: bool) -> String {
    match v {
        ScalarText::Bool(b) => b.to_string(),
        ScalarText::Int(i) => i.to_string(),
        ScalarText::Float(f) => {
            let s = f.to_string();
            // `1` would come back as an integer.
            if s.contains(['.', 'e', 'E', 'i', 'N']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        ScalarText::Text(t) if flow => flow_scalar(t),
        ScalarText::Text(t) => plain_or_quoted(t),
    }
}

fn flow_scalars(values: &[ScalarText]) -> String {
    let items: Vec<String> = values.iter().map(|v| scalar(v, true)).collect();
    format!("[{}]", items.join(", "))
}

fn flow_list<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<String> = values.map(flow_scalar).collect();
    format!("[{}]", items.join(", "))
}

/// A kind's name as written in files (`multi_select`, `bar`).
fn kind_name(kind: impl serde::Serialize) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Writes `text` to `file` atomically: a temporary file beside it (not named `*.yaml`, so
/// a reload never reads it half-written), flushed to disk, then renamed over `file`.
pub(crate) fn write_atomically(file: &Path, text: &str) -> Result<(), SaveError> {
    let err = |source| SaveError::Write {
        file: file.to_path_buf(),
        source,
    };
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{name}.{}-{nanos}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/spotify/dashboard.yaml");
        std::fs::read_to_string(path).expect("the example")
    }

    #[test]
    fn the_example_survives_a_round_trip() {
        let text = example();
        let model = read_model(&text, Path::new("x.yaml")).expect("parses");
        let yaml = to_yaml(&model, &header_comment(&text));
        let again = read_model(&yaml, Path::new("x.yaml")).expect("reparses");
        assert_eq!(format!("{model:?}"), format!("{again:?}"), "{yaml}");
        // Writing it again changes nothing, and it reads like the docs.
        assert_eq!(to_yaml(&again, &header_comment(&yaml)), yaml);
        assert!(yaml.starts_with("# The Spotify 2023 dashboard"), "{yaml}");
        assert!(
            yaml.contains("    sql: |\n      SELECT track_id,"),
            "{yaml}"
        );
        assert!(
            yaml.contains("    options: { sql: \"SELECT DISTINCT album_type FROM spotify.tracks ORDER BY 1\" }"),
            "{yaml}"
        );
        assert!(
            yaml.contains("    encoding:\n      y: count(*)\n      format: \",\"\n    layout: { x: 0, y: 0, w: 4, h: 2 }"),
            "{yaml}"
        );
        assert!(!yaml.contains("null") && !yaml.contains('~'), "{yaml}");
    }

    #[test]
    fn scalars_that_would_change_type_are_quoted() {
        for (text, expected) in [
            ("album_type", "album_type"),
            ("count(*)", "count(*)"),
            ("-y", "\"-y\""),
            ("true", "\"true\""),
            ("null", "\"null\""),
            ("2008", "\"2008\""),
            ("1e3", "\"1e3\""),
            ("a: b", "\"a: b\""),
            ("x #y", "\"x #y\""),
            ("*alias", "\"*alias\""),
            ("", "\"\""),
            (" padded", "\" padded\""),
            ("line\nbreak", "\"line\\nbreak\""),
            ("Tracks per album type", "Tracks per album type"),
        ] {
            assert_eq!(plain_or_quoted(text), expected, "{text}");
        }
        assert_eq!(flow_scalar("a,b"), "\"a,b\"");
        assert_eq!(flow_scalar("album"), "album");
        let values = [
            ScalarText::Text("2008".into()),
            ScalarText::Int(2008),
            ScalarText::Float(1.0),
            ScalarText::Bool(true),
        ];
        assert_eq!(flow_scalars(&values), "[\"2008\", 2008, 1.0, true]");
    }

    #[test]
    fn odd_text_round_trips() {
        let mut model = read_model(&example(), Path::new("x.yaml")).expect("parses");
        model.title = "Spotify: \"2023\" # #1 {edition}".into();
        model.description = Some("line one\n  line two\n\nline four".into());
        model.panels[0].title = Some("yes".into());
        model.panels[0].encoding.sort = Some("-y".into());
        let yaml = to_yaml(&model, "");
        let again = read_model(&yaml, Path::new("x.yaml")).expect("reparses");
        assert_eq!(again.title, model.title);
        assert_eq!(again.description, model.description, "{yaml}");
        assert!(
            yaml.contains("description: |-\n  line one\n    line two\n\n  line four\n"),
            "{yaml}"
        );
        assert_eq!(again.panels[0].title.as_deref(), Some("yes"));
        assert_eq!(again.panels[0].encoding.sort.as_deref(), Some("-y"));
    }

    #[test]
    fn writes_replace_the_file_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("d.yaml");
        write_atomically(&file, "one\n").expect("write");
        write_atomically(&file, "two\n").expect("write");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "two\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }
}
