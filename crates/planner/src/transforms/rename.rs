//! `rename`: a projection of every column of the input, the listed ones aliased to their
//! new names, in the input's order.

use std::collections::HashMap;

use datafusion::common::Column;
use datafusion::logical_expr::Expr;
use sluice_proto as pb;

use super::project;
use crate::{Node, PlanError, lookup, resolve, transform_error};

/// Plans the transform `name` at `path` (`transforms[i]`).
pub(super) fn plan(
    nodes: &HashMap<String, Node>,
    r: &pb::Rename,
    name: &str,
    path: &str,
) -> Result<Node, PlanError> {
    let p = format!("{path}.rename");
    let input = lookup(nodes, &r.input, &format!("{p}.input"))?;
    let mut renames: HashMap<Column, String> = HashMap::new();
    for f in &r.fields {
        let c = resolve(
            &input.df,
            &r.input,
            &f.from,
            &format!("{p}.fields.{}", f.from),
        )?;
        if f.to.trim().is_empty() {
            return Err(PlanError::at(
                format!("{p}.fields.{}", f.from),
                "a new name is required",
            ));
        }
        renames.insert(c, f.to.clone());
    }
    let exprs = input
        .df
        .schema()
        .columns()
        .into_iter()
        .map(|c| match renames.get(&c) {
            Some(to) => Expr::Column(c).alias(to),
            None => Expr::Column(c),
        })
        .collect();
    project(input, exprs, name).map_err(|e| transform_error(e, &r.input, &p))
}
