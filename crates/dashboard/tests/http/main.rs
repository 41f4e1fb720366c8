//! The dashboards' HTTP server over real sockets, a real catalog and Parquet files: one test
//! binary (each links DataFusion, and linking dominates the build).

mod api;
mod load;
mod logins;
mod playground;
mod support;
