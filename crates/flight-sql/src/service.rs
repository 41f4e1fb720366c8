//! The Flight SQL service: statements, prepared statements with bound parameters, and the
//! catalog metadata commands, over sessions that [`QuerySessions`] provides.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginTransactionRequest, ActionBeginTransactionResult,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, ActionEndTransactionRequest, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandPreparedStatementUpdate,
    CommandStatementIngest, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use sluice_planner::clean_message as clean;

use crate::auth::{AuthenticatedUser, Authenticator};
use crate::metadata::{SQL_INFO, XDBC_TYPES, foreign_keys_schema, primary_keys_schema};

/// Name of the one SQL catalog Sluice serves: tables are `sluice.<database>.<table>`.
pub const SQL_CATALOG: &str = "sluice";

/// Where query sessions come from: the scheduler gives sessions over the catalog's current
/// tables whose queries run on its cluster.
#[async_trait::async_trait]
pub trait QuerySessions: Send + Sync + 'static {
    /// A session whose catalog `sluice` holds every table registered now. Work it starts
    /// on a cluster is labelled with `query_id`.
    async fn session(&self, query_id: &str) -> Result<SessionContext, DataFusionError>;

    /// Stops the cluster's work for `query_id` (its results are no longer wanted).
    async fn cancel(&self, query_id: &str);
}

/// Settings of the Flight SQL service.
#[derive(Debug, Clone)]
pub struct FlightSqlOptions {
    /// A query still running after this long is cancelled.
    pub query_timeout: Duration,
    /// Prepared statements kept open at most (the oldest are closed beyond it).
    pub max_prepared_statements: usize,
}

impl Default for FlightSqlOptions {
    fn default() -> Self {
        Self {
            query_timeout: Duration::from_secs(300),
            max_prepared_statements: 10_000,
        }
    }
}

struct Prepared {
    sql: String,
    params: Option<RecordBatch>,
    created: u64,
}

/// Sluice's Flight SQL service (serve it with [`FlightSqlServer::new`](arrow_flight::flight_service_server::FlightServiceServer)).
pub struct SluiceFlightSql {
    sessions: Arc<dyn QuerySessions>,
    auth: Option<Arc<Authenticator>>,
    options: FlightSqlOptions,
    prepared: Mutex<(u64, HashMap<String, Prepared>)>,
}

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

impl SluiceFlightSql {
    /// A service over `sessions`; with `auth`, `Handshake` checks basic credentials and hands
    /// out bearer tokens (the [`AuthLayer`](crate::AuthLayer) checks them on other calls).
    pub fn new(
        sessions: Arc<dyn QuerySessions>,
        auth: Option<Arc<Authenticator>>,
        options: FlightSqlOptions,
    ) -> Self {
        Self {
            sessions,
            auth,
            options,
            prepared: Mutex::new((0, HashMap::new())),
        }
    }

    /// Plans `sql` (read-only) with `params` bound, in a fresh session labelled `query_id`.
    async fn plan(
        &self,
        sql: &str,
        params: Option<&RecordBatch>,
        query_id: &str,
    ) -> Result<DataFrame, Status> {
        let ctx =
            self.sessions.session(query_id).await.map_err(|e| {
                Status::unavailable(format!("cannot read the catalog: {}", clean(&e)))
            })?;
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

    /// Runs a planned query and streams its batches as Flight data, cancelling the cluster's
    /// work when the client goes away or the time limit passes.
    async fn stream(&self, df: DataFrame, query_id: String) -> Result<DoGetStream, Status> {
        let timeout = self.options.query_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let guard = CancelOnDrop {
            sessions: Arc::clone(&self.sessions),
            query_id: Some(query_id),
        };
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = match tokio::time::timeout_at(deadline, df.execute_stream()).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(sql_status(e)),
            Err(_) => return Err(timed_out(timeout)),
        };
        let limited = limit(batches, guard, deadline, timeout);
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(limited)
            .map_err(Status::from);
        Ok(Box::pin(encoded))
    }

    fn prepared_sql(&self, handle: &[u8]) -> Result<(String, Option<RecordBatch>), Status> {
        let key = std::str::from_utf8(handle)
            .map_err(|_| Status::invalid_argument("the prepared statement handle is not text"))?;
        let guard = crate::lock(&self.prepared);
        guard
            .1
            .get(key)
            .map(|p| (p.sql.clone(), p.params.clone()))
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no prepared statement `{key}` (closed, or the scheduler restarted)"
                ))
            })
    }

    /// Every table of the catalog with its schema: (database, table, schema).
    async fn tables(&self) -> Result<Vec<(String, String, SchemaRef)>, Status> {
        let ctx =
            self.sessions.session("metadata").await.map_err(|e| {
                Status::unavailable(format!("cannot read the catalog: {}", clean(&e)))
            })?;
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
}

