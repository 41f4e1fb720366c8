//! Turns a [`JobSpec`](sluice_proto::JobSpec) into a DataFusion plan.
//!
//! The planner works on any [`SessionContext`]: a plain DataFusion one, Ballista's embedded
//! cluster or a remote cluster; and on any object store the context knows (folders, S3).
//! Every column a job names is checked against the schema of its input, and errors carry
//! the job-file path of the value at fault (`transforms[1].join.on[0].left`) so that the
//! caller can point at the line.

pub mod diagnose;
mod sources;
mod transforms;
pub mod types;

use std::collections::HashMap;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::Column;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, JoinType, cast};
use datafusion::prelude::{DataFrame, SessionContext};
use sluice_job::Diagnostic;
use sluice_job::suggest;
use sluice_proto as pb;

pub use sources::{
    FileCheck, ListingUrlError, PlannedSource, SeenFiles, SourceFile, listing_url, source_url,
};

/// Why a job could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A value of the job is wrong; the diagnostic names its path.
    #[error("{0}")]
    Invalid(Diagnostic),
    /// DataFusion failed for a reason that is not the job's (I/O, internal).
    #[error("planning failed: {}", clean_message(.0))]
    DataFusion(#[from] DataFusionError),
}

impl PlanError {
    pub(crate) fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(Diagnostic::new(path, message))
    }
}

/// A DataFusion error's message without backtraces and repeated prefixes.
///
/// This only formats the text users see (it classifies nothing). It works on the text
/// because the prefixes come from every level of nesting, including errors that reached
/// here as text only (a task's failure sent back by a Ballista executor).
pub fn clean_message(e: &DataFusionError) -> String {
    let s = e.strip_backtrace();
    s.replace("External error: ", "")
        .replace("Error during planning: ", "")
        .trim()
        .to_string()
}

/// A job ready to run: the output frame and what it reads.
pub struct PlannedJob {
    /// The target's rows, with plain (unqualified) column names.
    pub output: DataFrame,
    /// Every source with the files it reads.
    pub sources: Vec<PlannedSource>,
    /// Hive partition columns of the target, in folder order.
    pub partition_by: Vec<String>,
    /// Parquet compression for the target.
    pub compression: pb::Compression,
}

/// One node of the job graph while planning.
#[derive(Clone)]
pub(crate) struct Node {
    pub df: DataFrame,
    /// Join keys of the joins that built this node: (kept, duplicate, join type).
    pub join_keys: Vec<(Column, Column, JoinType)>,
}

/// Plans `spec` on `ctx`: lists and checks the source files, infers their schemas and
/// builds every transform. Nothing is executed.
pub async fn plan_job(ctx: &SessionContext, spec: &pb::JobSpec) -> Result<PlannedJob, PlanError> {
    plan_job_checked(ctx, spec, &|_, _| None).await
}

/// [`plan_job`], refusing any source file `check` refuses, before it is read.
pub async fn plan_job_checked(
    ctx: &SessionContext,
    spec: &pb::JobSpec,
    check: &FileCheck<'_>,
) -> Result<PlannedJob, PlanError> {
    plan_job_incremental(ctx, spec, check, None).await
}

/// [`plan_job_checked`] for a bookmarked run: every source named in `seen` reads only the
/// files not recorded there (a source with none left reads no row but keeps its schema).
pub async fn plan_job_incremental(
    ctx: &SessionContext,
    spec: &pb::JobSpec,
    check: &FileCheck<'_>,
    seen: Option<&SeenFiles>,
) -> Result<PlannedJob, PlanError> {
    sluice_job::names::check_job_name(&spec.name)
        .map_err(|e| PlanError::at("name", e.to_string()))?;
    if spec.sources.is_empty() {
        return Err(PlanError::at("sources", "at least one source is required"));
    }
    let mut nodes: HashMap<String, Node> = HashMap::new();
    let mut planned_sources = Vec::new();
    for source in &spec.sources {
        let path = format!("sources.{}", source.name);
        let source_seen = seen.and_then(|s| s.get(&source.name));
        let (df, planned) =
            sources::plan_source(ctx, &spec.staging, source, &path, check, source_seen).await?;
        nodes.insert(
            source.name.clone(),
            Node {
                df,
                join_keys: Vec::new(),
            },
        );
        planned_sources.push(planned);
    }
    for (i, t) in spec.transforms.iter().enumerate() {
        let node = transforms::plan_transform(ctx, &nodes, t, &format!("transforms[{i}]")).await?;
        nodes.insert(t.name.clone(), node);
    }
    let target = spec
        .target
        .as_ref()
        .ok_or_else(|| PlanError::at("target", "a target is required"))?;
    let table = target
        .table
        .as_ref()
        .ok_or_else(|| PlanError::at("target.table", "a catalog table is required"))?;
    sluice_job::names::check_catalog_name(&table.database)
        .map_err(|e| PlanError::at("target.table.database", e.to_string()))?;
    sluice_job::names::check_catalog_name(&table.table)
        .map_err(|e| PlanError::at("target.table.name", e.to_string()))?;
    let node = lookup(&nodes, &target.input, "target.input")?;
    let output = finish_output(&node.df, &target.input, &target.partition_by)?;
    Ok(PlannedJob {
        output,
        sources: planned_sources,
        partition_by: target.partition_by.clone(),
        compression: pb::Compression::try_from(target.compression)
            .unwrap_or(pb::Compression::Snappy),
    })
}

