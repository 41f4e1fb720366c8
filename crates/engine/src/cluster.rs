//! The Ballista cluster a job runs on: an embedded one (scheduler and executor in this
//! process) or a scheduler whose service the caller serves to executor processes.
//!
//! [`Engine::embedded`] starts Ballista's scheduler and one executor inside this process,
//! on loopback ports chosen by the OS (Ballista's standalone mode, built from its public
//! pieces so that Sluice keeps a handle on the scheduler's state for progress and metrics).
//! Planning goes through the same [`SessionContext`] API as a remote cluster; a job run on
//! the embedded engine then executes its plan in this process without Ballista's stages
//! (`crate::in_process`), while SQL queries still go through the in-process executor.

use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::metrics::default_metrics_collector;
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;
use sluice_writer::{SluiceLogicalCodec, SluicePhysicalCodec};
use tokio::net::TcpListener;

use crate::error::{BoxError, EngineError, start};
use crate::introspection::{Scheduler, SchedulerView};
use crate::long_poll::{LongPollScheduler, WorkSignal};
use crate::session::{
    MemoryLimit, SpillCounter, collect_build_sides_under_limit, fit_to_memory, job_session_state,
    query_session, session_config,
};

/// Settings of the Ballista scheduler inside Sluice.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Task slots per executor and target partitions of plans.
    pub partitions: usize,
    /// Seconds without a heartbeat after which an executor is declared dead and its tasks
    /// re-run elsewhere.
    pub executor_timeout_seconds: u64,
    /// Whether the scheduler pushes tasks to executors (separate processes) or executors
    /// pull them (the in-process executor of the embedded engine).
    pub push_tasks: bool,
    /// Notified when the scheduler has new tasks to hand out (wakes an in-process
    /// executor's poll loop instead of letting it wait for its next timed poll).
    pub work_available: Option<Arc<tokio::sync::Notify>>,
    /// The longest the scheduler holds the poll of an executor running nothing, waiting for
    /// work to answer it with (see [`crate::long_poll`]).
    pub poll_hold: std::time::Duration,
    /// The cluster's mutual TLS: every connection to Ballista's services (the scheduler's,
    /// the executors' Flight ports) presents this identity. The caller serves Ballista's
    /// service with its server config.
    pub cluster_tls: Option<sluice_cluster_tls::ClusterTls>,
    /// Memory this process's DataFusion operators (joins, sorts, aggregations, repartitions)
    /// may hold together; beyond it they spill to disk, and hash joins whose build side is
    /// estimated above a quarter of it are planned as sort-merge joins (see
    /// [`crate::session::SpillableJoins`]). On a cluster the executors enforce their own
    /// limit; the scheduler's plans joins with this one.
    pub memory_limit: MemoryLimit,
}

impl EngineOptions {
    /// Defaults for `partitions` slots: executors expire after 30 s of silence; the memory
    /// limit is [`crate::session::DEFAULT_FRACTION`] of the memory this process may use (its
    /// cgroup v2 `memory.max`, else the host's memory).
    pub fn new(partitions: usize) -> Self {
        Self {
            partitions: partitions.max(1),
            executor_timeout_seconds: 30,
            push_tasks: false,
            work_available: None,
            poll_hold: crate::long_poll::HOLD,
            cluster_tls: None,
            memory_limit: MemoryLimit::or_default(None),
        }
    }
}

/// Ballista's scheduler gRPC service, to be served on the port executors connect to.
/// Idle executors' polls are held until there is work (see [`crate::long_poll`]).
pub type BallistaService = SchedulerGrpcServer<LongPollScheduler>;

/// A Ballista cluster and a session on it.
pub struct Engine {
    ctx: SessionContext,
    scheduler: SchedulerView,
    memory_limit: MemoryLimit,
    spills: Arc<SpillCounter>,
    /// The in-process executor of an embedded engine (kept alive with the engine).
    _executor: Option<sluice_executor::InProcessExecutor>,
}

