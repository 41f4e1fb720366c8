//! `cast`: an earlier node with some fields cast to SQL types (`field: type`).

use indexmap::IndexMap;
use serde::Deserialize;
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use super::TransformKind;
use crate::convert::Converter;
use crate::names;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CastFile {
    name: String,
    input: String,
    fields: IndexMap<String, String>,
}

impl TransformKind for CastFile {
    const KEY: &'static str = "cast";

    fn name(&self) -> &str {
        &self.name
    }

    fn convert(&self, c: &mut Converter, p: &str) -> Kind {
        c.check_input(format!("{p}.input"), &self.input);
        for (col, ty) in &self.fields {
            if let Err(e) = names::parse_sql_type(ty) {
                c.error(format!("{p}.fields.{col}"), e.to_string());
            }
        }
        Kind::Cast(pb::Cast {
            input: self.input.clone(),
            fields: self
                .fields
                .iter()
                .map(|(name, ty)| pb::ColumnType {
                    name: name.clone(),
                    sql_type: ty.clone(),
                })
                .collect(),
        })
    }
}
