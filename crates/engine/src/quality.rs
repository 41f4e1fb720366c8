//! Data-quality rules (the job's `quality` block, in DQDL) evaluated over a run's staged
//! output before it is published.
//!
//! The staged files become the table `primary` of a session on the engine's cluster, or in
//! this process when the engine is embedded (with the catalog's tables beside it when the
//! catalogs are given, for `ReferentialIntegrity`);
//! sluice-quality compiles the rules into one aggregate query plus a query for each
//! uniqueness, `CustomSql` and `ReferentialIntegrity`, and judges every rule from the
//! measured values.

use std::sync::Arc;

use datafusion::arrow::array::{Array, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use sluice_catalog::Catalogs;
use sluice_planner::PlannedJob;
use sluice_proto as pb;
use sluice_quality::{Measured, Options, Outcome, Plan, Status};
use sluice_writer::SluiceQueryPlanner;

use crate::cluster::Engine;
use crate::run::RunError;
use crate::write::Written;

/// Every rule's outcome over the files of `written` (in `staging_url`). With
/// `on_failure: fail`, a failed rule is [`RunError::Quality`]; with `warn` the outcomes are
/// returned and the run publishes. A ruleset with `ReferentialIntegrity` also sees the
/// default catalog's tables as `database.table`.
pub(crate) async fn evaluate(
    engine: &Engine,
    catalogs: &Catalogs,
    spec: &pb::JobSpec,
    planned: &PlannedJob,
    staging_url: &str,
    _written: &Written,
) -> Result<Vec<pb::QualityResult>, RunError> {
    let Some(q) = &spec.quality else {
        return Ok(Vec::new());
    };
    if q.rules.trim().is_empty() {
        return Ok(Vec::new());
    }
    let started = std::time::Instant::now();
    let outcomes = match sluice_quality::parse(&q.rules) {
        // The job file's loader refuses such rules; a spec sent another way may still hold them.
        Err(e) => vec![Outcome {
            rule: "(ruleset)".into(),
            status: Status::Error,
            reason: format!("the rules do not parse: {e}"),
            metrics: Default::default(),
        }],
        Ok(ruleset) => {
            let columns: Vec<String> = planned
                .output
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            // The in-process session has `sluice_hash64` (executors' sessions do not).
            let options = Options {
                hash64: engine.is_embedded(),
            };
            let plan = Plan::with_options(&ruleset, &columns, options);
            // Only a reference check reads other tables: listing the catalog is skipped otherwise.
            let needs_catalog = q.rules.contains("ReferentialIntegrity");
            match session(
                engine,
                needs_catalog.then_some(catalogs),
                planned,
                staging_url,
            )
            .await
            {
                Ok(ctx) => plan.judge(&measure(&ctx, &plan).await),
                Err(e) => ruleset
                    .rules
                    .iter()
                    .map(|r| Outcome {
                        rule: r.text().to_string(),
                        status: Status::Error,
                        reason: format!("the staged output cannot be read: {e}"),
                        metrics: Default::default(),
                    })
                    .collect(),
            }
        }
    };
    let results: Vec<pb::QualityResult> = outcomes.into_iter().map(to_proto).collect();
    tracing::info!(
        rules = results.len(),
        in_process = engine.is_embedded(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "quality rules evaluated"
    );
    for r in &results {
        tracing::info!(rule = %r.rule, outcome = r.outcome, reason = %r.failure_reason, "quality rule");
    }
    let failed = results
        .iter()
        .any(|r| r.outcome != pb::QualityOutcome::Passed as i32);
    if failed && q.on_failure() == pb::QualityAction::Fail {
        return Err(RunError::Quality(results));
    }
    Ok(results)
}

fn to_proto(o: Outcome) -> pb::QualityResult {
    let outcome = match o.status {
        Status::Passed => pb::QualityOutcome::Passed,
        Status::Failed => pb::QualityOutcome::Failed,
        Status::Error => pb::QualityOutcome::Error,
    };
    pb::QualityResult {
        rule: o.rule,
        outcome: outcome as i32,
        failure_reason: o.reason,
        metrics: o.metrics.into_iter().collect(),
    }
}

/// A session where `primary` is the staged output (partition columns read from the folder
/// names, as strings) and, with `catalogs`, every table of the default catalog is
/// `database.table`. On a cluster its queries are Ballista jobs; on the embedded engine,
/// whose one executor is this process, they run here directly (without the stages, shuffle
/// files and task round trips a Ballista job adds around the same work), with
/// `sluice_hash64` for the uniqueness shortcut.
async fn session(
    engine: &Engine,
    catalogs: Option<&Catalogs>,
    planned: &PlannedJob,
    staging_url: &str,
) -> datafusion::error::Result<SessionContext> {
    let query_id = format!("quality-{}", uuid::Uuid::now_v7());
    let mut ctx = engine.query_context(crate::query::SQL_CATALOG, &query_id);
    if engine.is_embedded() {
        ctx = SessionContext::new_with_state(
            SessionStateBuilder::new_from_existing(ctx.state())
                .with_query_planner(Arc::new(SluiceQueryPlanner))
                .build(),
        );
        ctx.register_udf(crate::hash64::hash64());
    }
    if let Some(catalogs) = catalogs {
        let external = |e: sluice_catalog::CatalogError| {
            datafusion::error::DataFusionError::External(Box::new(e))
        };
        let catalog = catalogs.get(None).await.map_err(external)?;
        let tables = catalog.list_tables().await.map_err(external)?;
        let tables: Vec<_> = tables
            .into_iter()
            .filter(|t| t.database != "default")
            .collect();
        crate::query::register_tables(&ctx, &tables).await?;
    }
    let output = planned.output.schema().as_arrow().clone();
    let data_fields: Vec<Field> = output
        .fields()
        .iter()
        .filter(|f| !planned.partition_by.contains(f.name()))
        .map(|f| f.as_ref().clone())
        .collect();
    let partition_cols = planned
        .partition_by
        .iter()
        .map(|p| (p.clone(), DataType::Utf8))
        .collect();
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_cols);
    let url = ListingTableUrl::parse(staging_url)?;
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(Arc::new(Schema::new(data_fields)));
    ctx.register_table(
        sluice_quality::TABLE,
        Arc::new(ListingTable::try_new(config)?),
    )?;
    Ok(ctx)
}

/// Runs the plan's aggregate and its other queries; a query that fails records its error
/// for the rules that need it.
async fn measure(ctx: &SessionContext, plan: &Plan) -> Measured {
    let keys = plan.aggregate_keys();
    let result = first_row(ctx, &plan.aggregate_sql(), keys.len(), false).await;
    let mut m = record(Measured::default(), keys, result);
    for q in &plan.queries {
        let result = match plan.answer_from_aggregate(q, &m) {
            Some(values) => Ok(values),
            None => first_row(ctx, &q.sql, q.keys.len(), q.custom).await,
        };
        m = record(m, q.keys.clone(), result);
    }
    m
}

/// `m` with a query's values (or its error) recorded under `keys`.
fn record(
    mut m: Measured,
    keys: Vec<String>,
    result: Result<Vec<Option<f64>>, String>,
) -> Measured {
    match result {
        Ok(values) => {
            for (k, v) in keys.into_iter().zip(values) {
                m.values.insert(k, v);
            }
        }
        Err(e) => {
            for k in keys {
                m.errors.insert(k, e.clone());
            }
        }
    }
    m
}

/// The first row of `sql`'s result as numbers (`width` columns). With `custom`, the result
/// must be exactly one row and one numeric column.
async fn first_row(
    ctx: &SessionContext,
    sql: &str,
    width: usize,
    custom: bool,
) -> Result<Vec<Option<f64>>, String> {
    let clean = |e: datafusion::error::DataFusionError| sluice_planner::clean_message(&e);
    let batches: Vec<RecordBatch> = ctx
        .sql(sql)
        .await
        .map_err(clean)?
        .collect()
        .await
        .map_err(clean)?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(format!("the query returned no rows: {sql}"));
    };
    if custom && (rows != 1 || batch.num_columns() != 1) {
        return Err(format!(
            "CustomSql must return one row with one number; it returned {rows} rows of {} columns",
            batch.num_columns()
        ));
    }
    let mut out = Vec::with_capacity(width);
    for i in 0..width.min(batch.num_columns()) {
        let col = cast(batch.column(i), &DataType::Float64)
            .map_err(|e| format!("the value of '{sql}' is not a number: {e}"))?;
        let col = col
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| "not a number".to_string())?;
        out.push((!col.is_null(0)).then(|| col.value(0)));
    }
    Ok(out)
}

