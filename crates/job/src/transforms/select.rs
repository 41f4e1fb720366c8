//! `select`: the listed fields of an earlier node, in that order.

use serde::Deserialize;
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use super::TransformKind;
use crate::convert::Converter;

// A type error names the expected struct ("expected struct FieldsFile"): the name the job
// format has always reported is kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct FieldsFile")]
pub(crate) struct SelectFile {
    name: String,
    input: String,
    fields: Vec<String>,
}

impl TransformKind for SelectFile {
    const KEY: &'static str = "select";

    fn name(&self) -> &str {
        &self.name
    }

    fn convert(&self, c: &mut Converter, p: &str) -> Kind {
        c.check_input(format!("{p}.input"), &self.input);
        if self.fields.is_empty() {
            c.error(format!("{p}.fields"), "at least one field is required");
        }
        Kind::Select(pb::Select {
            input: self.input.clone(),
            fields: self.fields.clone(),
        })
    }
}
