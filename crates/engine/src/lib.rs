//! The Sluice engine: a Ballista cluster (embedded, or a scheduler serving executor
//! processes), SQL sessions over the catalog's tables, and running a job: planning it,
//! writing its output as a new table version and committing that version.
//!
//! Both the `sluice` CLI (an embedded cluster) and the `sluice-scheduler` service use it.
//!
//! Modules, one job each:
//! - [`cluster`]: starting the cluster ([`Engine`], [`EngineOptions`]);
//! - [`session`]: session settings and the sessions built from them;
//! - [`introspection`]: the one place that reads Ballista's task and executor managers;
//! - [`size_estimates`]: an optimizer rule sizing scans without statistics;
//! - [`run`]: one job run, end to end ([`run_job`]);
//! - `write`, `commit`: writing a run's files and committing them as a version;
//! - `in_process`: running a job's plan in this process when it is the whole cluster;
//! - [`progress`]: progress events and stage spans of a run;
//! - [`query`]: SQL over the catalog's tables;
//! - [`failpoint`]: failures injected for tests.

pub mod cluster;
mod commit;
pub mod error;
pub mod failpoint;
mod hash64;
mod in_process;
pub mod introspection;
pub mod long_poll;
pub mod progress;
pub mod quality;
pub mod quality_log;
pub mod query;
pub mod run;
pub mod session;
pub mod size_estimates;
pub mod sync;
mod write;

pub use cluster::{BallistaService, Engine, EngineOptions};
pub use error::EngineError;
pub use failpoint::{FAILPOINT_ENV, failpoint};
pub use in_process::InProcessShape;
pub use introspection::{ScanRows, SchedulerView, StageSnapshot, StageState};
pub use progress::{JobProgress, ProgressState, RunEvent, StageProgress};
pub use query::LakeSessions;
pub use run::{
    RunError, RunReport, SourceReport, job_bookmark, reset_job_bookmark, run_job, target_catalog,
};
pub use session::{
    HASH_JOIN_BUFFERING_BYTES, PARQUET_ROW_GROUP_ROWS, QUERY_JOB_PREFIX, session_config,
};
pub use sync::lock;
