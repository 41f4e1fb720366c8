//! `sluice query --scheduler URL`: SQL over a scheduler's Flight SQL service.

use anyhow::{Result, anyhow};
use datafusion::arrow::record_batch::RecordBatch;
use futures::TryStreamExt;

use crate::connection::{Connection, Login, flight_message};

/// Runs `sql` on the scheduler at `url` and returns every batch of the result.
pub(crate) async fn query(url: &str, login: &Login, sql: &str) -> Result<Vec<RecordBatch>> {
    let connection = Connection::open(url, login).await?;
    let mut client = connection.flight_sql();
    let info = client
        .execute(sql.to_string(), None)
        .await
        .map_err(|e| anyhow!("query failed: {}", flight_message(&e)))?;
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint
            .ticket
            .ok_or_else(|| anyhow!("the scheduler returned an endpoint without a ticket"))?;
        let stream = client
            .do_get(ticket)
            .await
            .map_err(|e| anyhow!("query failed: {}", flight_message(&e)))?;
        let mut part: Vec<RecordBatch> = stream
            .try_collect()
            .await
            .map_err(|e| anyhow!("query failed: {}", flight_message(&e)))?;
        batches.append(&mut part);
    }
    Ok(batches)
}
