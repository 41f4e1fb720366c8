//! Ballista's scheduler service with long polls: an idle executor's `PollWork` is answered
//! as soon as there is work for it, instead of empty at once.
//!
//! Under pull scheduling an executor learns of new tasks only by polling, and Ballista's
//! poll loop sleeps 50 ms after an empty answer. A job's first tasks and each stage after a
//! shuffle or broadcast therefore started on average 25 ms, and up to 50 ms, after they
//! could have (measured at x100: hand-outs took 40-50 ms a round). [`LongPollScheduler`]
//! holds an empty answer to an executor with nothing running for up to [`HOLD`] (by
//! default), and polls
//! Ballista again for it whenever the scheduler signals new work (its `on_work_available`
//! hook: a job submitted, a stage resolved). An executor with a task running is answered at
//! once as before, so the statuses it reports on its next poll are never held back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpc;
use ballista_core::serde::protobuf::{
    CancelJobParams, CancelJobResult, CleanJobDataParams, CleanJobDataResult,
    CreateUpdateSessionParams, CreateUpdateSessionResult, ExecuteQueryParams, ExecuteQueryResult,
    ExecutorStoppedParams, ExecutorStoppedResult, GetJobMetricsParams, GetJobMetricsResult,
    GetJobStatusParams, GetJobStatusResult, HeartBeatParams, HeartBeatResult, PollWorkParams,
    PollWorkResult, RegisterExecutorParams, RegisterExecutorResult, RemoveSessionParams,
    RemoveSessionResult, UpdateTaskStatusParams, UpdateTaskStatusResult,
};
use ballista_core::serde::scheduler::ExecutorSpecification;
use tokio::sync::{Notify, Semaphore};
use tonic::{Request, Response, Status};

use crate::introspection::Scheduler;

/// The longest an idle executor's poll is held by default. Shorter than every client time limit and
/// far inside the executor timeout (a poll is the executor's heartbeat); a held poll also
/// delays a draining executor's last report and the scheduler's shutdown by at most this.
pub const HOLD: Duration = Duration::from_millis(500);

/// The most polls held at once. A cluster has far fewer executors; past this (a flood of
/// polls, from a misbehaving client or an attacker on an open port) polls are answered at
/// once, as Ballista alone answers them, so a flood costs no more than without holding.
pub const MAX_HELD_POLLS: usize = 64;

/// Signals that the scheduler has new tasks to hand out, to every poll being held.
#[derive(Debug, Default)]
pub struct WorkSignal {
    /// Raised on every signal: a poll compares it before and after asking Ballista, so a
    /// signal between the two is never missed.
    generation: AtomicU64,
    notify: Notify,
}

impl WorkSignal {
    /// Wakes every held poll to ask Ballista again.
    pub fn signal(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Waits until the generation differs from `seen` or `until` passes; true on a signal.
    async fn changed_since(&self, seen: u64, until: tokio::time::Instant) -> bool {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before the check below, so a signal in between still wakes it.
        notified.as_mut().enable();
        if self.generation() != seen {
            return true;
        }
        tokio::select! {
            () = notified => true,
            () = tokio::time::sleep_until(until) => self.generation() != seen,
        }
    }
}

/// Ballista's scheduler service, holding idle executors' polls until there is work; every
/// other call goes straight to Ballista's.
#[derive(Clone)]
pub struct LongPollScheduler {
    inner: Scheduler,
    work: Arc<WorkSignal>,
    hold: Duration,
    /// One permit per poll that may be held at once ([`MAX_HELD_POLLS`]).
    holds: Arc<Semaphore>,
}

impl LongPollScheduler {
    /// Serves `inner`, holding idle executors' polls for up to `hold` and asking `inner`
    /// again on each of `work`'s signals.
    pub(crate) fn new(inner: Scheduler, work: Arc<WorkSignal>, hold: Duration) -> Self {
        Self {
            inner,
            work,
            hold,
            holds: Arc::new(Semaphore::new(MAX_HELD_POLLS)),
        }
    }
}

/// Whether an executor polling with `params` runs nothing: all its task slots are free.
fn runs_nothing(params: &PollWorkParams) -> bool {
    let vcores = params
        .metadata
        .as_ref()
        .and_then(|metadata| metadata.specification.as_ref())
        .map(|specification| {
            let specification: ExecutorSpecification = specification.clone().into();
            specification.vcores
        });
    vcores.is_some_and(|vcores| vcores > 0 && params.num_free_vcores >= vcores)
}

fn is_empty(result: &PollWorkResult) -> bool {
    result.tasks.is_empty() && result.jobs_to_clean.is_empty()
}

#[tonic::async_trait]
impl SchedulerGrpc for LongPollScheduler {
    async fn poll_work(
        &self,
        request: Request<PollWorkParams>,
    ) -> Result<Response<PollWorkResult>, Status> {
        let (metadata, extensions, params) = request.into_parts();
        // Dropped when the answer is sent, freeing the hold for another poll.
        let permit = if runs_nothing(&params) {
            Arc::clone(&self.holds).try_acquire_owned().ok()
        } else {
            None
        };
        if permit.is_none() {
            return SchedulerGrpc::poll_work(
                &self.inner,
                Request::from_parts(metadata, extensions, params),
            )
            .await;
        }
        let until = tokio::time::Instant::now() + self.hold;
        // The statuses go with the first call only; the calls after it just ask for work.
        let again = PollWorkParams {
            task_status: Vec::new(),
            ..params.clone()
        };
        let mut seen = self.work.generation();
        let mut answer = SchedulerGrpc::poll_work(
            &self.inner,
            Request::from_parts(metadata.clone(), extensions.clone(), params),
        )
        .await?;
        while is_empty(answer.get_ref()) && self.work.changed_since(seen, until).await {
            seen = self.work.generation();
            answer = SchedulerGrpc::poll_work(
                &self.inner,
                Request::from_parts(metadata.clone(), extensions.clone(), again.clone()),
            )
            .await?;
        }
        Ok(answer)
    }

