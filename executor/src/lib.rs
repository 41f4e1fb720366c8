//! Sluice's Ballista executor.
//!
//! [`start_in_process`] runs an executor inside the caller's process (the embedded cluster of
//! `sluice run`), sharing the caller's runtime environment and object stores. Unlike
//! Ballista's standalone helper it keeps its work folder (shuffle files) alive while it runs
//! and removes it when dropped. The `sluice-executor` binary runs one as its own process
//! ([`process`]), with health and metrics endpoints ([`serve`], [`metrics`]), a graceful
//! shutdown, and a probe for container health checks ([`probe`]).

pub mod job_watch;
pub mod memory;
pub mod metrics;
pub mod polls;
pub mod probe;
pub mod process;
pub mod serve;
pub mod stop;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::ExecutorRegistration;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::scheduler::{
    ExecutorOperatingSystemSpecification, ExecutorSpecification,
};
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use ballista_core::{BALLISTA_PROTOCOL_VERSION, ConfigProducer, RuntimeProducer};
use ballista_executor::executor::Executor;
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::health::ExecutorHealth;
use ballista_executor::metrics::LoggingMetricsCollector;
use datafusion::execution::SessionState;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;

/// Errors starting an executor.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The work folder could not be created.
    #[error("cannot create the executor's work folder: {0}")]
    WorkDir(#[source] std::io::Error),
    /// The Flight port could not be bound.
    #[error("cannot bind the executor's Flight port: {0}")]
    Bind(#[source] std::io::Error),
    /// The work folder path is not UTF-8.
    #[error("the work folder path {0} is not valid UTF-8")]
    Path(String),
}

/// The connections of a gRPC server bound to `listener`, with `TCP_NODELAY` and Ballista's
/// TCP keepalive set on each.
///
/// tonic applies its builder's `tcp_nodelay` only to sockets it binds itself, so serving a
/// pre-bound listener as a plain stream leaves Nagle's algorithm on: a reply sent in more
/// than one write then waits for the peer's delayed ACK, about 40 ms on Linux. Every task
/// Ballista hands to a polling executor paid that.
pub fn grpc_incoming(listener: TcpListener) -> TcpIncoming {
    let config = GrpcServerConfig::default();
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(std::time::Duration::from_secs(
            config.tcp_keepalive_seconds,
        )))
}

/// An executor running inside this process. Dropping it removes its work folder.
pub struct InProcessExecutor {
    work_dir: tempfile::TempDir,
    address: SocketAddr,
    waker: tokio::task::JoinHandle<()>,
}

impl Drop for InProcessExecutor {
    fn drop(&mut self) {
        self.waker.abort();
    }
}

impl InProcessExecutor {
    /// The executor's Flight address (shuffle reads).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The folder holding its shuffle files.
    pub fn work_dir(&self) -> &Path {
        self.work_dir.path()
    }
}

/// Starts an executor with `vcores` task slots that pulls tasks from `scheduler`, runs them
/// with `state`'s runtime (object stores, memory pool) and serves shuffle data over Flight on
/// a loopback port chosen by the OS.
///
/// It polls the scheduler at once when `work_available` is notified (wire it to the
/// scheduler's `on_work_available`) and when one of its tasks finishes (so the scheduler
/// hears of it without waiting for the next idle poll); otherwise once a second.
pub async fn start_in_process(
    scheduler: SchedulerGrpcClient<Channel>,
    vcores: usize,
    state: &SessionState,
    work_available: Arc<Notify>,
) -> Result<InProcessExecutor, ExecutorError> {
    let work_dir = tempfile::Builder::new()
        .prefix("sluice-executor-")
        .tempdir()
        .map_err(ExecutorError::WorkDir)?;
    let work_path = work_dir
        .path()
        .to_str()
        .ok_or_else(|| ExecutorError::Path(work_dir.path().display().to_string()))?
        .to_string();

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(ExecutorError::Bind)?;
    let address = listener.local_addr().map_err(ExecutorError::Bind)?;

    let registration = ExecutorRegistration {
        id: ballista_core::ids::new_instance_id(),
        host: Some("127.0.0.1".to_string()),
        port: u32::from(address.port()),
        grpc_port: 0,
        specification: Some(
            ExecutorSpecification::default()
                .with_vcores(vcores as u32)
                .into(),
        ),
        os_info: Some(ExecutorOperatingSystemSpecification::default().into()),
        ballista_protocol_version: BALLISTA_PROTOCOL_VERSION,
    };

    let config = state.config().clone().upgrade_for_ballista();
    let max_message = config.ballista_grpc_client_max_message_size();
    let runtime = state.runtime_env().clone();
    let config_producer: ConfigProducer = Arc::new(move || config.clone());
    let runtime_producer: RuntimeProducer = Arc::new(move |_| Ok(runtime.clone()));
    let logical = state.config().ballista_logical_extension_codec();
    let physical = state.config().ballista_physical_extension_codec();
    let codec: BallistaCodec<
        datafusion_proto::protobuf::LogicalPlanNode,
        datafusion_proto::protobuf::PhysicalPlanNode,
    > = BallistaCodec::new(logical, physical);

    let executor = Arc::new(Executor::with_default_execution_engine(
        registration,
        &work_path,
        runtime_producer,
        config_producer,
        Arc::new(state.into()),
        Arc::new(LoggingMetricsCollector::default()),
        vcores,
    ));

    let flight = FlightServiceServer::new(BallistaFlightService::new(work_path))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    tokio::spawn(
        create_grpc_server(&GrpcServerConfig::default())
            .add_service(flight)
            .serve_with_incoming(grpc_incoming(listener)),
    );
    let free_slots = Arc::new(Semaphore::new(vcores.max(1)));
    tokio::spawn(ballista_executor::execution_loop::poll_loop(
        scheduler,
        executor,
        codec,
        Some(work_available.clone()),
        Some(free_slots.clone()),
        ExecutorHealth::new(),
    ));
    let waker = tokio::spawn(wake_on_finished_tasks(free_slots, work_available));
    Ok(InProcessExecutor {
        work_dir,
        address,
        waker,
    })
}

/// Notifies `poll_now` whenever a task slot is freed. The poll loop frees a task's slot only
/// after queueing its status, so the poll this wakes reports the finished task: without it
/// an idle loop would report it on its next timed poll.
async fn wake_on_finished_tasks(free_slots: Arc<Semaphore>, poll_now: Arc<Notify>) {
    let mut free = free_slots.available_permits();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = free_slots.available_permits();
        if now > free {
            poll_now.notify_one();
        }
        free = now;
    }
}
