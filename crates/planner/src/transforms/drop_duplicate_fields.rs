//! `drop_duplicate_fields`: keeps one copy of every join key the node remembers (the left
//! one; for right and full joins the first non-null of both, as a left row may be missing)
//! and of every plain column name carried by several inputs (the leftmost). The output has
//! no join keys left to drop.

use std::collections::{HashMap, HashSet};

use datafusion::common::Column;
use datafusion::logical_expr::{Expr, JoinType};
use datafusion::prelude::coalesce;
use sluice_proto as pb;

use crate::{Node, PlanError, lookup, transform_error};

/// Plans the transform `name` at `path` (`transforms[i]`).
pub(super) fn plan(
    nodes: &HashMap<String, Node>,
    d: &pb::DropDuplicateFields,
    name: &str,
    path: &str,
) -> Result<Node, PlanError> {
    let p = format!("{path}.drop_duplicate_fields");
    let input = lookup(nodes, &d.input, &format!("{p}.input"))?;
    drop_duplicates(input, name).map_err(|e| transform_error(e, &d.input, &p))
}

fn drop_duplicates(input: &Node, name: &str) -> datafusion::error::Result<Node> {
    let schema = input.df.schema();
    let mut dropped: HashSet<Column> = HashSet::new();
    let mut merged: HashMap<Column, Column> = HashMap::new();
    for (kept, dup, join_type) in &input.join_keys {
        if schema.has_column(kept) && schema.has_column(dup) {
            dropped.insert(dup.clone());
            if matches!(join_type, JoinType::Right | JoinType::Full) {
                merged.insert(kept.clone(), dup.clone());
            }
        }
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut exprs = Vec::new();
    for c in schema.columns() {
        if dropped.contains(&c) || !seen.insert(c.name.clone()) {
            continue;
        }
        let n = c.name.clone();
        let e = match merged.get(&c) {
            Some(other) => coalesce(vec![Expr::Column(c), Expr::Column(other.clone())]),
            None => Expr::Column(c),
        };
        exprs.push(e.alias(n));
    }
    let df = input.df.clone().select(exprs)?.alias(name)?;
    Ok(Node {
        df,
        join_keys: Vec::new(),
    })
}
