//! One function per transform kind; each checks its column references first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider,
};
use datafusion::execution::session_state::SessionStateBuilder;

use datafusion::common::{Column, ExprSchema};
use datafusion::logical_expr::{Expr, JoinType, cast};
use datafusion::prelude::{SQLOptions, SessionContext, coalesce};
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use crate::{Node, PlanError, lookup, requalify, resolve, transform_error};

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
        Kind::Join(j) => join(nodes, j, &format!("{path}.join")),
        Kind::DropDuplicateFields(d) => {
            let p = format!("{path}.drop_duplicate_fields");
            let input = lookup(nodes, &d.input, &format!("{p}.input"))?;
            drop_duplicates(input, name).map_err(|e| transform_error(e, &d.input, &p))
        }
        Kind::DropFields(d) => {
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
        Kind::Select(s) => {
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
        Kind::Rename(r) => {
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
        Kind::Cast(c) => {
            let p = format!("{path}.cast");
            let input = lookup(nodes, &c.input, &format!("{p}.input"))?;
            let mut casts: HashMap<Column, _> = HashMap::new();
            for f in &c.fields {
                let fp = format!("{p}.fields.{}", f.name);
                let column = resolve(&input.df, &c.input, &f.name, &fp)?;
                let ty = crate::types::parse(&f.sql_type)
                    .map_err(|e| PlanError::at(&fp, e.to_string()))?;
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
        Kind::Filter(f) => {
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
        Kind::Sql(s) => {
            let p = format!("{path}.sql");
            // The inputs are registered in a session of this transform's own: submissions
            // are planned concurrently, and must not see (or remove) each other's names.
            let own = own_session(ctx);
            for (i, input) in s.inputs.iter().enumerate() {
                let node = lookup(nodes, input, &format!("{p}.inputs[{i}]"))?;
                own.register_table(input.as_str(), node.df.clone().into_view())
                    .map_err(|e| transform_error(e, input, &format!("{p}.inputs[{i}]")))?;
            }
            failpoint_pause().await;
            // A query only: DDL could register files from anywhere, and COPY or INSERT
            // would write outside the target when the plan runs.
            let query_only = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            let planned = own.sql_with_options(&s.query, query_only).await;
            let df = planned.map_err(|e| transform_error(e, name, &format!("{p}.query")))?;
            Ok(Node {
                df: requalify(df, name).map_err(|e| transform_error(e, name, &p))?,
                join_keys: Vec::new(),
            })
        }
    }
}

/// A session sharing `ctx`'s configuration, functions, planner and object stores, with an
/// empty catalog of its own (the default catalog and schema, nothing in them).
fn own_session(ctx: &SessionContext) -> SessionContext {
    let state = ctx.state();
    let options = state.config().options();
    let catalog_name = options.catalog.default_catalog.clone();
    let schema_name = options.catalog.default_schema.clone();
    let catalog = Arc::new(MemoryCatalogProvider::new());
    // A fresh catalog has no schemas, so this replaces nothing.
    let _ = catalog.register_schema(&schema_name, Arc::new(MemorySchemaProvider::new()));
    let catalogs = Arc::new(MemoryCatalogProviderList::new());
    catalogs.register_catalog(catalog_name, catalog);
    SessionContext::new_with_state(
        SessionStateBuilder::new_from_existing(state)
            .with_catalog_list(catalogs)
            .build(),
    )
}

/// With `SLUICE_FAILPOINT=slow_sql_transform`, waits 1.5 s after a `sql` transform's
/// inputs are registered: tests use it to overlap the planning of two submissions.
async fn failpoint_pause() {
    let on = std::env::var("SLUICE_FAILPOINT")
        .is_ok_and(|v| v.split(',').any(|f| f == "slow_sql_transform"));
    if !on {
        return;
    }
    let (done, wait) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let _ = done.send(());
    });
    let _ = wait.await;
}

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

fn join(nodes: &HashMap<String, Node>, j: &pb::Join, path: &str) -> Result<Node, PlanError> {
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

fn types_comparable(
    a: &datafusion::arrow::datatypes::DataType,
    b: &datafusion::arrow::datatypes::DataType,
) -> bool {
    use datafusion::arrow::datatypes::DataType as D;
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

/// Keeps one copy of every join key (the left one; for right and full joins the first
/// non-null of both) and of every plain name carried by several inputs (the leftmost).
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