/// The outcome's name as Glue prints it (`PASSED`, `FAILED`, `ERROR`).
pub fn outcome_name(r: &pb::QualityResult) -> &'static str {
    match r.outcome() {
        pb::QualityOutcome::Passed => "PASSED",
        pb::QualityOutcome::Failed => "FAILED",
        pb::QualityOutcome::Error => "ERROR",
        pb::QualityOutcome::Unspecified => "UNKNOWN",
    }
}

/// One line per rule that did not pass: `FAILED IsComplete "a": <reason>`.
pub fn failure_summary(results: &[pb::QualityResult]) -> String {
    results
        .iter()
        .filter(|r| r.outcome() != pb::QualityOutcome::Passed)
        .map(|r| format!("{} {}: {}", outcome_name(r), r.rule, r.failure_reason))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines describing every rule's outcome and metrics, for `sluice run` and `sluice status`.
pub fn describe_results(results: &[pb::QualityResult]) -> Vec<String> {
    let mut out = Vec::new();
    for r in results {
        let mut metrics: Vec<(&String, &f64)> = r.metrics.iter().collect();
        metrics.sort_by(|a, b| a.0.cmp(b.0));
        let metrics: Vec<String> = metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut line = format!("{:<6} {}", outcome_name(r), r.rule);
        if !metrics.is_empty() {
            line.push_str(&format!("  [{}]", metrics.join(", ")));
        }
        if !r.failure_reason.is_empty() {
            line.push_str(&format!("  -- {}", r.failure_reason));
        }
        out.push(line);
    }
    out
}
