//! Errors starting or talking to the engine.

/// A boxed error of any kind, kept as the source of an [`EngineError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors starting or talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Ballista failed to start.
    #[error("cannot start the embedded Ballista cluster: {source}")]
    Start {
        /// The step that failed, e.g. `binding the scheduler's port`.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: BoxError,
    },
    /// Reading the scheduler's state failed.
    #[error("cannot read the scheduler's job state: {0}")]
    State(#[source] ballista_core::error::BallistaError),
    /// An environment variable sets an option to a value it cannot take.
    #[error("{variable}: {}", sluice_planner::clean_message(.source))]
    Setting {
        /// The variable, e.g. `DATAFUSION_EXECUTION_BATCH_SIZE`.
        variable: String,
        /// Why the value was refused.
        #[source]
        source: datafusion::error::DataFusionError,
    },
}

/// Maps an error of the start-up step `what` to [`EngineError::Start`].
pub(crate) fn start<E: Into<BoxError>>(what: &'static str) -> impl FnOnce(E) -> EngineError {
    move |e| EngineError::Start {
        what,
        source: e.into(),
    }
}
