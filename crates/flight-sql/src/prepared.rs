//! Prepared statements: the handles `CreatePreparedStatement` hands out, each with its SQL and
//! the parameters last bound to it, at most a fixed number at once (the oldest are closed
//! beyond it).

use std::collections::HashMap;
use std::sync::Mutex;

use datafusion::arrow::record_batch::RecordBatch;
use tonic::Status;

/// One prepared statement: its SQL, its bound parameters, and when it was created.
struct Prepared {
    sql: String,
    params: Option<RecordBatch>,
    created: u64,
}

/// The open prepared statements, keyed by handle. Handles are random (UUID v7) text; a
/// handle that is not open (closed, evicted, or from before a restart) is `NOT_FOUND`.
pub(crate) struct PreparedStatements {
    max: usize,
    /// A creation counter (orders statements for eviction) and the statements by handle.
    open: Mutex<(u64, HashMap<String, Prepared>)>,
}

impl PreparedStatements {
    /// No statements yet; at most `max` open at once.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            open: Mutex::new((0, HashMap::new())),
        }
    }

    /// Opens a statement for `sql` without parameters and returns its handle, closing the
    /// oldest statement first if `max` are open.
    pub(crate) fn create(&self, sql: String) -> String {
        let handle = uuid::Uuid::now_v7().to_string();
        let mut guard = crate::lock(&self.open);
        let (counter, map) = &mut *guard;
        *counter += 1;
        if map.len() >= self.max
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
                sql,
                params: None,
                created: *counter,
            },
        );
        handle
    }

    /// The SQL and bound parameters of the statement `handle`.
    #[allow(clippy::result_large_err)]
    pub(crate) fn get(&self, handle: &[u8]) -> Result<(String, Option<RecordBatch>), Status> {
        let key = std::str::from_utf8(handle)
            .map_err(|_| Status::invalid_argument("the prepared statement handle is not text"))?;
        let guard = crate::lock(&self.open);
        guard
            .1
            .get(key)
            .map(|p| (p.sql.clone(), p.params.clone()))
            .ok_or_else(|| not_found(key))
    }

    /// Binds `params` to the statement `handle` (replacing what was bound) and returns the
    /// handle as text.
    #[allow(clippy::result_large_err)]
    pub(crate) fn bind(
        &self,
        handle: &[u8],
        params: Option<RecordBatch>,
    ) -> Result<String, Status> {
        let key = String::from_utf8(handle.to_vec())
            .map_err(|_| Status::invalid_argument("the prepared statement handle is not text"))?;
        let mut guard = crate::lock(&self.open);
        let prepared = guard.1.get_mut(&key).ok_or_else(|| not_found(&key))?;
        prepared.params = params;
        Ok(key)
    }

    /// Closes the statement `handle`; closing one that is not open does nothing.
    pub(crate) fn close(&self, handle: &[u8]) {
        let key = String::from_utf8_lossy(handle);
        crate::lock(&self.open).1.remove(key.as_ref());
    }
}

fn not_found(key: &str) -> Status {
    Status::not_found(format!(
        "no prepared statement `{key}` (closed, or the scheduler restarted)"
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use tonic::Code;

    use super::PreparedStatements;

    fn one_param(value: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![value]))])
            .expect("a valid batch")
    }

    #[test]
    fn statements_are_created_bound_looked_up_and_closed() {
        let statements = PreparedStatements::new(10);
        let handle = statements.create("SELECT $1".to_string());
        let (sql, params) = statements.get(handle.as_bytes()).expect("open");
        assert_eq!(sql, "SELECT $1");
        assert!(params.is_none());

        let key = statements
            .bind(handle.as_bytes(), Some(one_param(7)))
            .expect("bound");
        assert_eq!(key, handle);
        let (_, params) = statements.get(handle.as_bytes()).expect("open");
        assert_eq!(params, Some(one_param(7)));

        statements.close(handle.as_bytes());
        let gone = statements.get(handle.as_bytes()).expect_err("closed");
        assert_eq!(gone.code(), Code::NotFound);
        let gone = statements
            .bind(handle.as_bytes(), None)
            .expect_err("closed");
        assert_eq!(gone.code(), Code::NotFound);
        statements.close(handle.as_bytes());
    }

    #[test]
    fn the_oldest_statement_is_closed_beyond_the_bound() {
        let statements = PreparedStatements::new(2);
        let first = statements.create("SELECT 1".to_string());
        let second = statements.create("SELECT 2".to_string());
        let third = statements.create("SELECT 3".to_string());
        assert_eq!(
            statements
                .get(first.as_bytes())
                .expect_err("evicted")
                .code(),
            Code::NotFound
        );
        assert_eq!(
            statements.get(second.as_bytes()).expect("open").0,
            "SELECT 2"
        );
        assert_eq!(
            statements.get(third.as_bytes()).expect("open").0,
            "SELECT 3"
        );
    }

    #[test]
    fn a_handle_that_is_not_text_is_the_callers_mistake() {
        let statements = PreparedStatements::new(2);
        let err = statements.get(&[0xff, 0xfe]).expect_err("not text");
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}
