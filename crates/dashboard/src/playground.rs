//! The playground: build a panel in the browser (dataset, fields on x / y / colour, a
//! visual, a preview) and save it into a dashboard file as the YAML a person would write.

use axum::Router;

use crate::state::DashboardState;

/// The playground's page and API routes.
pub(crate) fn routes() -> Router<DashboardState> {
    Router::new()
}
