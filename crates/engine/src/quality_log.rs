//! The catalog table `sluice_quality.results`: every evaluated rule of every run that has a
//! `quality` block, one row each, so that a dashboard can chart quality over time.
//!
//! It is an append table in the target's lake and catalog (so Athena sees it beside the
//! job's table), partitioned by the UTC day of the evaluation (`day=2026-11-26`). Each run's
//! rows are one Parquet file, committed like any run: published into a new version with the
//! previous version's files, sealed, then the catalog swap (which checks that nobody moved
//! the table meanwhile; a run that lost that race tries again with a new version).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use sluice_catalog::{Catalog, ColumnEntry};
use sluice_lake::{Lake, new_run_id};
use sluice_proto as pb;

use crate::commit::{Commit, commit, discard_version, parquet_bytes};
use crate::quality::outcome_name;
use crate::run::RunError;

/// The database of the results table.
pub const QUALITY_DATABASE: &str = "sluice_quality";
/// The results table's name.
pub const QUALITY_TABLE: &str = "results";
/// The partition column: the UTC day the rules were evaluated on, `YYYY-MM-DD`.
const DAY: &str = "day";
/// How often a commit that lost the race with another run's is tried again.
const ATTEMPTS: usize = 4;

/// What one run's evaluation was: who ran which rules on what, and whether it published.
pub(crate) struct Evaluation<'a> {
    /// The run.
    pub(crate) run_id: &'a str,
    /// The job's name.
    pub(crate) job: &'a str,
    /// The job's target table.
    pub(crate) target: &'a pb::TableRef,
    /// Whether the run's output was published (false when a `fail` rule stopped it).
    pub(crate) published: bool,
    /// Every rule's outcome.
    pub(crate) results: &'a [pb::QualityResult],
}

/// The results table's columns, the partition column last.
fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("job", DataType::Utf8, false),
        Field::new("target_database", DataType::Utf8, false),
        Field::new("target_table", DataType::Utf8, false),
        Field::new(
            "evaluated_at",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("rule", DataType::Utf8, false),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("failure_reason", DataType::Utf8, true),
        Field::new("metrics", DataType::Utf8, false),
        Field::new("published", DataType::Boolean, false),
        Field::new(DAY, DataType::Utf8, false),
    ]))
}

/// The rows of one evaluation (without the partition column, which is the folder), at `now`.
fn rows(e: &Evaluation<'_>, now_ms: i64) -> Result<RecordBatch, RunError> {
    let n = e.results.len();
    let each = |v: &str| StringArray::from(vec![v; n]);
    let metrics: Vec<String> = e
        .results
        .iter()
        .map(|r| {
            let sorted: std::collections::BTreeMap<&String, &f64> = r.metrics.iter().collect();
            serde_json::to_string(&sorted).unwrap_or_else(|_| "{}".into())
        })
        .collect();
    let data = schema();
    let fields: Vec<Field> = data
        .fields()
        .iter()
        .filter(|f| f.name() != DAY)
        .map(|f| f.as_ref().clone())
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(each(e.run_id)),
        Arc::new(each(e.job)),
        Arc::new(each(&e.target.database)),
        Arc::new(each(&e.target.table)),
        Arc::new(TimestampMillisecondArray::from(vec![now_ms; n])),
        Arc::new(StringArray::from_iter_values(
            e.results.iter().map(|r| r.rule.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            e.results.iter().map(outcome_name),
        )),
        Arc::new(StringArray::from_iter(e.results.iter().map(|r| {
            (!r.failure_reason.is_empty()).then_some(r.failure_reason.as_str())
        }))),
        Arc::new(StringArray::from(metrics)),
        Arc::new(BooleanArray::from(vec![e.published; n])),
    ];
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| {
        RunError::QualityLog(format!(
            "cannot build the rows of {QUALITY_DATABASE}.{QUALITY_TABLE}: {e}"
        ))
    })
}

/// Appends `evaluation` to `sluice_quality.results` in `lake` and `catalog`. Returns the
/// table's name as registered.
pub(crate) async fn append_results(
    lake: &Lake,
    catalog: &dyn Catalog,
    evaluation: &Evaluation<'_>,
) -> Result<String, RunError> {
    let table_ref = pb::TableRef {
        database: QUALITY_DATABASE.into(),
        table: QUALITY_TABLE.into(),
    };
    let target = pb::Target {
        table: Some(table_ref.clone()),
        ..Default::default()
    };
    let table = lake.table(&target)?;
    let now = chrono::Utc::now();
    let batch = rows(evaluation, now.timestamp_millis())?;
    let file = format!(
        "{DAY}={}/{}.parquet",
        now.format("%Y-%m-%d"),
        evaluation.run_id
    );
    let bytes = parquet_bytes(batch.schema(), Some(&batch))?;
    let columns: Vec<ColumnEntry> = schema()
        .fields()
        .iter()
        .map(|f| {
            Ok(ColumnEntry {
                name: f.name().clone(),
                hive_type: sluice_catalog::types::hive_type(f.data_type())
                    .map_err(|e| RunError::QualityLog(e.to_string()))?,
            })
        })
        .collect::<Result<_, RunError>>()?;
    let partition_by = vec![DAY.to_string()];
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let registered = catalog.get_table(QUALITY_DATABASE, QUALITY_TABLE).await?;
        let previous_run = registered.as_ref().and_then(|t| t.run_id.clone());
        let carried = match &previous_run {
            Some(id) => table.read_manifest(id).await?,
            None => None,
        };
        let version = new_run_id();
        let mut staged = table.put_staged(&version, &file, bytes.clone()).await?;
        staged.rows = Some(batch.num_rows() as u64);
        let result = Box::pin(commit(Commit {
            catalog,
            policy: sluice_catalog::schema::SchemaChangePolicy::Update,
            table: &table,
            table_ref: &table_ref,
            schema: schema(),
            partition_by: &partition_by,
            columns: &columns,
            run_id: &version,
            rows: batch.num_rows() as u64,
            files: vec![staged],
            carried,
            bookmark: None,
            bookmark_moved: false,
            applied_reset: None,
            based_on: Some(previous_run),
        }))
        .await;
        match result {
            Ok(_) => return Ok(format!("{QUALITY_DATABASE}.{QUALITY_TABLE}")),
            // Another run's append moved the table (or removed this one's staging folder
            // as it finished): try again on top of it.
            Err(e) => {
                discard_version(&table, &version).await;
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| RunError::QualityLog("no attempt was made".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_rule_with_its_metrics_as_json() {
        let results = vec![
            pb::QualityResult {
                rule: "RowCount > 0".into(),
                outcome: pb::QualityOutcome::Passed as i32,
                failure_reason: String::new(),
                metrics: [("Dataset.*.RowCount".to_string(), 3.0)].into(),
            },
            pb::QualityResult {
                rule: "IsComplete \"a\"".into(),
                outcome: pb::QualityOutcome::Failed as i32,
                failure_reason: "Completeness 0.5 is not 1".into(),
                metrics: Default::default(),
            },
        ];
        let target = pb::TableRef {
            database: "d".into(),
            table: "t".into(),
        };
        let batch = rows(
            &Evaluation {
                run_id: "r1",
                job: "j",
                target: &target,
                published: false,
                results: &results,
            },
            1_000,
        )
        .expect("rows");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), schema().fields().len() - 1);
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&[batch])
            .expect("printable")
            .to_string();
        assert!(text.contains("{\"Dataset.*.RowCount\":3.0}"), "{text}");
        assert!(text.contains("FAILED"), "{text}");
        assert!(text.contains("Completeness 0.5 is not 1"), "{text}");
    }
}
