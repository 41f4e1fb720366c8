//! `drop_duplicate_fields`: an earlier node with one copy of each join key and of each
//! name several inputs carry.

use serde::Deserialize;
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use super::TransformKind;
use crate::convert::Converter;

// A type error names the expected struct ("expected struct InputFile"): the name the job
// format has always reported is kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct InputFile")]
pub(crate) struct DropDuplicateFieldsFile {
    name: String,
    input: String,
}

impl TransformKind for DropDuplicateFieldsFile {
    const KEY: &'static str = "drop_duplicate_fields";

    fn name(&self) -> &str {
        &self.name
    }

    fn convert(&self, c: &mut Converter, p: &str) -> Kind {
        c.check_input(format!("{p}.input"), &self.input);
        Kind::DropDuplicateFields(pb::DropDuplicateFields {
            input: self.input.clone(),
        })
    }
}
