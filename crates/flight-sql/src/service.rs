//! The Flight SQL service's glue: [`SluiceFlightSql`] answers each call of arrow-flight's
//! [`FlightSqlService`] trait with the planning in `planning`, the running and encoding in
//! `streaming`, the prepared statements of `prepared` and the server facts of `metadata`.
//! Statements, prepared statements with bound parameters, and the catalog metadata commands
//! run over sessions that [`QuerySessions`] provides.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

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
use arrow_flight::{FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{AuthenticatedUser, Authenticator};
use crate::metadata::{SQL_INFO, XDBC_TYPES, foreign_keys_schema, primary_keys_schema};
use crate::planned::{PlannedStatements, decode_ticket, encode_ticket};
use crate::planning::{catalog_tables, param_values, parameter_schema, plan};
use crate::prepared::PreparedStatements;
use crate::streaming::{DoGetStream, arrow_status, flight_info, one_batch, schema_bytes};

pub use crate::planning::number_placeholders;

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

    /// Called once for every statement the service ran (`query_id` as given to
    /// [`QuerySessions::session`]), when its stream ends: `answered` is true when every
    /// batch was sent, false when it failed, timed out or the client went away. For metrics;
    /// nothing by default.
    fn query_ended(&self, _query_id: &str, _elapsed: Duration, _answered: bool) {}
}

/// Settings of the Flight SQL service.
#[derive(Debug, Clone)]
pub struct FlightSqlOptions {
    /// A query still running after this long is cancelled.
    pub query_timeout: Duration,
    /// Prepared statements kept open at most (the oldest are closed beyond it).
    pub max_prepared_statements: usize,
    /// Statements planned by `GetFlightInfo` kept at most for their `DoGet` (0: plan
    /// again at `DoGet`).
    pub max_planned_statements: usize,
}

impl Default for FlightSqlOptions {
    fn default() -> Self {
        Self {
            query_timeout: Duration::from_secs(300),
            max_prepared_statements: 10_000,
            max_planned_statements: 1_024,
        }
    }
}

/// Sluice's Flight SQL service (serve it with [`FlightSqlServer::new`](arrow_flight::flight_service_server::FlightServiceServer)).
pub struct SluiceFlightSql {
    sessions: Arc<dyn QuerySessions>,
    auth: Option<Arc<Authenticator>>,
    options: FlightSqlOptions,
    prepared: PreparedStatements,
    planned: PlannedStatements,
}

/// How long a plan made for `GetFlightInfo` waits for its `DoGet`.
const PLANNED_TTL: Duration = Duration::from_secs(60);

impl SluiceFlightSql {
    /// A service over `sessions`; with `auth`, `Handshake` checks basic credentials and hands
    /// out bearer tokens (the [`AuthLayer`](crate::AuthLayer) checks them on other calls).
    pub fn new(
        sessions: Arc<dyn QuerySessions>,
        auth: Option<Arc<Authenticator>>,
        options: FlightSqlOptions,
    ) -> Self {
        let prepared = PreparedStatements::new(options.max_prepared_statements);
        let planned = PlannedStatements::new(options.max_planned_statements, PLANNED_TTL);
        Self {
            sessions,
            auth,
            options,
            prepared,
            planned,
        }
    }

    /// Plans `sql` (read-only) with `params` bound, in a fresh session labelled `query_id`.
    async fn plan(
        &self,
        sql: &str,
        params: Option<&RecordBatch>,
        query_id: &str,
    ) -> Result<DataFrame, Status> {
        plan(self.sessions.as_ref(), sql, params, query_id).await
    }

    /// Runs a planned query and streams its batches, within the query time limit.
    async fn stream(&self, df: DataFrame, query_id: String) -> Result<DoGetStream, Status> {
        crate::streaming::run(&self.sessions, df, query_id, self.options.query_timeout).await
    }

    /// Every table of the catalog with its schema: (database, table, schema).
    async fn tables(&self) -> Result<Vec<(String, String, SchemaRef)>, Status> {
        catalog_tables(self.sessions.as_ref()).await
    }
}

fn user_of<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<AuthenticatedUser>()
        .map_or_else(|| "anonymous".to_string(), |u| u.name.clone())
}

/// A fresh query id: its cluster jobs are named after it, and cancelled by it.
fn new_query_id() -> String {
    format!("query-{}", uuid::Uuid::now_v7())
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
        // Planned once, here, in the session the DoGet will run it in (see `planned`).
        let query_id = new_query_id();
        let df = self.plan(&query.query, None, &query_id).await?;
        let user = user_of(&request);
        tracing::info!(user = %user, %query_id, sql = %query.query, "flight sql statement");
        let schema = df.schema().as_arrow().clone();
        let handle = self.planned.keep(df, query_id, user);
        let ticket = TicketStatementQuery {
            statement_handle: encode_ticket(handle, &query.query).into(),
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
        let (sql, params) = self.prepared.get(&cmd.prepared_statement_handle)?;
        let df = self.plan(&sql, params.as_ref(), "plan").await?;
        let schema = df.schema().as_arrow().clone();
        flight_info(&schema, cmd.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let ticket = decode_ticket(&ticket.statement_handle);
        let user = user_of(&request);
        if let Some((df, query_id)) = ticket
            .handle
            .and_then(|handle| self.planned.take(&handle, &user))
        {
            tracing::debug!(user = %user, %query_id, "flight sql query, as planned");
            return Ok(Response::new(self.stream(df, query_id).await?));
        }
        let sql = std::str::from_utf8(ticket.sql)
            .map_err(|_| Status::invalid_argument("the statement ticket is not text"))?;
        let query_id = new_query_id();
        tracing::info!(user = %user, %query_id, sql = %sql, "flight sql query");
        let df = self.plan(sql, None, &query_id).await?;
        Ok(Response::new(self.stream(df, query_id).await?))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let (sql, params) = self.prepared.get(&query.prepared_statement_handle)?;
        let query_id = new_query_id();
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
        let handle = self.prepared.create(query.query);
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
        let key = self
            .prepared
            .bind(&query.prepared_statement_handle, params)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(key.into_bytes().into()),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        self.prepared.close(&query.prepared_statement_handle);
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
