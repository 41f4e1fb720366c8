//! `select`: a projection of the listed columns of the input, in the order listed.

use std::collections::HashMap;

use datafusion::logical_expr::Expr;
use sluice_proto as pb;

use super::project;
use crate::{Node, PlanError, lookup, resolve, transform_error};

/// Plans the transform `name` at `path` (`transforms[i]`).
pub(super) fn plan(
    nodes: &HashMap<String, Node>,
    s: &pb::Select,
    name: &str,
    path: &str,
) -> Result<Node, PlanError> {
    let p = format!("{path}.select");
    let input = lookup(nodes, &s.input, &format!("{p}.input"))?;
    let mut exprs = Vec::new();
    for (i, f) in s.fields.iter().enumerate() {
        exprs.push(Expr::Column(resolve(
            &input.df,
            &s.input,
            f,
            &format!("{p}.fields[{i}]"),
        )?));
    }
    project(input, exprs, name).map_err(|e| transform_error(e, &s.input, &p))
}
