//! The `sluice-executor` process: a Ballista executor that an orchestrator can probe, watch
//! and stop.
//!
//! Ballista's `start_executor_process` tells the scheduler it stopped as soon as SIGTERM
//! arrives, before its tasks have drained, and under pull scheduling its poll loop keeps
//! asking for work (and so registers again) afterwards. This process assembles the same
//! parts itself (executor, Flight service, poll loop) so that it can drain properly:
//!
//! 1. SIGTERM (or Ctrl-C): `/readyz` and the gRPC health status turn not-ready at once;
//!    every task slot is claimed as it frees, so the poll loop asks for no new task.
//! 2. The running tasks finish (within the grace period), and a poll started after the
//!    last one ended reports them to the scheduler.
//! 3. Its shuffle files and task results are still needed by the jobs that made them
//!    (later stages and the client read them over Flight), so it keeps serving Flight until
//!    the scheduler reports each of those jobs ended and Flight has been idle for a moment.
//! 4. The poll loop stops and the executor tells the scheduler it stopped
//!    (`ExecutorStopped`), which removes it from the cluster at once; the process exits 0.
//!
//! While it runs, [`crate::job_watch`] stops the tasks of jobs the scheduler cancelled or no
//! longer knows (Ballista's cancel cannot reach a polling executor).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::RuntimeProducer;
use ballista_core::extension::EndpointOverrideFn;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{ExecutorStoppedParams, GetJobStatusParams, job_status};
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use ballista_executor::execution_engine::ExecutionEngine;
use ballista_executor::executor::Executor;
use ballista_executor::executor_process::{ExecutorProcessConfig, structure_executor_metadata};
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::health::ExecutorHealth;
use ballista_executor::metrics::LoggingMetricsCollector;
use ballista_executor::runtime_cache::{DefaultSessionRuntimeCache, MemoryPoolPolicy};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use sluice_cluster_tls::ClusterTls;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tonic::transport::Endpoint;

use crate::job_watch::RunningJobs;
use crate::metrics::{ExecutorMetrics, MeteredEngine};
use crate::polls::{CountingChannel, PollCounter};
use crate::serve::ReadinessCheck;

/// Largest gRPC message of the Flight service and the scheduler client (Ballista's default).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Sessions whose runtime (object stores, Parquet footer cache) is kept between tasks.
const SESSION_RUNTIME_CACHE: usize = 16;

/// How long Flight must have been idle, counted from when the jobs with data here ended,
/// before a draining executor leaves (a client reads a job's results right after it ends).
const FLIGHT_QUIET: Duration = Duration::from_secs(3);

/// How often a draining executor asks the scheduler about the jobs it holds data of.
const JOB_STATUS_INTERVAL: Duration = Duration::from_millis(250);

/// How long a draining executor waits for a poll to report its finished tasks before it
/// suspects the poll loop holds a task it was given (longer than Ballista's 5 s heartbeat poll).
const REPORT_WAIT: Duration = Duration::from_secs(7);

/// How long the executor waits for the scheduler to acknowledge that it stopped.
const STOP_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What an executor process is made of.
pub struct ProcessOptions {
    /// The scheduler's Ballista service, `http://host:port`.
    pub scheduler_url: String,
    /// The address the Flight service binds.
    pub bind_host: String,
    /// The host other processes reach this executor at.
    pub external_host: String,
    /// The Flight port (shuffle data).
    pub flight_port: u16,
    /// The executor gRPC port announced to the scheduler (unused under pull scheduling).
    pub grpc_port: u16,
    /// Task slots.
    pub vcores: usize,
    /// The folder of shuffle and spill files.
    pub work_dir: String,
    /// The memory shared by the task slots' DataFusion operators, in bytes; beyond it they
    /// spill to the work folder (`None`: unbounded).
    pub memory_pool_bytes: Option<u64>,
    /// Builds the base runtime of a session (object stores, spill folder).
    pub runtime_producer: RuntimeProducer,
    /// Counts the spill files of the runtimes `runtime_producer` builds (reported in
    /// `/metrics`).
    pub spills: Arc<crate::memory::SpillCounter>,
    /// The session configuration every task starts from.
    pub session_config: SessionConfig,
    /// Decodes the logical plan nodes of tasks (Sluice's writer nodes included).
    pub logical_codec: Arc<dyn datafusion_proto::logical_plan::LogicalExtensionCodec>,
    /// Decodes the physical plan nodes of tasks (Sluice's writer nodes included).
    pub physical_codec: Arc<dyn datafusion_proto::physical_plan::PhysicalExtensionCodec>,
    /// Applied to every connection to the scheduler (time limits, cluster TLS).
    pub endpoint_override: EndpointOverrideFn,
    /// The cluster's TLS identity for the Flight service, if any.
    pub tls: Option<ClusterTls>,
    /// Runs each task.
    pub engine: Arc<dyn ExecutionEngine>,
    /// The bound health and metrics port.
    pub health_listener: TcpListener,
    /// How long running tasks may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
}

