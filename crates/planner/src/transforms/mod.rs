//! The transform kinds, one module each, as DataFusion keeps one operator per file: each
//! module's doc comment explains what the kind does, and its `plan` checks the job's column
//! references against the input's schema before it builds the node. Adding a kind means a
//! module here and an arm of [`plan_transform`].

mod cast;
mod drop_duplicate_fields;
mod drop_fields;
mod filter;
mod join;
mod rename;
mod select;
mod sql;

use std::collections::HashMap;

use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use crate::{Node, PlanError, requalify};

/// Plans the transform `t` at `path` (`transforms[i]`) over the nodes defined before it.
pub(crate) async fn plan_transform(
    ctx: &SessionContext,
    nodes: &HashMap<String, Node>,
    t: &pb::Transform,
    path: &str,
) -> Result<Node, PlanError> {
    let kind = t
        .kind
        .as_ref()
        .ok_or_else(|| PlanError::at(path, "the transform has no kind"))?;
    let name = t.name.as_str();
    match kind {
        Kind::Join(j) => join::plan(nodes, j, path),
        Kind::DropDuplicateFields(d) => drop_duplicate_fields::plan(nodes, d, name, path),
        Kind::DropFields(d) => drop_fields::plan(nodes, d, name, path),
        Kind::Select(s) => select::plan(nodes, s, name, path),
        Kind::Rename(r) => rename::plan(nodes, r, name, path),
        Kind::Cast(c) => cast::plan(nodes, c, name, path),
        Kind::Filter(f) => filter::plan(nodes, f, name, path),
        Kind::Sql(s) => sql::plan(ctx, nodes, s, name, path).await,
    }
}

/// `exprs` over `input`, named `name`, keeping the join keys whose both sides survive.
fn project(input: &Node, exprs: Vec<Expr>, name: &str) -> datafusion::error::Result<Node> {
    let df = input.df.clone().select(exprs)?;
    let schema = df.schema();
    let join_keys = input
        .join_keys
        .iter()
        .filter(|(l, r, _)| schema.has_column(l) && schema.has_column(r))
        .cloned()
        .collect();
    Ok(Node {
        df: requalify(df, name)?,
        join_keys,
    })
}
