//! The job service's schedule calls: register, list and remove triggers.

use std::sync::Arc;

use sluice_proto as pb;
use tonic::Status;

use super::jobs::JobManager;

/// Registers (or replaces) the schedule in `request`.
pub async fn create_schedule(
    _manager: &Arc<JobManager>,
    _request: pb::CreateScheduleRequest,
) -> Result<pb::ScheduleEntry, Status> {
    Err(Status::unimplemented(
        "schedules are being built (issue 19)",
    ))
}

/// Every registered schedule.
pub async fn list_schedules(
    _manager: &Arc<JobManager>,
    _request: pb::ListSchedulesRequest,
) -> Result<pb::ListSchedulesResponse, Status> {
    Err(Status::unimplemented(
        "schedules are being built (issue 19)",
    ))
}

/// Removes the schedule named in `request`.
pub async fn delete_schedule(
    _manager: &Arc<JobManager>,
    _request: pb::DeleteScheduleRequest,
) -> Result<pb::ScheduleEntry, Status> {
    Err(Status::unimplemented(
        "schedules are being built (issue 19)",
    ))
}
