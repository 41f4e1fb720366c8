//! The scheduler service: the job manager, its run store and its gRPC face.

pub mod grpc;
pub mod jobs;
pub mod store;

pub use grpc::JobServiceImpl;
pub use jobs::{JobError, JobManager};
pub use store::RunStore;

/// Locks `m`, recovering the guard if a thread panicked while holding it. Every critical
/// section guarded this way leaves its data whole (each one is a single insert, remove,
/// lookup or field update, with no invariant spread over several steps), so the data a
/// panicking holder left behind is still consistent; refusing it would only turn one
/// failed task into failures of every later call.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
