//! The Sluice scheduler service: the job service and its run store, Flight SQL over the
//! lake, and the process that starts and serves them. The engine it runs jobs on (shared
//! with the `sluice` CLI) is `sluice-engine`.

pub mod args;
pub mod config;
pub mod dashboards;
pub mod metrics;
pub mod process;
pub mod service;
pub mod sessions;