/// Why the executor process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A port could not be bound or served.
    #[error("cannot serve {what}: {source}")]
    Serve {
        /// Which service.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The scheduler address is unusable.
    #[error("cannot use the scheduler address {url}: {message}")]
    Scheduler {
        /// The address.
        url: String,
        /// Why.
        message: String,
    },
    /// The memory pool is smaller than one byte per task slot.
    #[error("--memory-limit ({bytes} bytes) is smaller than the number of task slots ({vcores})")]
    MemoryPool {
        /// The pool size.
        bytes: u64,
        /// The slots.
        vcores: usize,
    },
    /// The metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// A service of the executor ended by itself.
    #[error("the executor's {0} stopped unexpectedly")]
    ServiceEnded(&'static str),
    /// Tasks were still running when the grace period ended.
    #[error(
        "{0} task(s) still running after the shutdown grace period; the scheduler re-runs them"
    )]
    GraceExpired(usize),
}

/// Whether the executor is registered and taking work.
#[derive(Clone)]
struct Readiness {
    registered: ExecutorHealth,
    draining: Arc<AtomicBool>,
}

impl Readiness {
    fn check(&self) -> ReadinessCheck {
        let me = self.clone();
        Arc::new(move || me.registered.is_ready() && !me.draining.load(Ordering::Acquire))
    }
}

