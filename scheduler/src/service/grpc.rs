//! The tonic `JobService`: the job manager over gRPC.
//!
//! Every call checks the caller's role (set by the `AuthLayer` in front of the service):
//! `SubmitJob` and `CancelJob` need `engineer` or `admin`; `GetJob`, `ListJobs` and
//! `WatchJob` are open to every role, `analyst` included (run state is what an analyst
//! waits on before querying a table). Refusals are `PERMISSION_DENIED` naming the user,
//! the role and what it may do. Without users every caller is the anonymous `admin`.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use sluice_flight_sql::{Action, authorize};
use sluice_proto as pb;
use sluice_proto::job_service_server::JobService;
use tonic::{Request, Response, Status};

use super::jobs::{JobError, JobManager};

/// Serves [`JobManager`] as `sluice.v1.JobService`.
pub struct JobServiceImpl {
    manager: Arc<JobManager>,
}

impl JobServiceImpl {
    /// The service over `manager`.
    pub fn new(manager: Arc<JobManager>) -> Self {
        Self { manager }
    }
}

fn status(e: JobError) -> Status {
    match e {
        JobError::InvalidSpec(m) => Status::invalid_argument(format!("invalid job: {m}")),
        JobError::NotFound(_) => Status::not_found(e.to_string()),
        JobError::NotCancellable(..) => Status::failed_precondition(e.to_string()),
        JobError::Store(_) => Status::internal(e.to_string()),
        JobError::Roots(_) | JobError::Unavailable(_) | JobError::ShuttingDown => {
            Status::unavailable(e.to_string())
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::JobRun, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for JobServiceImpl {
    async fn submit_job(
        &self,
        request: Request<pb::SubmitJobRequest>,
    ) -> Result<Response<pb::SubmitJobResponse>, Status> {
        let user = authorize(&request, Action::SubmitJob)?;
        let spec = request
            .into_inner()
            .spec
            .ok_or_else(|| Status::invalid_argument("invalid job: spec: a job spec is required"))?;
        let run = self.manager.submit(spec).await.map_err(status)?;
        tracing::info!(user = %user.name, run_id = %run.id, "job submitted");
        Ok(Response::new(pb::SubmitJobResponse { run_id: run.id }))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::JobRun>, Status> {
        authorize(&request, Action::ReadJobs)?;
        let run = self
            .manager
            .get(&request.into_inner().run_id)
            .map_err(status)?;
        Ok(Response::new(run))
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        authorize(&request, Action::ReadJobs)?;
        let req = request.into_inner();
        let offset: usize = if req.page_token.is_empty() {
            0
        } else {
            req.page_token
                .parse()
                .map_err(|_| Status::invalid_argument("page_token: not a token from ListJobs"))?
        };
        let size = if req.page_size == 0 {
            50
        } else {
            req.page_size as usize
        };
        let runs: Vec<pb::JobRun> = self
            .manager
            .list()
            .map_err(status)?
            .into_iter()
            .filter(|r| req.states.is_empty() || req.states.contains(&r.state))
            .collect();
        let page: Vec<pb::JobRun> = runs.iter().skip(offset).take(size).cloned().collect();
        let next = offset + page.len();
        Ok(Response::new(pb::ListJobsResponse {
            runs: page,
            next_page_token: if next < runs.len() {
                next.to_string()
            } else {
                String::new()
            },
        }))
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::JobRun>, Status> {
        let user = authorize(&request, Action::CancelJob)?;
        let run = self
            .manager
            .cancel(&request.into_inner().run_id)
            .await
            .map_err(status)?;
        tracing::info!(user = %user.name, run_id = %run.id, "job cancelled");
        Ok(Response::new(run))
    }

    type WatchJobStream = WatchStream;

    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        authorize(&request, Action::ReadJobs)?;
        let mut rx = self
            .manager
            .watch(&request.into_inner().run_id)
            .map_err(status)?;
        let stream = async_stream::stream! {
            loop {
                let run = rx.borrow_and_update().clone();
                let done = pb::RunState::try_from(run.state).unwrap_or(pb::RunState::Unspecified).is_final();
                yield Ok(run);
                if done || rx.changed().await.is_err() {
                    break;
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_bookmark(
        &self,
        request: Request<pb::GetBookmarkRequest>,
    ) -> Result<Response<pb::Bookmark>, Status> {
        authorize(&request, Action::ReadJobs)?;
        super::bookmarks::get_bookmark(&self.manager, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn reset_bookmark(
        &self,
        request: Request<pb::ResetBookmarkRequest>,
    ) -> Result<Response<pb::Bookmark>, Status> {
        let user = authorize(&request, Action::SubmitJob)?;
        let req = request.into_inner();
        tracing::info!(user = %user.name, job = %req.job_name, to_run = %req.to_run_id, "bookmark reset");
        super::bookmarks::reset_bookmark(&self.manager, req)
            .await
            .map(Response::new)
    }

    async fn create_schedule(
        &self,
        request: Request<pb::CreateScheduleRequest>,
    ) -> Result<Response<pb::ScheduleEntry>, Status> {
        let user = authorize(&request, Action::SubmitJob)?;
        let entry = super::schedules::create_schedule(&self.manager, request.into_inner()).await?;
        tracing::info!(user = %user.name, schedule = %entry.name, "schedule registered");
        Ok(Response::new(entry))
    }

    async fn list_schedules(
        &self,
        request: Request<pb::ListSchedulesRequest>,
    ) -> Result<Response<pb::ListSchedulesResponse>, Status> {
        authorize(&request, Action::ReadJobs)?;
        super::schedules::list_schedules(&self.manager, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn delete_schedule(
        &self,
        request: Request<pb::DeleteScheduleRequest>,
    ) -> Result<Response<pb::ScheduleEntry>, Status> {
        let user = authorize(&request, Action::SubmitJob)?;
        let entry = super::schedules::delete_schedule(&self.manager, request.into_inner()).await?;
        tracing::info!(user = %user.name, schedule = %entry.name, "schedule removed");
        Ok(Response::new(entry))
    }
}