/// Calls [`QuerySessions::cancel`] unless the query's stream ended normally.
struct CancelOnDrop {
    sessions: Arc<dyn QuerySessions>,
    query_id: Option<String>,
}

impl CancelOnDrop {
    fn finished(mut self) {
        self.query_id = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.query_id.take() {
            let sessions = Arc::clone(&self.sessions);
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { sessions.cancel(&id).await });
            }
        }
    }
}

/// The batches of `stream` until `deadline`, then a `DeadlineExceeded` error.
fn limit(
    stream: SendableRecordBatchStream,
    guard: CancelOnDrop,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> impl Stream<Item = Result<RecordBatch, FlightError>> + Send {
    futures::stream::unfold(Some((stream, guard)), move |state| async move {
        let (mut stream, guard) = state?;
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(batch))) => Some((Ok(batch), Some((stream, guard)))),
            Ok(Some(Err(e))) => Some((Err(FlightError::Tonic(Box::new(sql_status(e)))), None)),
            Ok(None) => {
                guard.finished();
                None
            }
            Err(_) => Some((Err(FlightError::Tonic(Box::new(timed_out(timeout)))), None)),
        }
    })
}

fn timed_out(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "the query ran longer than the scheduler's limit of {} s and was cancelled",
        timeout.as_secs_f64()
    ))
}

/// The status for a query that failed: writes are refused, SQL mistakes are the client's.
fn sql_status(e: DataFusionError) -> Status {
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
fn param_values(batch: &RecordBatch) -> Result<ParamValues, Status> {
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
fn parameter_schema(df: &DataFrame) -> Schema {
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

#[allow(clippy::result_large_err)]
fn schema_bytes(schema: &Schema) -> Result<prost::bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?;
    Ok(message.0)
}

/// A `FlightInfo` whose one endpoint's ticket is `ticket`, on this same server.
#[allow(clippy::result_large_err)]
fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// One record batch as a Flight stream.
fn one_batch(batch: RecordBatch) -> Response<DoGetStream> {
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { Ok(batch) }))
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

fn user_of<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<AuthenticatedUser>()
        .map_or_else(|| "anonymous".to_string(), |u| u.name.clone())
}

