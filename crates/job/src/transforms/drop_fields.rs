//! `drop_fields`: an earlier node without the listed fields.

use serde::Deserialize;
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use super::TransformKind;
use crate::convert::Converter;

// A type error names the expected struct ("expected struct FieldsFile"): the name the job
// format has always reported is kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct FieldsFile")]
pub(crate) struct DropFieldsFile {
    name: String,
    input: String,
    fields: Vec<String>,
}

impl TransformKind for DropFieldsFile {
    const KEY: &'static str = "drop_fields";

    fn name(&self) -> &str {
        &self.name
    }

    fn convert(&self, c: &mut Converter, p: &str) -> Kind {
        c.check_input(format!("{p}.input"), &self.input);
        Kind::DropFields(pb::DropFields {
            input: self.input.clone(),
            fields: self.fields.clone(),
        })
    }
}