impl Engine {
    /// Starts a scheduler and an executor with `partitions` task slots in this process,
    /// with the default memory limit.
    pub async fn embedded(partitions: usize) -> Result<Self, EngineError> {
        Self::embedded_with(EngineOptions::new(partitions)).await
    }

    /// Starts a scheduler and an executor with `options.partitions` task slots and
    /// `options.memory_limit` (shared by every task of the process) in this process.
    pub async fn embedded_with(options: EngineOptions) -> Result<Self, EngineError> {
        let partitions = options.partitions;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(start("binding the scheduler's port"))?;
        let addr = listener
            .local_addr()
            .map_err(start("binding the scheduler's port"))?;
        let url = format!("http://127.0.0.1:{}", addr.port());
        let work_available = Arc::new(tokio::sync::Notify::new());
        let options = EngineOptions {
            push_tasks: false,
            work_available: Some(work_available.clone()),
            ..options
        };
        let (mut engine, service) = Self::for_service_with(options, &url, true).await?;
        tokio::spawn(
            create_grpc_server(&GrpcServerConfig::default())
                .add_service(service)
                .serve_with_incoming(sluice_executor::grpc_incoming(listener)),
        );
        let client = connect(&url)
            .await
            .map_err(start("connecting to the scheduler"))?;
        let state = engine.ctx.state();
        let executor =
            sluice_executor::start_in_process(client, partitions, &state, work_available)
                .await
                .map_err(start("starting the executor"))?;
        engine._executor = Some(executor);
        Ok(engine)
    }

    /// A scheduler whose Ballista service the caller serves at `own_url` (the URL executors
    /// and this engine's own session reach it at). Executors are separate processes.
    pub async fn for_service(
        options: EngineOptions,
        own_url: &str,
    ) -> Result<(Self, BallistaService), EngineError> {
        Self::for_service_with(options, own_url, false).await
    }