/// Lists every source's files as [`plan_job_checked`] does, refusing any that `check`
/// refuses; reads no file.
pub async fn check_source_files(
    ctx: &SessionContext,
    spec: &pb::JobSpec,
    check: &FileCheck<'_>,
) -> Result<(), PlanError> {
    for source in &spec.sources {
        let path = format!("sources.{}", source.name);
        sources::checked_files(ctx, &spec.staging, source, &path, check).await?;
    }
    Ok(())
}

pub(crate) fn lookup<'a>(
    nodes: &'a HashMap<String, Node>,
    name: &str,
    path: &str,
) -> Result<&'a Node, PlanError> {
    nodes.get(name).ok_or_else(|| {
        PlanError::at(
            path,
            format!(
                "no source or transform named '{name}'{}",
                suggest::hint(name, nodes.keys().map(String::as_str))
            ),
        )
    })
}

/// Resolves a column name (plain, or `node.column`) in `df`'s schema.
pub(crate) fn resolve(
    df: &DataFrame,
    node: &str,
    name: &str,
    path: &str,
) -> Result<Column, PlanError> {
    let schema = df.schema();
    if name.contains('.') {
        let c = Column::from_qualified_name(name);
        if schema.has_column(&c) {
            return Ok(c);
        }
    }
    let found = schema.columns_with_unqualified_name(name);
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            Err(PlanError::at(
                path,
                format!(
                    "no column '{name}' in '{node}'{}",
                    suggest::hint(name, names.iter().map(String::as_str))
                ),
            ))
        }
        _ => Err(PlanError::at(
            path,
            format!(
                "column '{name}' is ambiguous in '{node}': it is one of {}; name one of them, or drop duplicate fields first",
                found
                    .iter()
                    .map(|c| format!("'{}'", c.flat_name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Maps an error from building a transform to its path, with a suggestion for unknown columns.
pub(crate) fn transform_error(e: DataFusionError, node: &str, path: &str) -> PlanError {
    if let Some(datafusion::common::SchemaError::FieldNotFound {
        field,
        valid_fields,
    }) = e.find_root().schema_error()
    {
        let names: Vec<&str> = valid_fields.iter().map(|c| c.name.as_str()).collect();
        return PlanError::at(
            path,
            format!(
                "no column '{}' in '{node}'{}",
                field.name,
                suggest::hint(&field.name, names)
            ),
        );
    }
    PlanError::at(path, clean_message(&e))
}

trait SchemaErrorExt {
    fn schema_error(&self) -> Option<&datafusion::common::SchemaError>;
}

impl SchemaErrorExt for DataFusionError {
    fn schema_error(&self) -> Option<&datafusion::common::SchemaError> {
        match self {
            DataFusionError::SchemaError(e, _) => Some(e),
            _ => None,
        }
    }
}

/// Gives a frame whose columns all have distinct plain names the qualifier `name`, so later
/// steps can say `column` or `name.column`. Frames with duplicate names keep their qualifiers.
pub(crate) fn requalify(df: DataFrame, name: &str) -> Result<DataFrame, DataFusionError> {
    if has_duplicate_names(&df).is_some() {
        return Ok(df);
    }
    let exprs: Vec<Expr> = df
        .schema()
        .columns()
        .into_iter()
        .map(|c| {
            let n = c.name.clone();
            Expr::Column(c).alias(n)
        })
        .collect();
    df.select(exprs)?.alias(name)
}

/// The first plain column name that occurs twice, with its qualified copies.
pub(crate) fn has_duplicate_names(df: &DataFrame) -> Option<(String, Vec<String>)> {
    let mut seen: HashMap<&str, Vec<String>> = HashMap::new();
    let columns = df.schema().columns();
    for c in &columns {
        seen.entry(c.name.as_str()).or_default().push(c.flat_name());
    }
    columns
        .iter()
        .find(|c| seen[c.name.as_str()].len() > 1)
        .map(|c| (c.name.clone(), seen[c.name.as_str()].clone()))
}

/// Checks the target frame and gives it plain, Athena-safe column names and types.
fn finish_output(
    df: &DataFrame,
    node: &str,
    partition_by: &[String],
) -> Result<DataFrame, PlanError> {
    if let Some((name, copies)) = has_duplicate_names(df) {
        return Err(PlanError::at(
            "target.input",
            format!(
                "'{node}' has several columns named '{name}' ({}): add a drop_duplicate_fields or rename step before the target",
                copies.join(", ")
            ),
        ));
    }
    let schema = df.schema();
    let mut exprs = Vec::new();
    for (qualifier, field) in schema.iter() {
        let name = field.name();
        if let Err(e) = sluice_job::names::check_catalog_name(name) {
            return Err(PlanError::at(
                "target.input",
                format!("column of '{node}': {e}; add a rename step"),
            ));
        }
        let column = Expr::Column(Column::new(qualifier.cloned(), name));
        // Athena reads milli- and microsecond timestamps, not nanoseconds.
        let expr = match field.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, tz) => cast(
                column,
                DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            ),
            // A column that never had a value (read from a header-only CSV) is a string
            // column, as a crawler registers it.
            DataType::Null => cast(column, DataType::Utf8),
            _ => column,
        };
        exprs.push(expr.alias(name));
    }
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for (i, p) in partition_by.iter().enumerate() {
        if !names.contains(&p.as_str()) {
            return Err(PlanError::at(
                format!("target.partition_by[{i}]"),
                format!(
                    "no column '{p}' in '{node}'{}",
                    suggest::hint(p, names.iter().copied())
                ),
            ));
        }
    }
    if !partition_by.is_empty() && partition_by.len() >= names.len() {
        return Err(PlanError::at(
            "target.partition_by",
            "at least one column must remain outside the partition columns",
        ));
    }
    Ok(df.clone().select(exprs)?)
}