fn arrow_status(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

fn read_only<T>() -> Result<T, Status> {
    Err(Status::permission_denied(
        "Sluice's query service is read-only; write tables with an ETL job",
    ))
}

#[tonic::async_trait]
impl FlightSqlService for SluiceFlightSql {
    type FlightService = SluiceFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let token = match &self.auth {
            None => "anonymous".to_string(),
            Some(auth) => {
                let header = request
                    .metadata()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        Status::unauthenticated(
                            "the handshake needs `authorization: Basic base64(user:password)`",
                        )
                    })?;
                // The peer address keys the failed-login back-off (see `auth`).
                let peer = request.remote_addr().map(|a| a.ip());
                let (user, token) = auth.login_basic(header, peer).await.map_err(|e| {
                    tracing::debug!(peer = ?peer, error = %e, "flight sql login refused");
                    e.to_status()
                })?;
                tracing::info!(user = %user, "flight sql login");
                token
            }
        };
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let stream = futures::stream::iter(vec![Ok(reply)]);
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(stream));
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|e| Status::internal(e.to_string()))?;
        response.metadata_mut().insert("authorization", value);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let df = self.plan(&query.query, None, "plan").await?;
        tracing::info!(user = %user_of(&request), sql = %query.query, "flight sql statement");
        let schema = df.schema().as_arrow().clone();
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        flight_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let (sql, params) = self.prepared_sql(&cmd.prepared_statement_handle)?;
        let df = self.plan(&sql, params.as_ref(), "plan").await?;
        let schema = df.schema().as_arrow().clone();
        flight_info(&schema, cmd.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let sql = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("the statement ticket is not text"))?;
        let query_id = format!("query-{}", uuid::Uuid::now_v7());
        tracing::info!(user = %user_of(&request), %query_id, sql = %sql, "flight sql query");
        let df = self.plan(&sql, None, &query_id).await?;
        Ok(Response::new(self.stream(df, query_id).await?))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let (sql, params) = self.prepared_sql(&query.prepared_statement_handle)?;
        let query_id = format!("query-{}", uuid::Uuid::now_v7());
        tracing::info!(user = %user_of(&request), %query_id, sql = %sql, "flight sql prepared query");
        let df = self.plan(&sql, params.as_ref(), &query_id).await?;
        Ok(Response::new(self.stream(df, query_id).await?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let df = self.plan(&query.query, None, "prepare").await?;
        let dataset_schema = schema_bytes(df.schema().as_arrow())?;
        let parameter_schema = schema_bytes(&parameter_schema(&df))?;
        let handle = uuid::Uuid::now_v7().to_string();
        let mut guard = crate::lock(&self.prepared);
        let (counter, map) = &mut *guard;
        *counter += 1;
        if map.len() >= self.options.max_prepared_statements
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            handle.clone(),
            Prepared {
                sql: query.query,
                params: None,
                created: *counter,
            },
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into_bytes().into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let stream = request.into_inner().map_err(FlightError::from);
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream)
                .try_collect()
                .await
                .map_err(|e| {
                    Status::invalid_argument(format!("cannot read the parameters: {e}"))
                })?;
        let params = match batches.len() {
            0 => None,
            1 => batches.into_iter().next(),
            _ => Some(
                datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches)
                    .map_err(arrow_status)?,
            ),
        };
        if let Some(p) = &params {
            param_values(p)?;
        }
        let key = String::from_utf8(query.prepared_statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("the prepared statement handle is not text"))?;
        let mut guard = crate::lock(&self.prepared);
        let prepared = guard.1.get_mut(&key).ok_or_else(|| {
            Status::not_found(format!(
                "no prepared statement `{key}` (closed, or the scheduler restarted)"
            ))
        })?;
        prepared.params = params;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(key.into_bytes().into()),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        let key = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        let mut guard = crate::lock(&self.prepared);
        guard.1.remove(&key);
        Ok(())
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        read_only()
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        read_only()
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        read_only()
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        Err(Status::invalid_argument(
            "Sluice's query service has no transactions (it is read-only)",
        ))
    }

    async fn do_action_end_transaction(
        &self,
        _query: ActionEndTransactionRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        Err(Status::invalid_argument(
            "Sluice's query service has no transactions (it is read-only)",
        ))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(SQL_CATALOG);
        Ok(one_batch(builder.build().map_err(arrow_status)?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut databases: Vec<String> =
            self.tables().await?.into_iter().map(|(d, ..)| d).collect();
        databases.dedup();
        let mut builder = query.into_builder();
        for database in databases {
            builder.append(SQL_CATALOG, database);
        }
        Ok(one_batch(builder.build().map_err(arrow_status)?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let tables = self.tables().await?;
        let mut builder = query.into_builder();
        for (database, table, schema) in tables {
            builder
                .append(SQL_CATALOG, database, table, "TABLE", &schema)
                .map_err(arrow_status)?;
        }
        Ok(one_batch(builder.build().map_err(arrow_status)?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append("TABLE");
        Ok(one_batch(builder.build().map_err(arrow_status)?))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = SQL_INFO
            .as_ref()
            .ok_or_else(|| Status::internal("the SQL info table failed to build"))?;
        let schema = query.clone().into_builder(info).schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let info = SQL_INFO
            .as_ref()
            .ok_or_else(|| Status::internal("the SQL info table failed to build"))?;
        Ok(one_batch(
            query.into_builder(info).build().map_err(arrow_status)?,
        ))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let types = XDBC_TYPES
            .as_ref()
            .ok_or_else(|| Status::internal("the XDBC type table failed to build"))?;
        let schema = query.into_builder(types).schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let types = XDBC_TYPES
            .as_ref()
            .ok_or_else(|| Status::internal("the XDBC type table failed to build"))?;
        Ok(one_batch(
            query.into_builder(types).build().map_err(arrow_status)?,
        ))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        flight_info(
            &primary_keys_schema(),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(one_batch(RecordBatch::new_empty(primary_keys_schema())))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        flight_info(
            &foreign_keys_schema(),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(one_batch(RecordBatch::new_empty(foreign_keys_schema())))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        flight_info(
            &foreign_keys_schema(),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(one_batch(RecordBatch::new_empty(foreign_keys_schema())))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        flight_info(
            &foreign_keys_schema(),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(one_batch(RecordBatch::new_empty(foreign_keys_schema())))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
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