    /// [`Self::for_service`]; `in_process` when this process also runs the plans (the
    /// embedded engine): then one hash table serves every task, and build sides are
    /// collected up to a share of the memory limit, not a share per task slot (see
    /// [`collect_build_sides_under_limit`]).
    async fn for_service_with(
        options: EngineOptions,
        own_url: &str,
        in_process: bool,
    ) -> Result<(Self, BallistaService), EngineError> {
        let mut config = session_config(options.partitions)?;
        fit_to_memory(&mut config, options.memory_limit, options.partitions);
        config = collect_build_sides_under_limit(
            config,
            options.memory_limit,
            options.partitions,
            in_process,
        );
        // Time limits on every connection to Ballista's services (a paused executor must
        // not hang a result fetch), and with a cluster secret its mutual TLS.
        let cluster_endpoint = sluice_cluster_tls::endpoint_override(options.cluster_tls.clone());
        config = config
            .with_ballista_use_tls(options.cluster_tls.is_some())
            .with_ballista_override_create_grpc_client_endpoint(cluster_endpoint.clone());
        let spills = Arc::new(SpillCounter::default());
        tracing::info!(
            "memory limit of DataFusion's operators: {}",
            options.memory_limit
        );
        let state = job_session_state(
            config.clone(),
            options.memory_limit,
            options.partitions,
            spills.clone(),
        )?;

        let builder_state = state.clone();
        let session_builder = Arc::new(move |_: SessionConfig| Ok(builder_state.clone()));
        let producer_config = config.clone();
        let config_producer = Arc::new(move || producer_config.clone());
        // Ballista names the scheduler by host:port; executors add the scheme themselves.
        let endpoint = own_url
            .split_once("://")
            .map_or(own_url, |(_, rest)| rest)
            .trim_end_matches('/')
            .to_string();
        let cluster =
            BallistaCluster::new_memory(endpoint.clone(), session_builder, config_producer);
        let policy = if options.push_tasks {
            ballista_core::config::TaskSchedulingPolicy::PushStaged
        } else {
            ballista_core::config::TaskSchedulingPolicy::PullStaged
        };
        let mut scheduler_config = SchedulerConfig::default().with_scheduler_policy(policy);
        scheduler_config.executor_timeout_seconds = options.executor_timeout_seconds;
        scheduler_config.expire_dead_executor_interval_seconds =
            (options.executor_timeout_seconds / 3).clamp(1, 15);
        scheduler_config.scheduler_id = endpoint.clone();
        scheduler_config = scheduler_config
            .with_use_tls(options.cluster_tls.is_some())
            .with_override_create_grpc_client_endpoint(cluster_endpoint);
        // New work wakes the polls held by `LongPollScheduler` and the in-process executor.
        let work = Arc::new(WorkSignal::default());
        let signal = work.clone();
        let in_process = options.work_available.clone();
        scheduler_config = scheduler_config.with_on_work_available(Arc::new(move |_| {
            signal.signal();
            if let Some(notify) = &in_process {
                notify.notify_one();
            }
        }));
        let mut scheduler: Scheduler = SchedulerServer::new(
            endpoint,
            cluster.clone(),
            BallistaCodec::new(
                Arc::new(SluiceLogicalCodec::default()),
                Arc::new(SluicePhysicalCodec::default()),
            ),
            Arc::new(scheduler_config),
            default_metrics_collector().map_err(start("creating the metrics collector"))?,
        );
        scheduler
            .init()
            .await
            .map_err(start("initialising the scheduler"))?;
        let max = config.ballista_grpc_client_max_message_size();
        let service = SchedulerGrpcServer::new(LongPollScheduler::new(
            scheduler.clone(),
            work,
            options.poll_hold,
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let ctx = SessionContext::remote_with_state(own_url, state)
            .await
            .map_err(start("connecting the session to the scheduler"))?;
        Ok((
            Self {
                ctx,
                scheduler: SchedulerView::new(scheduler, cluster),
                memory_limit: options.memory_limit,
                spills,
                _executor: None,
            },
            service,
        ))
    }

    /// The session jobs are planned and run in.
    pub fn ctx(&self) -> &SessionContext {
        &self.ctx
    }

    /// Whether the cluster is this process alone (scheduler and executor in it): then work
    /// that Ballista would only hand back to this process may run here directly.
    pub fn is_embedded(&self) -> bool {
        self._executor.is_some()
    }

    /// The memory limit of this process's DataFusion operators.
    pub fn memory_limit(&self) -> MemoryLimit {
        self.memory_limit
    }

    /// Spill files and bytes this process's operators wrote (the embedded executor's tasks
    /// included) since the engine started.
    pub fn spills(&self) -> &SpillCounter {
        &self.spills
    }

    /// What the engine can see of, and ask, Ballista's scheduler: jobs, stages, executors.
    pub fn scheduler(&self) -> &SchedulerView {
        &self.scheduler
    }

    /// A session for one SQL query: the engine's settings and cluster, an empty `catalog`
    /// (the default catalog, schema `default`) for the caller to fill, and Ballista jobs
    /// named after `query_id` so that [`SchedulerView::cancel_query`] can find them.
    pub fn query_context(&self, catalog: &str, query_id: &str) -> SessionContext {
        query_session(&self.ctx, catalog, query_id)
    }
}

/// The lake finds its object store in the engine's session (the stores its tasks use).
impl sluice_lake::StoreSource for Engine {
    fn store_for(&self, url: &url::Url) -> Result<Arc<dyn ObjectStore>, BoxError> {
        let root = format!("{}://{}/", url.scheme(), url.host_str().unwrap_or(""));
        let os_url = ObjectStoreUrl::parse(&root)?;
        Ok(self.ctx.runtime_env().object_store(&os_url)?)
    }
}

/// Connects to the scheduler at `url`, retrying for about a second while it starts.
async fn connect(
    url: &str,
) -> Result<SchedulerGrpcClient<tonic::transport::Channel>, tonic::transport::Error> {
    let mut attempt = 0;
    loop {
        match SchedulerGrpcClient::connect(url.to_string()).await {
            Ok(c) => return Ok(c),
            Err(e) if attempt >= 50 => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}
