//! The one way Sluice handles a poisoned lock.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, recovering the guard if a thread panicked while holding it. Every critical
/// section guarded this way leaves its data whole (each one is a single insert, remove,
/// lookup or field update, with no invariant spread over several steps), so the data a
/// panicking holder left behind is still consistent; refusing it would only turn one
/// failed task into failures of every later call.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
