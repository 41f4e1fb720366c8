//! Running a planned statement and encoding results as Flight data: the query's stream with
//! its time limit and cancellation, one-batch replies for the metadata commands, and the
//! `FlightInfo` and schema messages that describe them.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc, Ticket};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::DataFrame;
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::{Response, Status};

use crate::planning::sql_status;
use crate::service::QuerySessions;

/// The Flight data a `DoGet` streams back.
pub(crate) type DoGetStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

/// Runs a planned query and streams its batches as Flight data, cancelling the cluster's
/// work when the client goes away or `timeout` passes.
pub(crate) async fn run(
    sessions: &Arc<dyn QuerySessions>,
    df: DataFrame,
    query_id: String,
    timeout: Duration,
) -> Result<DoGetStream, Status> {
    let deadline = tokio::time::Instant::now() + timeout;
    let guard = CancelOnDrop {
        sessions: Arc::clone(sessions),
        query_id: Some(query_id),
        started: Instant::now(),
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

/// Calls [`QuerySessions::cancel`] unless the query's stream ended normally, and
/// [`QuerySessions::query_ended`] once either way.
struct CancelOnDrop {
    sessions: Arc<dyn QuerySessions>,
    query_id: Option<String>,
    started: Instant,
}

impl CancelOnDrop {
    fn finished(mut self) {
        if let Some(id) = self.query_id.take() {
            self.sessions.query_ended(&id, self.started.elapsed(), true);
        }
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.query_id.take() {
            self.sessions
                .query_ended(&id, self.started.elapsed(), false);
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

/// `schema` as an IPC schema message.
#[allow(clippy::result_large_err)]
pub(crate) fn schema_bytes(schema: &Schema) -> Result<prost::bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?;
    Ok(message.0)
}

/// A `FlightInfo` whose one endpoint's ticket is `ticket`, on this same server.
#[allow(clippy::result_large_err)]
pub(crate) fn flight_info(
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
pub(crate) fn one_batch(batch: RecordBatch) -> Response<DoGetStream> {
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { Ok(batch) }))
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

/// An Arrow failure while building a reply: the server's fault.
pub(crate) fn arrow_status(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}
