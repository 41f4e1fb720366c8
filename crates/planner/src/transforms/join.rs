//! `join`: joins two nodes on equal key pairs with DataFusion's `join_on` (inner, left,
//! right, full, left semi or left anti). Key columns must have comparable types (numbers
//! with numbers, strings with strings; an all-null column with anything), or the job is
//! told to cast one side. The key pairs are remembered on the node so that a later
//! `drop_duplicate_fields` keeps one copy of each key; semi and anti joins output only the
//! left side, so they add none.

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ExprSchema;
use datafusion::logical_expr::{Expr, JoinType};
use sluice_proto as pb;

use crate::{Node, PlanError, lookup, resolve, transform_error};

/// Plans the join at `path` (`transforms[i]`).
pub(super) fn plan(
    nodes: &HashMap<String, Node>,
    j: &pb::Join,
    path: &str,
) -> Result<Node, PlanError> {
    let path = &format!("{path}.join");
    let left = lookup(nodes, &j.left, &format!("{path}.left"))?;
    let right = lookup(nodes, &j.right, &format!("{path}.right"))?;
    let join_type = match pb::JoinType::try_from(j.join_type).unwrap_or(pb::JoinType::Inner) {
        pb::JoinType::Inner => JoinType::Inner,
        pb::JoinType::Left => JoinType::Left,
        pb::JoinType::Right => JoinType::Right,
        pb::JoinType::Full => JoinType::Full,
        pb::JoinType::LeftSemi => JoinType::LeftSemi,
        pb::JoinType::LeftAnti => JoinType::LeftAnti,
    };
    if j.on.is_empty() {
        return Err(PlanError::at(
            format!("{path}.on"),
            "at least one key pair is required",
        ));
    }
    let mut keys = Vec::new();
    for (i, pair) in j.on.iter().enumerate() {
        let l = resolve(
            &left.df,
            &j.left,
            &pair.left,
            &format!("{path}.on[{i}].left"),
        )?;
        let r = resolve(
            &right.df,
            &j.right,
            &pair.right,
            &format!("{path}.on[{i}].right"),
        )?;
        let lt = left
            .df
            .schema()
            .field_from_column(&l)
            .map(|f| f.data_type().clone());
        let rt = right
            .df
            .schema()
            .field_from_column(&r)
            .map(|f| f.data_type().clone());
        if let (Ok(lt), Ok(rt)) = (lt, rt)
            && !types_comparable(&lt, &rt)
        {
            return Err(PlanError::at(
                format!("{path}.on[{i}]"),
                format!(
                    "cannot join {} ({lt}) with {} ({rt}): cast one side first",
                    l.flat_name(),
                    r.flat_name()
                ),
            ));
        }
        keys.push((l, r));
    }
    let on: Vec<Expr> = keys
        .iter()
        .map(|(l, r)| Expr::Column(l.clone()).eq(Expr::Column(r.clone())))
        .collect();
    let df = left
        .df
        .clone()
        .join_on(right.df.clone(), join_type, on)
        .map_err(|e| transform_error(e, &j.left, path))?;
    let mut join_keys = left.join_keys.clone();
    if !matches!(join_type, JoinType::LeftSemi | JoinType::LeftAnti) {
        join_keys.extend(right.join_keys.iter().cloned());
        join_keys.extend(keys.into_iter().map(|(l, r)| (l, r, join_type)));
    }
    Ok(Node { df, join_keys })
}

fn types_comparable(a: &DataType, b: &DataType) -> bool {
    use DataType as D;
    let class = |t: &D| {
        if t.is_numeric() {
            0
        } else if matches!(t, D::Utf8 | D::LargeUtf8 | D::Utf8View) {
            1
        } else {
            2
        }
    };
    // A column with no values (a header-only CSV) is `Null`: it joins with any key type.
    a == b || a.is_null() || b.is_null() || (class(a) == class(b) && class(a) < 2)
}
