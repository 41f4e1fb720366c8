//! The scheduler service: the job manager, its run store and its gRPC face.

pub mod bookmarks;
pub mod grpc;
pub mod jobs;
pub mod schedule_store;
pub mod schedules;
pub mod store;

pub use grpc::JobServiceImpl;
pub use jobs::{JobError, JobManager, RunListener};
pub use store::RunStore;

/// The one way Sluice handles a poisoned lock (see [`sluice_engine::lock`]).
pub(crate) use sluice_engine::lock;