    async fn register_executor(
        &self,
        request: Request<RegisterExecutorParams>,
    ) -> Result<Response<RegisterExecutorResult>, Status> {
        SchedulerGrpc::register_executor(&self.inner, request).await
    }

    async fn heart_beat_from_executor(
        &self,
        request: Request<HeartBeatParams>,
    ) -> Result<Response<HeartBeatResult>, Status> {
        SchedulerGrpc::heart_beat_from_executor(&self.inner, request).await
    }

    async fn update_task_status(
        &self,
        request: Request<UpdateTaskStatusParams>,
    ) -> Result<Response<UpdateTaskStatusResult>, Status> {
        SchedulerGrpc::update_task_status(&self.inner, request).await
    }

    async fn create_update_session(
        &self,
        request: Request<CreateUpdateSessionParams>,
    ) -> Result<Response<CreateUpdateSessionResult>, Status> {
        SchedulerGrpc::create_update_session(&self.inner, request).await
    }

    async fn remove_session(
        &self,
        request: Request<RemoveSessionParams>,
    ) -> Result<Response<RemoveSessionResult>, Status> {
        SchedulerGrpc::remove_session(&self.inner, request).await
    }

    type ExecuteQueryPushStream = <Scheduler as SchedulerGrpc>::ExecuteQueryPushStream;

    async fn execute_query_push(
        &self,
        request: Request<ExecuteQueryParams>,
    ) -> Result<Response<Self::ExecuteQueryPushStream>, Status> {
        SchedulerGrpc::execute_query_push(&self.inner, request).await
    }

    async fn execute_query(
        &self,
        request: Request<ExecuteQueryParams>,
    ) -> Result<Response<ExecuteQueryResult>, Status> {
        SchedulerGrpc::execute_query(&self.inner, request).await
    }

    async fn get_job_status(
        &self,
        request: Request<GetJobStatusParams>,
    ) -> Result<Response<GetJobStatusResult>, Status> {
        SchedulerGrpc::get_job_status(&self.inner, request).await
    }

    async fn get_job_metrics(
        &self,
        request: Request<GetJobMetricsParams>,
    ) -> Result<Response<GetJobMetricsResult>, Status> {
        SchedulerGrpc::get_job_metrics(&self.inner, request).await
    }

    async fn executor_stopped(
        &self,
        request: Request<ExecutorStoppedParams>,
    ) -> Result<Response<ExecutorStoppedResult>, Status> {
        SchedulerGrpc::executor_stopped(&self.inner, request).await
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobParams>,
    ) -> Result<Response<CancelJobResult>, Status> {
        SchedulerGrpc::cancel_job(&self.inner, request).await
    }

