//! Where each value of a YAML document stands, by its path (`transforms[1].join.on[0].left`).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A line and column in a file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// Maps value paths of one YAML document to their positions.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    positions: HashMap<String, Position>,
}

impl SourceMap {
    /// Reads `text` and records the position of every mapping key and sequence item.
    /// Text that does not parse yields an empty map (the deserializer reports that error).
    pub fn build(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        Self {
            positions: builder.positions,
        }
    }

    /// The position of `path`, or of its nearest ancestor that the document has.
    pub fn locate(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<String, Position>,
}

impl Builder {
    /// The path of the value that starts now, advancing the parent's cursor.
    fn next_value_path(&mut self) -> Option<String> {
        match self.stack.last_mut()? {
            Frame::Map { path, key } => key.take().map(|k| join_key(path, &k)),
            Frame::Seq { path, index } => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p)
            }
        }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        self.positions.entry(path.to_string()).or_insert(Position {
            line: mark.line(),
            column: mark.col() + 1,
        });
    }
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                // A scalar in key position of a mapping is a key; otherwise it is a value.
                if let Some(Frame::Map { path, key }) = self.stack.last_mut()
                    && key.is_none()
                {
                    let full = join_key(path, &value);
                    *key = Some(value);
                    self.record(&full, mark);
                    return;
                }
                if let Some(p) = self.next_value_path() {
                    self.record(&p, mark);
                }
            }
            Event::Alias(_) => {
                self.next_value_path();
            }
            Event::MappingStart(..) => {
                let path = self.next_value_path().unwrap_or_default();
                self.record(&path, mark);
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.next_value_path().unwrap_or_default();
                self.record(&path, mark);
                self.stack.push(Frame::Seq { path, index: 0 });
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
