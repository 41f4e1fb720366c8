//! `sql`: a read-only SQL query over earlier nodes, each visible under its own name.

use serde::Deserialize;
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use super::TransformKind;
use crate::convert::Converter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqlFile {
    name: String,
    inputs: Vec<String>,
    query: String,
}

impl TransformKind for SqlFile {
    const KEY: &'static str = "sql";

    fn name(&self) -> &str {
        &self.name
    }

    fn convert(&self, c: &mut Converter, p: &str) -> Kind {
        for (i, input) in self.inputs.iter().enumerate() {
            c.check_input(format!("{p}.inputs[{i}]"), input);
        }
        if self.query.trim().is_empty() {
            c.error(format!("{p}.query"), "a query is required");
        }
        Kind::Sql(pb::Sql {
            inputs: self.inputs.clone(),
            query: self.query.clone(),
        })
    }
}