/// Runs the executor until SIGTERM or Ctrl-C, then drains and leaves the cluster.
pub async fn run(options: ProcessOptions) -> Result<(), ProcessError> {
    let vcores = options.vcores.max(1);
    let metadata = structure_executor_metadata(
        &Arc::new(ExecutorProcessConfig {
            external_host: Some(options.external_host.clone()),
            port: options.flight_port,
            grpc_port: options.grpc_port,
            ..Default::default()
        }),
        vcores as u32,
    );
    let executor_id = metadata.id.clone();
    // Tests and operators find the executor's id in its log by this line (as Ballista's own
    // executor process writes it).
    tracing::info!("Executor id: {executor_id}");
    tracing::info!("{vcores} task slots, work folder {}", options.work_dir);
    let metrics = ExecutorMetrics::new(&executor_id, vcores)?;
    metrics.register_spills(options.spills.clone())?;
    let running_jobs = Arc::new(RunningJobs::default());
    let engine = Arc::new(MeteredEngine::new(
        options.engine,
        metrics.clone(),
        running_jobs.clone(),
    ));
    let pool = pool_policy(options.memory_pool_bytes, vcores)?;
    let base = options.runtime_producer;
    let runtime_producer: RuntimeProducer = {
        let (base, pool) = (base.clone(), pool.clone());
        Arc::new(move |config: &SessionConfig| pool(base(config)?, config, 1))
    };
    let session_config = options.session_config;
    let config_producer = Arc::new(move || session_config.clone());
    let codec: BallistaCodec<
        datafusion_proto::protobuf::LogicalPlanNode,
        datafusion_proto::protobuf::PhysicalPlanNode,
    > = BallistaCodec::new(options.logical_codec, options.physical_codec);
    let executor =
        Arc::new(
            Executor::new(
                metadata,
                &options.work_dir,
                runtime_producer,
                config_producer,
                Default::default(),
                Arc::new(LoggingMetricsCollector::default()),
                vcores,
                engine,
            )
            .with_session_runtime_cache(Some(Arc::new(
                DefaultSessionRuntimeCache::new(base, pool, SESSION_RUNTIME_CACHE),
            ))),
        );

    // Stops the Flight and health servers when the process leaves.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let flight_listener = TcpListener::bind((options.bind_host.as_str(), options.flight_port))
        .await
        .map_err(|source| ProcessError::Serve {
            what: "the Flight port",
            source,
        })?;
    let flight_activity = Arc::new(Activity::default());
    let flight = Tracked {
        inner: FlightServiceServer::new(BallistaFlightService::new(options.work_dir.clone()))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
        activity: flight_activity.clone(),
    };
    let mut flight_server = create_grpc_server(&GrpcServerConfig::default());
    if let Some(tls) = &options.tls {
        flight_server =
            flight_server
                .tls_config(tls.server_tls())
                .map_err(|e| ProcessError::Serve {
                    what: "the Flight port over TLS",
                    source: std::io::Error::other(e),
                })?;
        tracing::info!(
            "Flight service over mutual TLS on {}:{}",
            options.bind_host,
            options.flight_port
        );
    }
    let flight_task = tokio::spawn(
        flight_server
            .add_service(flight)
            .serve_with_incoming_shutdown(
                crate::grpc_incoming(flight_listener),
                stopped(stop_rx.clone()),
            ),
    );

    let endpoint = Endpoint::from_shared(options.scheduler_url.clone())
        .map_err(|e| e.to_string())
        .and_then(|e| (options.endpoint_override)(e).map_err(|e| e.to_string()))
        .map_err(|message| ProcessError::Scheduler {
            url: options.scheduler_url.clone(),
            message,
        })?;
    // A lazy channel: the executor starts (and answers probes, not ready) while the
    // scheduler is still down, and connects once it is up.
    let polls = Arc::new(PollCounter::default());
    let scheduler =
        SchedulerGrpcClient::new(CountingChannel::new(endpoint.connect_lazy(), polls.clone()))
            .max_encoding_message_size(MAX_MESSAGE)
            .max_decoding_message_size(MAX_MESSAGE);

    let readiness = Readiness {
        registered: ExecutorHealth::new(),
        draining: Arc::new(AtomicBool::new(false)),
    };
    let health_address = options.health_listener.local_addr().ok();
    let health_task = tokio::spawn(crate::serve::serve(
        options.health_listener,
        readiness.check(),
        metrics.registry().clone(),
        stopped(stop_rx.clone()),
    ));
    if let Some(address) = health_address {
        tracing::info!(
            "health and metrics on http://{address} (/healthz, /readyz, /metrics, grpc.health.v1)"
        );
    }

    let free_slots = Arc::new(Semaphore::new(vcores));
    let mut poll_task = tokio::spawn(ballista_executor::execution_loop::poll_loop(
        scheduler.clone(),
        executor.clone(),
        codec,
        None,
        Some(free_slots.clone()),
        readiness.registered.clone(),
    ));

    // Stops the tasks of jobs the scheduler cancelled or forgot (see `job_watch`).
    let watch_task = tokio::spawn(crate::job_watch::watch(
        scheduler.clone(),
        running_jobs.clone(),
    ));
    let sweep_task = tokio::spawn(crate::job_watch::sweep(
        scheduler.clone(),
        running_jobs,
        std::path::PathBuf::from(&options.work_dir),
    ));

    let mut flight_task = flight_task;
    let mut health_task = health_task;
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = &mut poll_task => return Err(ProcessError::ServiceEnded("poll loop")),
        _ = &mut flight_task => return Err(ProcessError::ServiceEnded("Flight service")),
        _ = &mut health_task => return Err(ProcessError::ServiceEnded("health service")),
    }

    tracing::info!(
        "draining: no new tasks; waiting up to {} s for {} running task(s)",
        options.shutdown_grace.as_secs(),
        executor.active_task_count()
    );
    readiness.draining.store(true, Ordering::Release);
    let drained = drain(
        &free_slots,
        vcores,
        &polls,
        options.shutdown_grace,
        &executor,
        &readiness.registered,
    )
    .await;
    let mut stop_client = scheduler;
    if drained.is_ok() {
        let deadline = tokio::time::Instant::now() + options.shutdown_grace;
        let readers = wait_for_readers(&mut stop_client, &options.work_dir, &flight_activity);
        if tokio::time::timeout_at(deadline, readers).await.is_err() {
            tracing::warn!("jobs still reading this executor's data when the grace period ended");
        }
    }
    poll_task.abort();
    watch_task.abort();
    sweep_task.abort();
    let stop = stop_client.executor_stopped(ExecutorStoppedParams {
        executor_id: executor_id.clone(),
        reason: "executor shut down (SIGTERM)".to_string(),
    });
    match tokio::time::timeout(STOP_CALL_TIMEOUT, stop).await {
        Ok(Ok(_)) => tracing::info!("executor {executor_id} left the cluster"),
        Ok(Err(e)) => tracing::warn!("the scheduler did not take the stop: {}", e.message()),
        Err(_) => tracing::warn!("the scheduler did not answer the stop in time"),
    }
    let _ = stop_tx.send(true);
    let _ = flight_task.await;
    let _ = health_task.await;
    drained
}

