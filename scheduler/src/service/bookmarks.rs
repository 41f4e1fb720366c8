//! The job service's bookmark calls: show, reset and rewind a job's bookmark.

use std::sync::Arc;

use sluice_proto as pb;
use tonic::Status;

use super::jobs::JobManager;

/// The bookmark of `request.job_name` as of its table's committed version.
pub async fn get_bookmark(
    _manager: &Arc<JobManager>,
    _request: pb::GetBookmarkRequest,
) -> Result<pb::Bookmark, Status> {
    Err(Status::unimplemented(
        "bookmarks are being built (issue 19)",
    ))
}

/// Forgets the bookmark of `request.job_name`, or rewinds it to `request.to_run_id`.
pub async fn reset_bookmark(
    _manager: &Arc<JobManager>,
    _request: pb::ResetBookmarkRequest,
) -> Result<pb::Bookmark, Status> {
    Err(Status::unimplemented(
        "bookmarks are being built (issue 19)",
    ))
}
