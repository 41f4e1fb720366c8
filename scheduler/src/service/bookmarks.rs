//! The job service's bookmark calls: show, reset and rewind a job's bookmark.
//!
//! The scheduler knows a job by its runs: the newest run of that name in the run store
//! gives the job's spec, hence its target table, whose committed version holds the bookmark.

use std::sync::Arc;

use sluice_engine::RunError;
use sluice_proto as pb;
use tonic::Status;

use super::jobs::JobManager;

/// The spec of the newest run of job `name`.
fn job_spec(manager: &Arc<JobManager>, name: &str) -> Result<pb::JobSpec, Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("job_name is required"));
    }
    let runs = manager
        .list()
        .map_err(|e| Status::unavailable(e.to_string()))?;
    runs.into_iter()
        .find(|r| r.job_name == name)
        .and_then(|r| r.spec)
        .ok_or_else(|| {
            Status::not_found(format!("no run of job '{name}' is known to this scheduler"))
        })
}

fn status(e: RunError) -> Status {
    match e {
        RunError::Lake(sluice_lake::LakeError::NoSuchRun { .. }) => {
            Status::invalid_argument(e.to_string())
        }
        other => Status::unavailable(other.to_string()),
    }
}

/// The bookmark of `request.job_name` as of its table's committed version.
pub async fn get_bookmark(
    manager: &Arc<JobManager>,
    request: pb::GetBookmarkRequest,
) -> Result<pb::Bookmark, Status> {
    let spec = job_spec(manager, &request.job_name)?;
    let (lake, catalogs) = manager.lake_and_catalogs();
    sluice_engine::job_bookmark(lake, catalogs, &spec)
        .await
        .map_err(status)
}

/// Forgets the bookmark of `request.job_name`, or rewinds it to `request.to_run_id`.
pub async fn reset_bookmark(
    manager: &Arc<JobManager>,
    request: pb::ResetBookmarkRequest,
) -> Result<pb::Bookmark, Status> {
    let spec = job_spec(manager, &request.job_name)?;
    let (lake, catalogs) = manager.lake_and_catalogs();
    let to = (!request.to_run_id.is_empty()).then_some(request.to_run_id.as_str());
    sluice_engine::reset_job_bookmark(lake, catalogs, &spec, to)
        .await
        .map_err(status)
}
