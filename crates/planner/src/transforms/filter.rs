//! `filter`: the rows of the input for which a SQL predicate (parsed against the input's
//! schema) is true. Rows pass through unchanged, so the join keys stay.

use std::collections::HashMap;

use sluice_proto as pb;

use crate::{Node, PlanError, lookup, requalify, transform_error};

/// Plans the transform `name` at `path` (`transforms[i]`).
pub(super) fn plan(
    nodes: &HashMap<String, Node>,
    f: &pb::Filter,
    name: &str,
    path: &str,
) -> Result<Node, PlanError> {
    let p = format!("{path}.filter");
    let input = lookup(nodes, &f.input, &format!("{p}.input"))?;
    let predicate_path = format!("{p}.predicate");
    let expr = input
        .df
        .parse_sql_expr(&f.predicate)
        .map_err(|e| transform_error(e, &f.input, &predicate_path))?;
    let df = input
        .df
        .clone()
        .filter(expr)
        .map_err(|e| transform_error(e, &f.input, &predicate_path))?;
    Ok(Node {
        df: requalify(df, name).map_err(|e| transform_error(e, &f.input, &p))?,
        join_keys: input.join_keys.clone(),
    })
}
