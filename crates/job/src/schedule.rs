//! The `schedule:` value: a cron timer (Glue's `cron(...)` or five fields) and conditional
//! triggers.

use sluice_proto as pb;

use crate::convert::Converter;
use crate::model;

/// Converts the value.
pub(crate) fn convert(_c: &mut Converter, s: &model::ScheduleFile) -> pb::Schedule {
    match s {
        model::ScheduleFile::Cron(cron) => pb::Schedule {
            cron: cron.clone(),
            timezone: String::new(),
            after: Vec::new(),
        },
        model::ScheduleFile::Full(m) => pb::Schedule {
            cron: m.cron.clone().unwrap_or_default(),
            timezone: m.timezone.clone().unwrap_or_default(),
            after: m.after.clone(),
        },
    }
}
