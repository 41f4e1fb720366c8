//! `filter`: the rows of an earlier node for which a SQL predicate holds.

use serde::Deserialize;
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use super::TransformKind;
use crate::convert::Converter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterFile {
    name: String,
    input: String,
    predicate: String,
}

impl TransformKind for FilterFile {
    const KEY: &'static str = "filter";

    fn name(&self) -> &str {
        &self.name
    }

    fn convert(&self, c: &mut Converter, p: &str) -> Kind {
        c.check_input(format!("{p}.input"), &self.input);
        if self.predicate.trim().is_empty() {
            c.error(format!("{p}.predicate"), "a predicate is required");
        }
        Kind::Filter(pb::Filter {
            input: self.input.clone(),
            predicate: self.predicate.clone(),
        })
    }
}
