//! The Flight SQL service's query sessions: the engine's [`LakeSessions`] behind the
//! service's [`QuerySessions`] trait.

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sluice_engine::LakeSessions;
use sluice_flight_sql::QuerySessions;

/// [`LakeSessions`] as the Flight SQL service asks for them.
pub struct FlightSessions(pub LakeSessions);

#[async_trait::async_trait]
impl QuerySessions for FlightSessions {
    async fn session(&self, query_id: &str) -> Result<SessionContext, DataFusionError> {
        self.0.session(query_id).await
    }

    async fn cancel(&self, query_id: &str) {
        self.0.cancel(query_id).await;
    }
}
