//! The `quality:` block: a DQDL ruleset and what a failed rule does.

use sluice_proto as pb;

use crate::convert::Converter;
use crate::model;

/// Converts the block, recording an error for an unknown `on_failure`.
pub(crate) fn convert(c: &mut Converter, q: &model::QualityFile) -> pb::Quality {
    let on_failure = c.choose(
        "quality.on_failure",
        "quality action",
        q.on_failure.as_deref().unwrap_or("fail"),
        &[
            ("fail", pb::QualityAction::Fail),
            ("warn", pb::QualityAction::Warn),
        ],
        pb::QualityAction::Fail,
    );
    pb::Quality {
        rules: q.rules.clone(),
        on_failure: on_failure as i32,
    }
}
