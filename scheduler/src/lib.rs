//! The Sluice scheduler: plans jobs, runs them on Ballista, commits their output to the lake
//! and registers it in the catalog.
//!
//! The same code serves `sluice run` (an embedded cluster inside the CLI) and the
//! `sluice-scheduler` service.

pub mod config;
pub mod engine;
pub mod query;
pub mod runner;
pub mod service;
pub mod size_estimates;

pub use engine::{Engine, EngineError, JobProgress};
pub use runner::{Lake, RunError, RunEvent, RunReport, SourceReport, run_job};
