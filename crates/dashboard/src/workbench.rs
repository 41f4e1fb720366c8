//! The SQL workbench's server side: saved queries, and results kept in the lake under a
//! results prefix (with a retention) for download as CSV or Parquet.

use axum::Router;

use crate::state::DashboardState;

/// The workbench's API routes (the page itself is `pages::sql`).
pub(crate) fn routes() -> Router<DashboardState> {
    Router::new()
}
