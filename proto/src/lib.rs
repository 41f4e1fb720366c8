//! Sluice's wire contract: the job spec and the job service, generated from `proto/sluice/v1`.

/// Version 1 of the contract.
pub mod v1 {
    #![allow(
        missing_docs,
        clippy::doc_lazy_continuation,
        clippy::large_enum_variant
    )]
    tonic::include_proto!("sluice.v1");
}

pub use v1::*;

impl RunState {
    /// Whether a run in this state has ended (STOPPED, SUCCEEDED, FAILED or TIMEOUT).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Stopped | RunState::Succeeded | RunState::Failed | RunState::Timeout
        )
    }
}
