//! `join`: joins two earlier nodes on key pairs (`"a = b"` or `{left: a, right: b}`), inner
//! by default, or left, right, full, semi or anti.

use serde::Deserialize;
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use super::TransformKind;
use crate::convert::Converter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoinFile {
    name: String,
    left: String,
    right: String,
    #[serde(default, rename = "type")]
    join_type: Option<String>,
    on: Vec<KeyPairFile>,
}

/// `{left: a, right: b}` or the shorthand `"a = b"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum KeyPairFile {
    Pair { left: String, right: String },
    Text(String),
}

impl TransformKind for JoinFile {
    const KEY: &'static str = "join";

    fn name(&self) -> &str {
        &self.name
    }

    fn convert(&self, c: &mut Converter, p: &str) -> Kind {
        c.check_input(format!("{p}.left"), &self.left);
        c.check_input(format!("{p}.right"), &self.right);
        let join_type = c.choose(
            format!("{p}.type"),
            "join type",
            self.join_type.as_deref().unwrap_or("inner"),
            &[
                ("inner", pb::JoinType::Inner),
                ("left", pb::JoinType::Left),
                ("left_outer", pb::JoinType::Left),
                ("right", pb::JoinType::Right),
                ("right_outer", pb::JoinType::Right),
                ("full", pb::JoinType::Full),
                ("full_outer", pb::JoinType::Full),
                ("outer", pb::JoinType::Full),
                ("semi", pb::JoinType::LeftSemi),
                ("left_semi", pb::JoinType::LeftSemi),
                ("anti", pb::JoinType::LeftAnti),
                ("left_anti", pb::JoinType::LeftAnti),
            ],
            pb::JoinType::Inner,
        );
        if self.on.is_empty() {
            c.error(format!("{p}.on"), "at least one key pair is required");
        }
        let mut on = Vec::new();
        for (k, pair) in self.on.iter().enumerate() {
            match pair {
                KeyPairFile::Pair { left, right } => on.push(pb::KeyPair {
                    left: left.clone(),
                    right: right.clone(),
                }),
                KeyPairFile::Text(text) => match text.split_once('=') {
                    Some((l, r)) if !l.trim().is_empty() && !r.trim().is_empty() => {
                        on.push(pb::KeyPair {
                            left: l.trim().to_string(),
                            right: r.trim().to_string(),
                        })
                    }
                    _ => c.error(
                        format!("{p}.on[{k}]"),
                        format!("'{text}' is not a key pair: write 'left_column = right_column' or {{left: .., right: ..}}"),
                    ),
                },
            }
        }
        Kind::Join(pb::Join {
            left: self.left.clone(),
            right: self.right.clone(),
            join_type: join_type as i32,
            on,
        })
    }
}