    async fn clean_job_data(
        &self,
        request: Request<CleanJobDataParams>,
    ) -> Result<Response<CleanJobDataResult>, Status> {
        SchedulerGrpc::clean_job_data(&self.inner, request).await
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use ballista_core::BALLISTA_PROTOCOL_VERSION;
    use ballista_core::serde::protobuf::ExecutorRegistration;
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    use ballista_core::serde::scheduler::ExecutorOperatingSystemSpecification;
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;
    use tonic::transport::server::TcpIncoming;

    use super::*;
    use crate::{Engine, EngineOptions};

    /// What the test scheduler's server task ends with.
    type ServeResult = Result<(), tonic::transport::Error>;

    fn poll(free_vcores: u32) -> PollWorkParams {
        PollWorkParams {
            metadata: Some(ExecutorRegistration {
                id: "long-poll-test-executor".to_string(),
                host: Some("127.0.0.1".to_string()),
                port: 1,
                grpc_port: 0,
                specification: Some(ExecutorSpecification::default().with_vcores(1).into()),
                os_info: Some(ExecutorOperatingSystemSpecification::default().into()),
                ballista_protocol_version: BALLISTA_PROTOCOL_VERSION,
            }),
            num_free_vcores: free_vcores,
            task_status: Vec::new(),
        }
    }

    /// A real scheduler serving Ballista's gRPC on a loopback port, holding idle polls for up
    /// to two minutes: its engine, its URL and the server's task.
    async fn serve_holding_polls()
    -> Result<(Engine, String, JoinHandle<ServeResult>), Box<dyn Error>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut options = EngineOptions::new(1);
        options.poll_hold = Duration::from_secs(120);
        let (engine, service) = Engine::for_service(options, &url).await?;
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        Ok((engine, url, server))
    }

    /// A real scheduler on a loopback port, polled over gRPC as an executor polls it: a busy
    /// executor's poll is answered at once; an idle one's waits, and is answered with the
    /// task of a job submitted while it waited (Ballista alone answers it empty at once).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_executors_poll_is_answered_with_work_submitted_while_it_waited()
    -> Result<(), Box<dyn Error>> {
        let (engine, url, server) = serve_holding_polls().await?;
        let limit = Duration::from_secs(60);
        let mut busy = SchedulerGrpcClient::connect(url.clone()).await?;
        let answer = tokio::time::timeout(limit, busy.poll_work(poll(0))).await??;
        assert!(answer.get_ref().tasks.is_empty());

        let mut idle = busy.clone();
        let held = tokio::spawn(async move { idle.poll_work(poll(1)).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !held.is_finished(),
            "the poll of an executor running nothing was answered while there was no work"
        );
        let ctx = engine.ctx().clone();
        let job = tokio::spawn(async move { ctx.sql("SELECT 1 AS one").await?.collect().await });
        let answer = tokio::time::timeout(limit, held).await???;
        assert_eq!(
            answer.get_ref().tasks.len(),
            1,
            "the held poll should carry the new job's task"
        );
        job.abort();
        server.abort();
        Ok(())
    }

    /// A flood of idle polls on a real scheduler, half again the limit: whichever come first
    /// are held, every one past [`MAX_HELD_POLLS`] is answered at once (empty, as Ballista
    /// alone would), and the held ones stay held.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_idle_polls_holds_no_more_than_the_limit() -> Result<(), Box<dyn Error>> {
        let (_engine, url, server) = serve_holding_polls().await?;
        let client = SchedulerGrpcClient::connect(url.clone()).await?;
        let flood = MAX_HELD_POLLS + MAX_HELD_POLLS / 2;
        let polls: Vec<_> = (0..flood)
            .map(|_| {
                let mut client = client.clone();
                tokio::spawn(async move { client.poll_work(poll(1)).await })
            })
            .collect();
        let answered = || polls.iter().filter(|poll| poll.is_finished()).count();
        let started = tokio::time::Instant::now();
        while answered() < flood - MAX_HELD_POLLS {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} of {flood} polls were answered; all past the first {MAX_HELD_POLLS} should be",
                answered()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            answered(),
            flood - MAX_HELD_POLLS,
            "the first {MAX_HELD_POLLS} polls should still be held"
        );
        for poll in polls {
            if poll.is_finished() {
                assert!(poll.await??.get_ref().tasks.is_empty());
            } else {
                poll.abort();
            }
        }
        server.abort();
        Ok(())
    }

    #[tokio::test]
    async fn a_signal_between_asking_and_waiting_is_not_missed() {
        let work = WorkSignal::default();
        let seen = work.generation();
        work.signal();
        let until = tokio::time::Instant::now() + Duration::from_secs(120);
        assert!(work.changed_since(seen, until).await);
        let seen = work.generation();
        let soon = tokio::time::Instant::now() + Duration::from_millis(10);
        assert!(!work.changed_since(seen, soon).await);
    }
}
