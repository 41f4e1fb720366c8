//! Failures injected for tests of the commit protocol, named in an environment variable.

/// Environment variable naming failures to inject, for tests of the commit protocol (a
/// comma-separated list): `before_commit` fails a run after its files are written and sealed,
/// before the catalog moves; `slow_commit` holds it 10 s there (a commit in flight, for
/// shutdown tests); `crash_after_publish`, `crash_after_seal` and
/// `crash_after_catalog` abort the whole process at that step of the commit.
pub const FAILPOINT_ENV: &str = "SLUICE_FAILPOINT";

/// Whether [`FAILPOINT_ENV`] names `name`.
pub fn failpoint(name: &str) -> bool {
    std::env::var(FAILPOINT_ENV).is_ok_and(|v| v.split(',').any(|f| f == name))
}

/// Aborts the process, as a crash would, when [`FAILPOINT_ENV`] names `crash_<step>`.
pub(crate) fn crash_point(step: &str) {
    if failpoint(&format!("crash_{step}")) {
        eprintln!("failpoint crash_{step}: aborting");
        std::process::abort();
    }
}
