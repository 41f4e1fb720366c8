//! What the dashboards need from the binary that serves them: a way to plan and run SQL
//! over the catalog's tables ([`QueryBackend`]), and optionally the job runs
//! ([`RunsBackend`]). [`SessionsBackend`] implements the first over the Flight SQL
//! service's [`QuerySessions`], so panel queries take the same path as Flight SQL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::common::config::Dialect;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use serde::Serialize;
use sluice_catalog::Catalog;
use sluice_flight_sql::QuerySessions;

/// Why a statement could not be planned or run.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    /// A table the statement reads is not registered (yet).
    #[error("table {table} does not exist yet{hint}")]
    TableNotFound {
        /// `database.table` as written.
        table: String,
        /// ` (did you mean 'x'?)` or empty.
        hint: String,
    },
    /// The statement would change data; dashboards and the workbench only read.
    #[error("only queries may run here (the SQL is read-only): {0}")]
    ReadOnly(String),
    /// The SQL is wrong (syntax, unknown column, types).
    #[error("{0}")]
    Invalid(String),
    /// Running it failed.
    #[error("{0}")]
    Failed(String),
    /// The catalog or cluster could not be reached.
    #[error("cannot reach the catalog or the cluster: {0}")]
    Unavailable(String),
}

impl QueryError {
    /// A short machine-readable kind for the API (`table_not_found`, `read_only`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            QueryError::TableNotFound { .. } => "table_not_found",
            QueryError::ReadOnly(_) => "read_only",
            QueryError::Invalid(_) => "invalid",
            QueryError::Failed(_) => "failed",
            QueryError::Unavailable(_) => "unavailable",
        }
    }
}

/// The rows a statement returned, with their schema (known even when there are none).
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Output columns.
    pub schema: SchemaRef,
    /// Output rows.
    pub batches: Vec<RecordBatch>,
}

/// The version of one table a statement reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TableVersion {
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// The catalog's version number of the table.
    pub version: u64,
    /// The run that wrote it, if a job did.
    pub run_id: Option<String>,
}

/// Plans and runs read-only SQL over the catalog's tables.
#[async_trait::async_trait]
pub trait QueryBackend: Send + Sync + 'static {
    /// The output schema of `sql` (planned, not run).
    async fn plan(&self, sql: &str) -> Result<SchemaRef, QueryError>;

    /// Runs `sql` with its placeholders `$1`, `$2`, … bound to `params`. Must refuse
    /// anything but a query.
    async fn run(&self, sql: &str, params: Vec<ScalarValue>) -> Result<QueryResult, QueryError>;

    /// The current version of every catalog table `sql` reads, sorted.
    async fn table_versions(&self, sql: &str) -> Result<Vec<TableVersion>, QueryError>;
}

/// One job run, as the runs page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Run id.
    pub id: String,
    /// Job name.
    pub job: String,
    /// Glue state name (`RUNNING`, `SUCCEEDED`, …).
    pub state: String,
    /// When it started (RFC 3339), if it has.
    pub started_at: Option<String>,
    /// When it ended (RFC 3339), if it has.
    pub finished_at: Option<String>,
    /// Progress as text (`stage 2/3, 14/20 tasks`), while running.
    pub progress: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The job runs, for the runs page (the scheduler implements it from its job service).
#[async_trait::async_trait]
pub trait RunsBackend: Send + Sync + 'static {
    /// Runs, newest first, at most `limit`.
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunSummary>, QueryError>;
}

/// A [`QueryBackend`] over Flight SQL's [`QuerySessions`] and the catalog: the same query
/// path as Flight SQL (on the cluster when the scheduler serves it).
pub struct SessionsBackend {
    sessions: Arc<dyn QuerySessions>,
    catalog: Arc<dyn Catalog>,
    next_query: AtomicU64,
    timeout: Duration,
    /// A table-less session with the sessions' default catalog and schema, enough to find
    /// the tables a statement reads (cheaper than a session for every cache lookup).
    parser: OnceLock<SessionContext>,
}

impl SessionsBackend {
    /// A backend whose statements run in sessions from `sessions`, with table versions
    /// from `catalog`; a statement still running after 300 s is cancelled.
    pub fn new(sessions: Arc<dyn QuerySessions>, catalog: Arc<dyn Catalog>) -> Self {
        Self {
            sessions,
            catalog,
            next_query: AtomicU64::new(1),
            timeout: Duration::from_secs(300),
            parser: OnceLock::new(),
        }
    }

