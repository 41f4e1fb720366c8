//! Data-quality rules (the job's `quality` block, in DQDL) evaluated over a run's staged
//! output before it is published.

use sluice_planner::PlannedJob;
use sluice_proto as pb;

use crate::cluster::Engine;
use crate::run::RunError;
use crate::write::Written;

/// Every rule's outcome over the files of `written` (in `staging_url`). With
/// `on_failure: fail`, a failed rule is [`RunError::Quality`]; with `warn` the outcomes are
/// returned and the run publishes.
pub(crate) async fn evaluate(
    _engine: &Engine,
    spec: &pb::JobSpec,
    _planned: &PlannedJob,
    _staging_url: &str,
    _written: &Written,
) -> Result<Vec<pb::QualityResult>, RunError> {
    match &spec.quality {
        None => Ok(Vec::new()),
        Some(q) if q.rules.trim().is_empty() => Ok(Vec::new()),
        // Built in issue 19; until then a job with rules is not silently published.
        Some(_) => Err(RunError::Quality(vec![pb::QualityResult {
            rule: "(quality rules)".into(),
            outcome: pb::QualityOutcome::Error as i32,
            failure_reason: "data-quality rules are not evaluated yet".into(),
            metrics: Default::default(),
        }])),
    }
}
