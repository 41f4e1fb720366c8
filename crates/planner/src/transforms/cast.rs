//! `cast`: a projection of every column of the input, the listed ones cast (SQL `CAST`) to
//! the Arrow type of their job-file type name and keeping their names.

use std::collections::HashMap;

use datafusion::common::Column;
use datafusion::logical_expr::{Expr, cast};
use sluice_proto as pb;

use super::project;
use crate::{Node, PlanError, lookup, resolve, transform_error};

/// Plans the transform `name` at `path` (`transforms[i]`).
pub(super) fn plan(
    nodes: &HashMap<String, Node>,
    c: &pb::Cast,
    name: &str,
    path: &str,
) -> Result<Node, PlanError> {
    let p = format!("{path}.cast");
    let input = lookup(nodes, &c.input, &format!("{p}.input"))?;
    let mut casts: HashMap<Column, _> = HashMap::new();
    for f in &c.fields {
        let fp = format!("{p}.fields.{}", f.name);
        let column = resolve(&input.df, &c.input, &f.name, &fp)?;
        let ty = crate::types::parse(&f.sql_type).map_err(|e| PlanError::at(&fp, e.to_string()))?;
        casts.insert(column, ty);
    }
    let exprs = input
        .df
        .schema()
        .columns()
        .into_iter()
        .map(|column| match casts.get(&column) {
            Some(ty) => {
                let n = column.name.clone();
                cast(Expr::Column(column), ty.clone()).alias(n)
            }
            None => Expr::Column(column),
        })
        .collect();
    project(input, exprs, name).map_err(|e| transform_error(e, &c.input, &p))
}