    /// The same, cancelling statements that run longer than `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn session(&self) -> Result<(SessionContext, String), QueryError> {
        let n = self.next_query.fetch_add(1, Ordering::Relaxed);
        let id = format!("dashboard-{}-{n}", std::process::id());
        let ctx = self
            .sessions
            .session(&id)
            .await
            .map_err(|e| QueryError::Unavailable(clean(&e)))?;
        Ok((ctx, id))
    }

    /// The parse-only session, made once from a real session's defaults.
    async fn parser(&self) -> Result<&SessionContext, QueryError> {
        if let Some(parser) = self.parser.get() {
            return Ok(parser);
        }
        let (ctx, _) = self.session().await?;
        let catalog = ctx.state().config_options().catalog.clone();
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(catalog.default_catalog, catalog.default_schema);
        Ok(self
            .parser
            .get_or_init(|| SessionContext::new_with_config(config)))
    }

    /// The `(database, table)` pairs `sql` reads, after checking each is registered.
    async fn checked_tables(
        &self,
        ctx: &SessionContext,
        sql: &str,
    ) -> Result<Vec<TableVersion>, QueryError> {
        let refs = table_references(ctx, sql)?;
        let mut out = Vec::new();
        let mut known: Option<Vec<String>> = None;
        for (database, table) in refs {
            match self.catalog.get_table(&database, &table).await {
                Ok(Some(entry)) => out.push(TableVersion {
                    database,
                    table,
                    version: entry.version,
                    run_id: entry.run_id,
                }),
                Ok(None) => {
                    if known.is_none() {
                        let tables = self
                            .catalog
                            .list_tables()
                            .await
                            .map_err(|e| QueryError::Unavailable(e.to_string()))?;
                        known = Some(
                            tables
                                .iter()
                                .map(|t| format!("{}.{}", t.database, t.name))
                                .collect(),
                        );
                    }
                    let name = format!("{database}.{table}");
                    let hint = sluice_job::suggest::hint(
                        &name,
                        known.iter().flatten().map(String::as_str),
                    );
                    return Err(QueryError::TableNotFound { table: name, hint });
                }
                Err(e) => return Err(QueryError::Unavailable(e.to_string())),
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[async_trait::async_trait]
impl QueryBackend for SessionsBackend {
    async fn plan(&self, sql: &str) -> Result<SchemaRef, QueryError> {
        let (ctx, _) = self.session().await?;
        self.checked_tables(&ctx, sql).await?;
        let df = ctx
            .sql_with_options(sql, read_only())
            .await
            .map_err(sql_error)?;
        Ok(Arc::new(df.schema().as_arrow().clone()))
    }

    async fn run(&self, sql: &str, params: Vec<ScalarValue>) -> Result<QueryResult, QueryError> {
        let (ctx, id) = self.session().await?;
        self.checked_tables(&ctx, sql).await?;
        let df = ctx
            .sql_with_options(sql, read_only())
            .await
            .map_err(sql_error)?;
        let df = df.with_param_values(params).map_err(sql_error)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        match tokio::time::timeout(self.timeout, df.collect()).await {
            Ok(Ok(batches)) => Ok(QueryResult { schema, batches }),
            Ok(Err(e)) => {
                self.sessions.cancel(&id).await;
                Err(QueryError::Failed(clean(&e)))
            }
            Err(_) => {
                self.sessions.cancel(&id).await;
                Err(QueryError::Failed(format!(
                    "the query ran longer than {} s and was cancelled",
                    self.timeout.as_secs()
                )))
            }
        }
    }

    async fn table_versions(&self, sql: &str) -> Result<Vec<TableVersion>, QueryError> {
        let parser = self.parser().await?;
        self.checked_tables(parser, sql).await
    }
}

/// The options that refuse DDL, DML and other statements.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// `(database, table)` of every table `sql` reads (refusing anything but a query), resolved against the session's default
/// catalog and schema (common table expressions are not tables and are left out).
pub fn table_references(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<(String, String)>, QueryError> {
    let state = ctx.state();
    let statement = state
        .sql_to_statement(sql, &Dialect::Generic)
        .map_err(|e| QueryError::Invalid(clean(&e)))?;
    let is_query = matches!(
        &statement,
        DFStatement::Statement(s) if matches!(**s, SqlStatement::Query(_))
    );
    if !is_query {
        return Err(QueryError::ReadOnly(
            "not a query: dashboards and the workbench run SELECT and WITH statements only".into(),
        ));
    }
    let refs = state
        .resolve_table_references(&statement)
        .map_err(|e| QueryError::Invalid(clean(&e)))?;
    let options = state.config_options();
    let catalog = &options.catalog.default_catalog;
    let schema = &options.catalog.default_schema;
    let mut out: Vec<(String, String)> = refs
        .into_iter()
        .map(|r| {
            let full = r.resolve(catalog, schema);
            (full.schema.to_string(), full.table.to_string())
        })
        // information_schema is served by DataFusion, not the catalog.
        .filter(|(db, _)| db != "information_schema")
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Classifies a planning error: read-only refusals, SQL mistakes, the rest.
fn sql_error(e: DataFusionError) -> QueryError {
    let message = clean(&e);
    let refused = [
        "DDL not supported",
        "DML not supported",
        "Statement not supported",
    ];
    match e.find_root() {
        DataFusionError::Plan(m) if refused.iter().any(|r| m.starts_with(r)) => {
            QueryError::ReadOnly(message)
        }
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => QueryError::Invalid(message),
        _ => QueryError::Failed(message),
    }
}

fn clean(e: &DataFusionError) -> String {
    sluice_planner::clean_message(e)
}
