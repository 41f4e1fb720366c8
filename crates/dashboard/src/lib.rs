//! Dashboards as code: the YAML format, its validation, and the HTTP pages and API.
//!
//! A binary mounts the dashboards by building a [`DashboardState`] (a [`QueryBackend`],
//! the catalog, [`DashboardOptions`] with the folder of dashboard files, optionally an
//! authenticator and a [`RunsBackend`]) and merging [`router`]'s routes into its HTTP
//! server.

mod api;
mod assets;
pub mod backend;
pub mod cache;
pub mod encoding;
pub mod load;
mod model;
pub mod output;
mod pages;
mod playground;
pub mod query;
mod save;
mod session;
pub mod spec;
mod state;
mod workbench;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

pub use backend::{
    QueryBackend, QueryError, QueryResult, RunSummary, RunsBackend, SessionsBackend, TableVersion,
};
pub use cache::{CacheStats, ResultCache};
pub use load::{DashboardFileError, LoadReport, load_dir, load_file};
pub use session::SESSION_COOKIE;
pub use spec::{Dashboard, Dataset, Filter, Panel};
pub use state::{DashboardOptions, DashboardState, LoadSummary, OpenBindError};
pub use workbench::{ResultsOptions, Retention, RetentionError};

/// Every page, API route and asset of the dashboards, to merge into a binary's server.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so failed logins
/// back off per client address as Flight SQL's do. With an authenticator in the options,
/// every route but `/login` and `/assets/*` needs a session.
pub fn router(state: DashboardState) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/dashboards", get(pages::dashboards))
        .route("/dashboards/{id}", get(pages::dashboard))
        .route("/dashboards/{id}/panels/{panel}/rows", get(pages::rows))
        .route("/catalog", get(pages::catalog))
        .route("/runs", get(pages::runs))
        .route("/sql", get(pages::sql))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/assets/{name}", get(assets::asset))
        .route("/api/dashboards", get(api::list_dashboards))
        .route("/api/dashboard-errors", get(api::load_errors))
        .route("/api/dashboards/{id}", get(api::get_dashboard))
        .route(
            "/api/dashboards/{id}/panels/{panel}/data",
            get(api::panel_data),
        )
        .route(
            "/api/dashboards/{id}/panels/{panel}/rows",
            get(api::panel_rows),
        )
        .route(
            "/api/dashboards/{id}/filters/{filter}/options",
            get(api::filter_options),
        )
        .route("/api/catalog", get(api::catalog))
        .route("/api/runs", get(api::runs))
        .route("/api/sql", post(api::run_sql))
        .route("/api/cache", get(api::cache_stats))
        .merge(playground::routes())
        .merge(workbench::routes())
        .layer(from_fn_with_state(state.clone(), session::guard))
        .with_state(state)
}
