//! Where each value of a YAML document stands, by its path (`transforms[1].join.on[0].left`).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

/// A line and column in a file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// A mapping key written twice in the same mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// Path of the key, such as `sources.artists`.
    pub path: String,
    /// The key as written.
    pub key: String,
    /// Where it is written again.
    pub at: Position,
    /// Where it is first written.
    pub first: Position,
}

/// Maps value paths of one YAML document to their positions.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    positions: HashMap<String, Position>,
    duplicates: Vec<DuplicateKey>,
    parsed: bool,
    refusal: Option<Refusal>,
}

/// Why the YAML parser refused a text, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Where the parser stopped.
    pub at: Position,
    /// The parser's message.
    pub message: String,
}

impl SourceMap {
    /// Reads `text` and records the position of every mapping key and sequence item, and
    /// every key that a mapping repeats. Text that does not parse yields an empty map (the
    /// deserializer reports that error).
    pub fn build(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        // Event by event rather than `Parser::load`, which recurses once per nesting level.
        loop {
            match parser.next_token() {
                Ok((Event::StreamEnd, _)) => break,
                Ok((ev, mark)) => builder.on_event(ev, mark),
                Err(e) => {
                    return Self {
                        refusal: Some(Refusal {
                            at: Position {
                                line: e.marker().line().max(1),
                                column: e.marker().col() + 1,
                            },
                            message: e.info().to_string(),
                        }),
                        ..Self::default()
                    };
                }
            }
        }
        Self {
            positions: builder.positions,
            duplicates: builder.duplicates,
            parsed: true,
            refusal: None,
        }
    }

    /// Keys written twice in one mapping, in the order they appear. YAML forbids them, but
    /// deserializers keep the last silently, so a repeated source would replace the first.
    pub fn duplicates(&self) -> &[DuplicateKey] {
        &self.duplicates
    }

    /// Whether the text parsed (otherwise the map is empty).
    pub fn parsed(&self) -> bool {
        self.parsed
    }

    /// Why the text did not parse, when it did not. The deserializer is laxer than the
    /// YAML specification in places (a flow scalar continued on a line indented less than
    /// its block, for one), so callers report this even when the deserializer accepted
    /// the text: nothing could be located in it, and another tool would read it otherwise.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_ref()
    }

    /// The position of `path`, or of its nearest ancestor that the document has (at worst
    /// the document itself). `None` only when the text did not parse.
    pub fn locate(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => return self.positions.get("").copied(),
            }
        }
    }
}

/// Stands in the path of a key that is itself a mapping or sequence (never a job key).
const COMPLEX_KEY: &str = "<key>";

enum Frame {
    Map {
        path: String,
        /// The key whose value comes next; `None` while a key is awaited.
        key: Option<String>,
        /// Keys seen in this mapping and where.
        seen: HashMap<String, Position>,
    },
    Seq {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<String, Position>,
    duplicates: Vec<DuplicateKey>,
}

impl Builder {
    /// The path of the value that starts now, advancing the parent's cursor.
    fn next_value_path(&mut self) -> Option<String> {
        match self.stack.last_mut()? {
            Frame::Map { path, key, .. } => key.take().map(|k| join_key(path, &k)),
            Frame::Seq { path, index } => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p)
            }
        }
    }

    /// Whether the node that starts now is a key of the enclosing mapping. A key that is
    /// itself a mapping, sequence or alias is noted, so its value is not taken for a key.
    fn complex_key(&mut self) -> bool {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut()
            && key.is_none()
        {
            *key = Some(COMPLEX_KEY.to_string());
            return true;
        }
        false
    }

    fn record(&mut self, path: &str, mark: Marker) {
        self.positions
            .entry(path.to_string())
            .or_insert(position(mark));
    }
}

fn position(mark: Marker) -> Position {
    Position {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                // A scalar in key position of a mapping is a key; otherwise it is a value.
                if let Some(Frame::Map { path, key, seen }) = self.stack.last_mut()
                    && key.is_none()
                {
                    let full = join_key(path, &value);
                    let at = position(mark);
                    if let Some(first) = seen.get(&value) {
                        self.duplicates.push(DuplicateKey {
                            path: full.clone(),
                            key: value.clone(),
                            at,
                            first: *first,
                        });
                    } else {
                        seen.insert(value.clone(), at);
                    }
                    *key = Some(value);
                    self.record(&full, mark);
                    return;
                }
                if let Some(p) = self.next_value_path() {
                    self.record(&p, mark);
                }
            }
            // An alias in key position is a (complex) key; elsewhere it is a value.
            Event::Alias(_) if self.complex_key() => {}
            Event::Alias(_) => {
                self.next_value_path();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = if self.complex_key() {
                    let parent = match self.stack.last() {
                        Some(Frame::Map { path, .. } | Frame::Seq { path, .. }) => path.as_str(),
                        None => "",
                    };
                    join_key(parent, COMPLEX_KEY)
                } else {
                    let path = self.next_value_path().unwrap_or_default();
                    self.record(&path, mark);
                    path
                };
                // The key of a complex key is consumed by its value, not by the complex key.
                if let Event::MappingStart(..) = ev {
                    self.stack.push(Frame::Map {
                        path,
                        key: None,
                        seen: HashMap::new(),
                    });
                } else {
                    self.stack.push(Frame::Seq { path, index: 0 });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys_and_items() {
        let text = "name: x\ntransforms:\n  - join:\n      on:\n        - left: a\n          right: b\n  - sql:\n      query: q\n";
        let map = SourceMap::build(text);
        assert_eq!(map.locate("name").map(|p| p.line), Some(1));
        assert_eq!(
            map.locate("transforms[0].join.on[0].left").map(|p| p.line),
            Some(5)
        );
        assert_eq!(
            map.locate("transforms[0].join.on[0].right").map(|p| p.line),
            Some(6)
        );
        assert_eq!(
            map.locate("transforms[1].sql.query").map(|p| p.line),
            Some(8)
        );
        // Unknown children fall back to the nearest ancestor.
        assert_eq!(
            map.locate("transforms[1].sql.inputs[3]").map(|p| p.line),
            Some(7)
        );
        assert_eq!(
            map.locate("transforms[0].join.on[0].left")
                .map(|p| p.column),
            Some(11)
        );
    }
}