/// Claims every task slot as it frees (so the poll loop asks for no new task), then waits
/// for a poll that reports the last finished task (unless the scheduler is unreachable).
/// Fails if the grace period ends first.
///
/// A poll already on its way when the slots are claimed may come back with a task: Ballista's
/// poll loop then waits for a slot to run it and polls no more. So when no poll is answered
/// within [`REPORT_WAIT`] (longer than the loop's 5 s heartbeat poll), the slots are given back
/// for that task to run, and claimed again once it has finished.
async fn drain(
    free_slots: &Arc<Semaphore>,
    vcores: usize,
    polls: &PollCounter,
    grace: Duration,
    executor: &Executor,
    registered: &ExecutorHealth,
) -> Result<(), ProcessError> {
    let deadline = tokio::time::Instant::now() + grace;
    let all = u32::try_from(vcores).unwrap_or(u32::MAX);
    // With the scheduler unreachable nothing can be reported: leave instead of waiting.
    let unreachable = || async {
        while registered.is_ready() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    loop {
        let held =
            tokio::time::timeout_at(deadline, free_slots.clone().acquire_many_owned(all)).await;
        let Ok(Ok(slots)) = held else {
            return Err(ProcessError::GraceExpired(executor.active_task_count()));
        };
        let last = polls.started();
        tracing::info!("all tasks finished; reporting them to the scheduler");
        let wait_until = deadline.min(tokio::time::Instant::now() + REPORT_WAIT);
        tokio::select! {
            answered = tokio::time::timeout_at(wait_until, polls.answered_after(last)) => {
                if answered.is_ok() {
                    // Kept until the process ends: no slot is offered to the scheduler again.
                    slots.forget();
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(ProcessError::GraceExpired(executor.active_task_count()));
                }
                tracing::info!(
                    "no poll answered since the slots were claimed: the poll loop may hold a task it was given meanwhile; letting it run"
                );
                drop(slots);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            () = unreachable() => {
                tracing::warn!("the scheduler is unreachable: finished tasks may go unreported");
                slots.forget();
                return Ok(());
            }
        }
    }
}

/// A per-task memory pool: each task gets its slots' share of `bytes` (a fair spill pool, see
/// [`crate::memory::bounded_pool`]), or the unbounded pool when no size is set.
fn pool_policy(bytes: Option<u64>, vcores: usize) -> Result<MemoryPoolPolicy, ProcessError> {
    let Some(bytes) = bytes.filter(|b| *b > 0) else {
        return Ok(Arc::new(|base, _config, _slots| Ok(base)));
    };
    let per_slot = usize::try_from(bytes / vcores as u64).unwrap_or(usize::MAX);
    if per_slot == 0 {
        return Err(ProcessError::MemoryPool { bytes, vcores });
    }
    Ok(Arc::new(
        move |base, _config: &SessionConfig, slots: u32| {
            let size = per_slot.saturating_mul(slots.max(1) as usize);
            RuntimeEnvBuilder::from_runtime_env(&base)
                .with_memory_pool(crate::memory::bounded_pool(
                    size as u64,
                    slots.max(1) as usize,
                ))
                .build_arc()
        },
    ))
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
    }
}

/// The default pool: [`crate::memory::DEFAULT_FRACTION`] of the memory this process may use
/// (its cgroup v2 limit, else the host's memory), or `None` when neither can be read.
pub fn default_memory_pool_bytes() -> Option<u64> {
    crate::memory::default_limit()
}

/// Waits until every job whose data this executor holds has ended on the scheduler (or is
/// unknown to it), then until Flight has been idle for [`FLIGHT_QUIET`].
async fn wait_for_readers(
    scheduler: &mut SchedulerGrpcClient<CountingChannel>,
    work_dir: &str,
    flight: &Activity,
) {
    let jobs: Vec<String> = std::fs::read_dir(work_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for job_id in jobs {
        loop {
            let answer = scheduler
                .get_job_status(GetJobStatusParams {
                    job_id: job_id.clone(),
                })
                .await;
            let running = matches!(
                answer
                    .ok()
                    .and_then(|a| a.into_inner().status)
                    .and_then(|s| s.status),
                Some(job_status::Status::Queued(_) | job_status::Status::Running(_))
            );
            if !running {
                break;
            }
            tokio::time::sleep(JOB_STATUS_INTERVAL).await;
        }
    }
    tracing::info!("no running job needs this executor's data; waiting for Flight to go quiet");
    // The quiet period starts now: a job's client fetches its results only after it ended.
    flight.touch();
    loop {
        let idle = flight.idle_for();
        if idle >= FLIGHT_QUIET {
            return;
        }
        tokio::time::sleep(FLIGHT_QUIET - idle).await;
    }
}

/// When a service last received a request.
#[derive(Debug)]
struct Activity {
    since: std::time::Instant,
    last_request_ms: std::sync::atomic::AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            since: std::time::Instant::now(),
            last_request_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Activity {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_request_ms.store(self.now_ms(), Ordering::Release);
    }

    fn idle_for(&self) -> Duration {
        let last = self.last_request_ms.load(Ordering::Acquire);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }
}

/// A gRPC service whose requests are recorded in an [`Activity`].
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Tracked<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tonic::codegen::Service<tonic::codegen::http::Request<B>> for Tracked<S>
where
    S: tonic::codegen::Service<tonic::codegen::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        self.activity.touch();
        self.inner.call(request)
    }
}
