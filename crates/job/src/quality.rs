//! The `quality:` block: a DQDL ruleset and what a failed rule does.
//!
//! The rules are parsed when the job file is loaded (with sluice-quality's grammar), so a
//! bad ruleset is refused before any run, at its line in the job file: [`locate`] maps the
//! error's line and column within the rules text to the file, from where `quality.rules`
//! stands (usually a `|` block, whose first line is the line after the key).

use sluice_proto as pb;

use crate::convert::Converter;
use crate::model;
use crate::source_map::{Position, SourceMap};

/// The diagnostic path of the rules.
const RULES_PATH: &str = "quality.rules";

/// Converts the block, recording an error for an unknown `on_failure` or rules that do not
/// parse.
pub(crate) fn convert(c: &mut Converter, q: &model::QualityFile) -> pb::Quality {
    let on_failure = c.choose(
        "quality.on_failure",
        "quality action",
        q.on_failure.as_deref().unwrap_or("fail"),
        &[
            ("fail", pb::QualityAction::Fail),
            ("warn", pb::QualityAction::Warn),
        ],
        pb::QualityAction::Fail,
    );
    if !q.rules.trim().is_empty()
        && let Err(e) = sluice_quality::parse(&q.rules)
    {
        c.error(RULES_PATH, format!("DQDL {e}"));
    }
    pb::Quality {
        rules: q.rules.clone(),
        on_failure: on_failure as i32,
    }
}

/// Where a diagnostic stands in the job file `text`: for a rules error, the line and column
/// of the error itself; otherwise its path's position.
pub(crate) fn locate(
    source_map: &SourceMap,
    text: &str,
    spec: &pb::JobSpec,
    d: &crate::Diagnostic,
) -> Option<Position> {
    let at = source_map.locate(&d.path);
    if d.path != RULES_PATH {
        return at;
    }
    let key = at?;
    let rules = spec
        .quality
        .as_ref()
        .map(|q| q.rules.as_str())
        .unwrap_or("");
    let Err(e) = sluice_quality::parse(rules) else {
        return Some(key);
    };
    Some(rules_position(text, key, e.line, e.column))
}

/// The file position of line `line`, column `column` of the rules whose key is at `key`.
fn rules_position(text: &str, key: Position, line: usize, column: usize) -> Position {
    let lines: Vec<&str> = text.lines().collect();
    let key_line = lines.get(key.line - 1).copied().unwrap_or("");
    // What follows `rules:` on the key's line.
    let after_key = key_line
        .char_indices()
        .skip(key.column.saturating_sub(1))
        .find(|(_, ch)| *ch == ':')
        .map(|(i, _)| i + 1)
        .unwrap_or(key_line.len());
    let rest = &key_line[after_key..];
    let value = rest.trim_start();
    if value.starts_with('|') || value.starts_with('>') {
        // A block: its lines follow the key, indented by the first content line's indent.
        let first = lines
            .iter()
            .skip(key.line)
            .find(|l| !l.trim().is_empty())
            .copied()
            .unwrap_or("");
        let indent = first.len() - first.trim_start().len();
        return Position {
            line: key.line + line,
            column: indent + column,
        };
    }
    // On the key's line (a quoted value starts one character later).
    let start = after_key + (rest.len() - value.len());
    let quote = usize::from(value.starts_with('"') || value.starts_with('\''));
    if line == 1 {
        Position {
            line: key.line,
            column: start + quote + column,
        }
    } else {
        Position {
            line: key.line + line - 1,
            column,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn error_of(text: &str) -> String {
        match crate::parse(text, Path::new("job.yaml"), Path::new("/tmp")) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    const HEAD: &str = "name: q\nsources:\n  a: { path: a.csv }\ntarget:\n  input: a\n  table: { database: db, name: t }\n";

    #[test]
    fn a_block_rules_error_is_at_its_file_line() {
        let text = format!(
            "{HEAD}quality:\n  on_failure: warn\n  rules: |\n    Rules = [\n      RowCount > 0,\n      IsComplet \"a\"\n    ]\n"
        );
        let e = error_of(&text);
        // The bad rule is on the job file's line 12, column 7.
        assert!(e.contains("job.yaml:12:7"), "{e}");
        assert!(e.contains("did you mean IsComplete?"), "{e}");
    }

    #[test]
    fn an_inline_rules_error_is_on_the_key_line() {
        let text = format!("{HEAD}quality:\n  rules: \"Rules = [ Mean \\\"x\\\" ]\"\n");
        let e = error_of(&text);
        assert!(e.contains("job.yaml:8:"), "{e}");
        assert!(e.contains("needs a condition"), "{e}");
    }

    #[test]
    fn good_rules_load() {
        let text = format!(
            "{HEAD}quality:\n  rules: |\n    Rules = [ RowCount > 0, (IsComplete \"a\") and (IsUnique \"a\") ]\n"
        );
        let job = crate::parse(&text, Path::new("job.yaml"), Path::new("/tmp")).expect("loads");
        assert!(job.spec.quality.is_some());
    }
}
