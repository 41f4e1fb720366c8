//! Planning a statement: a read-only DataFusion plan in a fresh query session, `?`
//! placeholders numbered and bound parameters applied; the catalog's tables for the metadata
//! commands; and the gRPC status a failed query maps to.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::prelude::{DataFrame, SQLOptions};
use tonic::Status;

use sluice_planner::clean_message as clean;

use crate::service::{QuerySessions, SQL_CATALOG};

/// Plans `sql` (read-only) with `params` bound, in a fresh session labelled `query_id`.
pub(crate) async fn plan(
    sessions: &dyn QuerySessions,
    sql: &str,
    params: Option<&RecordBatch>,
    query_id: &str,
) -> Result<DataFrame, Status> {
    let ctx = sessions
        .session(query_id)
        .await
        .map_err(|e| Status::unavailable(format!("cannot read the catalog: {}", clean(&e))))?;
    let sql = number_placeholders(sql);
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(&sql, read_only)
        .await
        .map_err(sql_status)?;
    match params {
        Some(batch) => df
            .with_param_values(param_values(batch)?)
            .map_err(sql_status),
        None => Ok(df),
    }
}

/// Every table of the catalog with its schema: (database, table, schema).
pub(crate) async fn catalog_tables(
    sessions: &dyn QuerySessions,
) -> Result<Vec<(String, String, SchemaRef)>, Status> {
    let ctx = sessions
        .session("metadata")
        .await
        .map_err(|e| Status::unavailable(format!("cannot read the catalog: {}", clean(&e))))?;
    let mut out = Vec::new();
    let Some(catalog) = ctx.catalog(SQL_CATALOG) else {
        return Ok(out);
    };
    let mut databases = catalog.schema_names();
    databases.sort();
    for database in databases {
        if database == "information_schema" {
            continue;
        }
        let Some(schema) = catalog.schema(&database) else {
            continue;
        };
        let mut names = schema.table_names();
        names.sort();
        for name in names {
            if let Ok(Some(table)) = schema.table(&name).await {
                out.push((database.clone(), name, table.schema()));
            }
        }
    }
    Ok(out)
}

/// The status for a query that failed: writes are refused, SQL mistakes are the client's.
pub(crate) fn sql_status(e: DataFusionError) -> Status {
    let message = clean(&e);
    let refused = [
        "DDL not supported",
        "DML not supported",
        "Statement not supported",
    ];
    // DataFusion's `SQLOptions` refuse a statement with a plain `Plan` error: only its text
    // says that it is the read-only policy.
    let is_refusal = matches!(
        e.find_root(),
        DataFusionError::Plan(m) if refused.iter().any(|r| m.starts_with(r))
    );
    if is_refusal {
        return Status::permission_denied(format!(
            "Sluice's query service is read-only ({message}); write tables with an ETL job"
        ));
    }
    match e.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => Status::invalid_argument(message),
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(message),
        _ => Status::internal(message),
    }
}

/// Rewrites `?` placeholders (ADBC, JDBC) to DataFusion's numbered `$1`, `$2`, … outside
/// strings and comments.
pub fn number_placeholders(sql: &str) -> String {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return sql.to_string();
    };
    if !tokens
        .iter()
        .any(|t| matches!(t, Token::Placeholder(p) if p == "?"))
    {
        return sql.to_string();
    }
    let mut n = 0;
    let mut out = String::with_capacity(sql.len() + 8);
    for token in tokens {
        match token {
            Token::Placeholder(p) if p == "?" => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// The single row of bound parameters as positional values.
#[allow(clippy::result_large_err)]
pub(crate) fn param_values(batch: &RecordBatch) -> Result<ParamValues, Status> {
    if batch.num_rows() != 1 {
        return Err(Status::invalid_argument(format!(
            "bind exactly one row of parameters per execution (got {} rows)",
            batch.num_rows()
        )));
    }
    let values = batch
        .columns()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            ScalarValue::try_from_array(column, 0).map_err(|e| {
                Status::invalid_argument(format!("parameter {}: {}", i + 1, clean(&e)))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ParamValues::from(values))
}

/// The parameters a statement expects (`$1`, `$2`, …), typed where DataFusion can tell.
pub(crate) fn parameter_schema(df: &DataFrame) -> Schema {
    let Ok(fields) = df.logical_plan().get_parameter_fields() else {
        return Schema::empty();
    };
    let mut named: Vec<(usize, String, DataType)> = fields
        .into_iter()
        .map(|(name, field)| {
            let index = name.trim_start_matches('$').parse().unwrap_or(usize::MAX);
            let ty = field.map_or(DataType::Null, |f| f.data_type().clone());
            (index, name, ty)
        })
        .collect();
    named.sort();
    Schema::new(
        named
            .into_iter()
            .map(|(_, name, ty)| Field::new(name, ty, true))
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::number_placeholders;

    #[test]
    fn question_marks_become_numbered_placeholders_outside_strings() {
        assert_eq!(
            number_placeholders("SELECT * FROM t WHERE a = ? AND b = '?' AND c > ?"),
            "SELECT * FROM t WHERE a = $1 AND b = '?' AND c > $2"
        );
        assert_eq!(number_placeholders("SELECT 1"), "SELECT 1");
    }
}
