//! The Flight SQL service's query sessions: the engine's [`LakeSessions`] behind the
//! service's [`QuerySessions`] trait, each statement counted and timed in the scheduler's
//! metrics when it ends.

use std::time::Duration;

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sluice_engine::LakeSessions;
use sluice_flight_sql::QuerySessions;

use crate::metrics::SchedulerMetrics;

/// [`LakeSessions`] as the Flight SQL service (and the dashboards) ask for them.
pub struct FlightSessions {
    /// The engine's sessions.
    pub sessions: LakeSessions,
    /// Where statements are counted and timed (`path="flight_sql"`).
    pub metrics: SchedulerMetrics,
}

#[async_trait::async_trait]
impl QuerySessions for FlightSessions {
    async fn session(&self, query_id: &str) -> Result<SessionContext, DataFusionError> {
        self.sessions.session(query_id).await
    }

    async fn cancel(&self, query_id: &str) {
        self.sessions.cancel(query_id).await;
    }

    /// Every statement Flight SQL ran is counted once; the duration of those answered.
    fn query_ended(&self, _query_id: &str, elapsed: Duration, answered: bool) {
        self.metrics.query_started("flight_sql");
        if answered {
            self.metrics.query_finished("flight_sql", elapsed);
        }
    }
}
