//! The Flight SQL service's query sessions: the engine's [`LakeSessions`] behind the
//! service's [`QuerySessions`] trait, each query counted in the scheduler's metrics.

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sluice_engine::LakeSessions;
use sluice_flight_sql::QuerySessions;

use crate::metrics::SchedulerMetrics;

/// [`LakeSessions`] as the Flight SQL service (and the dashboards) ask for them.
pub struct FlightSessions {
    /// The engine's sessions.
    pub sessions: LakeSessions,
    /// Where queries are counted (`sluice_queries_total{path="flight_sql"}`).
    pub metrics: SchedulerMetrics,
}

/// The session id Flight SQL's metadata commands use (not a query).
const METADATA_SESSION: &str = "metadata";

#[async_trait::async_trait]
impl QuerySessions for FlightSessions {
    async fn session(&self, query_id: &str) -> Result<SessionContext, DataFusionError> {
        if query_id != METADATA_SESSION && !query_id.starts_with("dashboard-") {
            self.metrics.query_started("flight_sql");
        }
        self.sessions.session(query_id).await
    }

    async fn cancel(&self, query_id: &str) {
        self.sessions.cancel(query_id).await;
    }
}
