//! The global allocator of Sluice's binaries.
//!
//! mimalloc reuses freed Arrow buffers where glibc malloc hands large ones back to the kernel
//! and faults them in again batch after batch. By default mimalloc keeps freed pages for a
//! while, which raises peak memory by a few hundred MB on a large job; [`configure`] makes it
//! return them at once. Each binary declares:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: sluice_alloc::Allocator = sluice_alloc::Allocator {};
//! ```
//! and calls [`configure`] first thing in `main`.

/// The allocator type to declare as `#[global_allocator]`.
pub type Allocator = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc.h (v2 and v3), which the Rust bindings do not name:
/// it sits between `mi_option_eager_commit_delay` (14) and `mi_option_use_numa_nodes` (16).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// Makes the allocator return freed memory to the operating system without delay.
pub fn configure() {
    // SAFETY: mi_option_set only stores an option value; any value is valid for purge_delay.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}
