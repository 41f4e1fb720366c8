//! `rename`: an earlier node with some fields renamed (`old: new`).

use indexmap::IndexMap;
use serde::Deserialize;
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use super::TransformKind;
use crate::convert::Converter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameFile {
    name: String,
    input: String,
    fields: IndexMap<String, String>,
}

impl TransformKind for RenameFile {
    const KEY: &'static str = "rename";

    fn name(&self) -> &str {
        &self.name
    }

    fn convert(&self, c: &mut Converter, p: &str) -> Kind {
        c.check_input(format!("{p}.input"), &self.input);
        Kind::Rename(pb::Rename {
            input: self.input.clone(),
            fields: self
                .fields
                .iter()
                .map(|(from, to)| pb::FieldRename {
                    from: from.clone(),
                    to: to.clone(),
                })
                .collect(),
        })
    }
}
