//! `drop_fields`: a projection of every column of the input except the listed ones (plain
//! or `node.column` names); dropping every column is refused.

use std::collections::{HashMap, HashSet};

use datafusion::logical_expr::Expr;
use sluice_proto as pb;

use super::project;
use crate::{Node, PlanError, lookup, resolve, transform_error};

/// Plans the transform `name` at `path` (`transforms[i]`).
pub(super) fn plan(
    nodes: &HashMap<String, Node>,
    d: &pb::DropFields,
    name: &str,
    path: &str,
) -> Result<Node, PlanError> {
    let p = format!("{path}.drop_fields");
    let input = lookup(nodes, &d.input, &format!("{p}.input"))?;
    let mut drop = HashSet::new();
    for (i, f) in d.fields.iter().enumerate() {
        drop.insert(resolve(
            &input.df,
            &d.input,
            f,
            &format!("{p}.fields[{i}]"),
        )?);
    }
    let keep: Vec<Expr> = input
        .df
        .schema()
        .columns()
        .into_iter()
        .filter(|c| !drop.contains(c))
        .map(Expr::Column)
        .collect();
    if keep.is_empty() {
        return Err(PlanError::at(
            format!("{p}.fields"),
            "this drops every column",
        ));
    }
    project(input, keep, name).map_err(|e| transform_error(e, &d.input, &p))
}
