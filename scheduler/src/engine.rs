//! The Ballista cluster a job runs on, and what the scheduler can tell about its jobs.
//!
//! [`Engine::embedded`] starts Ballista's scheduler and one executor inside this process,
//! on loopback ports chosen by the OS (Ballista's standalone mode, built from its public
//! pieces so that Sluice keeps a handle on the scheduler's state for progress and metrics).
//! Planning and execution go through the same [`SessionContext`] API as a remote cluster.

use std::collections::HashSet;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_core::serde::protobuf::task_status;
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::metrics::default_metrics_collector;
use ballista_scheduler::scheduler_server::SchedulerServer;
use ballista_scheduler::state::execution_stage::ExecutionStage;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use sluice_writer::{SluiceLogicalCodec, SluicePhysicalCodec, SluiceQueryPlanner};
use tokio::net::TcpListener;

use crate::size_estimates::EstimateScanSizes;

/// A boxed error of any kind, kept as the source of an [`EngineError`].
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors starting or talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Ballista failed to start.
    #[error("cannot start the embedded Ballista cluster: {source}")]
    Start {
        /// The step that failed, e.g. `binding the scheduler's port`.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading the scheduler's state failed.
    #[error("cannot read the scheduler's job state: {0}")]
    State(#[source] ballista_core::error::BallistaError),
    /// An environment variable sets an option to a value it cannot take.
    #[error("{variable}: {}", sluice_planner::clean_message(.source))]
    Setting {
        /// The variable, e.g. `DATAFUSION_EXECUTION_BATCH_SIZE`.
        variable: String,
        /// Why the value was refused.
        #[source]
        source: datafusion::error::DataFusionError,
    },
}

/// Maps an error of the start-up step `what` to [`EngineError::Start`].
fn start<E: Into<BoxError>>(what: &'static str) -> impl FnOnce(E) -> EngineError {
    move |e| EngineError::Start {
        what,
        source: e.into(),
    }
}

/// Where a stage is, as Ballista's scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    /// Its inputs are not ready yet.
    Unresolved,
    /// Ready to run, no task started.
    Resolved,
    /// Tasks are running.
    Running,
    /// Every task finished.
    Successful,
    /// It failed.
    Failed,
}

impl StageState {
    /// Whether the stage has started (a span or a progress bar belongs to it).
    pub fn started(self) -> bool {
        !matches!(self, Self::Unresolved | Self::Resolved)
    }

    /// Lower-case name, as in logs and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unresolved => "unresolved",
            Self::Resolved => "resolved",
            Self::Running => "running",
            Self::Successful => "successful",
            Self::Failed => "failed",
        }
    }
}

/// Where a stage is, as progress displays show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressState {
    /// Not started.
    #[default]
    Waiting,
    /// Running.
    Running,
    /// Finished.
    Done,
    /// Failed.
    Failed,
}

impl ProgressState {
    /// The name the job service sends (`waiting`, `running`, `done`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl From<StageState> for ProgressState {
    fn from(state: StageState) -> Self {
        match state {
            StageState::Successful => Self::Done,
            StageState::Running => Self::Running,
            StageState::Failed => Self::Failed,
            StageState::Unresolved | StageState::Resolved => Self::Waiting,
        }
    }
}

/// How far one stage has got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageProgress {
    /// Stage id.
    pub stage_id: usize,
    /// Waiting, running, done or failed.
    pub state: ProgressState,
    /// Tasks of the stage (0 while its inputs are not ready).
    pub tasks: usize,
    /// Tasks finished.
    pub tasks_done: usize,
}

/// How far a job has got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobProgress {
    /// Stages in the job.
    pub stages: usize,
    /// Stages finished.
    pub stages_done: usize,
    /// Tasks of the stages known so far.
    pub tasks: usize,
    /// Tasks finished.
    pub tasks_done: usize,
    /// Every stage, by id.
    pub stage_list: Vec<StageProgress>,
}

impl JobProgress {
    /// Progress summed over the stages of one snapshot, with one entry per stage.
    pub fn from_stages(snapshot: &[StageSnapshot]) -> Self {
        let mut p = Self::default();
        let mut stages: Vec<&StageSnapshot> = snapshot.iter().collect();
        stages.sort_by_key(|s| (s.job_id.clone(), s.stage_id));
        for s in stages {
            let state = ProgressState::from(s.state);
            p.stages += 1;
            p.stages_done += usize::from(state == ProgressState::Done);
            p.tasks += s.partitions;
            p.tasks_done += s.partitions_done;
            p.stage_list.push(StageProgress {
                stage_id: s.stage_id,
                state,
                tasks: s.partitions,
                tasks_done: s.partitions_done,
            });
        }
        p
    }
}

/// One stage of a running job, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSnapshot {
    /// The Ballista job.
    pub job_id: String,
    /// Stage id within the job.
    pub stage_id: usize,
    /// Where the stage is.
    pub state: StageState,
    /// Tasks (input partitions) of the stage.
    pub partitions: usize,
    /// Input partitions finished.
    pub partitions_done: usize,
    /// Durations in milliseconds of the tasks finished so far, by task id.
    pub finished_tasks: Vec<(usize, u64)>,
}

/// Rows that a finished job's file scans produced, per scanned file URL prefix.
#[derive(Debug, Clone, Default)]
pub struct ScanRows {
    /// (first file URL of a scan, rows the scan produced).
    pub scans: Vec<(Vec<String>, u64)>,
    /// Stages the jobs ran.
    pub stages: usize,
    /// Tasks of those stages (a task may run several of a stage's partitions).
    pub tasks: usize,
    /// Milliseconds from a job's submission to Ballista to its first task running (the
    /// largest over the jobs).
    pub first_task_ms: Option<u64>,
}

type Scheduler = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

/// Prefix of the Ballista job names of SQL queries, which job runs do not count as theirs.
pub const QUERY_JOB_PREFIX: &str = "sluice-query-";

fn is_query_job(name: &str) -> bool {
    name.starts_with(QUERY_JOB_PREFIX)
}

/// A Ballista cluster and a session on it.
pub struct Engine {
    ctx: SessionContext,
    scheduler: Scheduler,
    cluster: BallistaCluster,
    /// The in-process executor of an embedded engine (kept alive with the engine).
    _executor: Option<sluice_executor::InProcessExecutor>,
}

/// Bytes a hash join's probe side may read ahead while its build side is built, per
/// partition and join (see [`session_config`]).
pub const HASH_JOIN_BUFFERING_BYTES: usize = 32 * 1024 * 1024;

/// Session settings shared by the client, the scheduler and the executors: Ballista's,
/// with hash joins, probe-side buffering and chunk-level Parquet statistics, then any
/// `DATAFUSION_*` / `BALLISTA_*` environment variable applied
/// (`DATAFUSION_EXECUTION_BATCH_SIZE=16384` sets `datafusion.execution.batch_size`).
pub fn session_config(partitions: usize) -> Result<SessionConfig, EngineError> {
    let mut config = SessionConfig::new_with_ballista()
        .with_target_partitions(partitions)
        .with_ballista_standalone_parallelism(partitions)
        // Ballista 55's adaptive planner does not re-run a stage whose executor died after
        // rolling it back (the job hangs); the static planner recovers.
        .with_ballista_adaptive_query_planner(false)
        // Carry Sluice's parallel Parquet write through plan serialization.
        .with_ballista_logical_extension_codec(Arc::new(SluiceLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(SluicePhysicalCodec::default()))
        .with_information_schema(true);
    // Ballista turns hash joins off; its sort-merge joins sort both sides of every join.
    // Hash joins are what DataFusion itself uses, and the static planner supports them.
    config.options_mut().optimizer.prefer_hash_join = true;
    // Parquet statistics per column chunk, not per page: as DuckDB writes them. Page-level
    // statistics (the column index) cost about 9% of the CPU of the x100 benchmark job;
    // DATAFUSION_EXECUTION_PARQUET_STATISTICS_ENABLED=page brings them back.
    config.options_mut().execution.parquet.statistics_enabled = Some("chunk".to_string());
    // A hash join reads nothing from its probe side until one thread has built its hash
    // table (0.35 s for the two million tracks of the x100 benchmark), and the stage's
    // other task slots wait with it. DataFusion's hash join buffering (a BufferExec on the
    // probe side) reads ahead meanwhile, up to this many bytes per partition and join:
    // -10 to -15% wall time at x100 for +70 MiB peak memory. It also starts the probe side
    // before a dynamic filter from the build side exists, so Parquet probe sides prune
    // less; DATAFUSION_EXECUTION_HASH_JOIN_BUFFERING_CAPACITY=0 turns it off.
    config.options_mut().execution.hash_join_buffering_capacity = HASH_JOIN_BUFFERING_BYTES;
    apply_env_overrides(&mut config, |name| std::env::var(name).ok())?;
    Ok(config)
}

/// Sets every option whose environment variable (the key upper-cased, `.` → `_`) `lookup`
/// finds.
fn apply_env_overrides(
    config: &mut SessionConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(), EngineError> {
    let keys: Vec<String> = config
        .options()
        .entries()
        .into_iter()
        .map(|e| e.key)
        .collect();
    for key in keys {
        let variable = key.to_uppercase().replace('.', "_");
        if let Some(value) = lookup(&variable) {
            config
                .options_mut()
                .set(&key, &value)
                .map_err(|source| EngineError::Setting {
                    variable: variable.clone(),
                    source,
                })?;
            tracing::info!(%key, %value, "setting from {variable}");
        }
    }
    Ok(())
}

/// DataFusion's physical optimizer rules, after Sluice's size estimates for scans without
/// statistics (so that join selection and Ballista's broadcast joins see them).
fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> =
        vec![Arc::new(EstimateScanSizes)];
    rules.extend(PhysicalOptimizer::new().rules);
    rules
}

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
    /// The cluster's mutual TLS: every connection to Ballista's services (the scheduler's,
    /// the executors' Flight ports) presents this identity. The caller serves Ballista's
    /// service with its server config.
    pub cluster_tls: Option<sluice_cluster_tls::ClusterTls>,
}

impl EngineOptions {
    /// Defaults for `partitions` slots: executors expire after 30 s of silence.
    pub fn new(partitions: usize) -> Self {
        Self {
            partitions: partitions.max(1),
            executor_timeout_seconds: 30,
            push_tasks: false,
            work_available: None,
            cluster_tls: None,
        }
    }
}

/// Ballista's scheduler gRPC service, to be served on the port executors connect to.
pub type BallistaService = SchedulerGrpcServer<Scheduler>;

impl Engine {
    /// Starts a scheduler and an executor with `partitions` task slots in this process.
    pub async fn embedded(partitions: usize) -> Result<Self, EngineError> {
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
            ..EngineOptions::new(partitions)
        };
        let (mut engine, service) = Self::for_service(options, &url).await?;
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
        let mut config = session_config(options.partitions)?;
        // Time limits on every connection to Ballista's services (a paused executor must
        // not hang a result fetch), and with a cluster secret its mutual TLS.
        let cluster_endpoint = sluice_cluster_tls::endpoint_override(options.cluster_tls.clone());
        config = config
            .with_ballista_use_tls(options.cluster_tls.is_some())
            .with_ballista_override_create_grpc_client_endpoint(cluster_endpoint.clone());
        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(sluice_storage::SluiceObjectStores::new())
            .build_arc()
            .map_err(start("building the runtime"))?;
        let state: SessionState = SessionStateBuilder::new()
            .with_default_features()
            .with_config(config.clone())
            .with_runtime_env(runtime)
            .with_query_planner(Arc::new(SluiceQueryPlanner))
            .with_physical_optimizer_rules(physical_optimizer_rules())
            .build();

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
        if let Some(notify) = options.work_available.clone() {
            scheduler_config =
                scheduler_config.with_on_work_available(Arc::new(move |_| notify.notify_one()));
        }
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
        let service = SchedulerGrpcServer::new(scheduler.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let ctx = SessionContext::remote_with_state(own_url, state)
            .await
            .map_err(start("connecting the session to the scheduler"))?;
        Ok((
            Self {
                ctx,
                scheduler,
                cluster,
                _executor: None,
            },
            service,
        ))
    }

    /// Asks the scheduler to cancel these Ballista jobs.
    pub async fn cancel_jobs(&self, job_ids: &[String]) {
        for id in job_ids {
            if let Err(e) = self.scheduler.cancel_job(id.as_str().into()).await {
                tracing::warn!(job = %id, error = %e, "cannot cancel the Ballista job");
            }
        }
    }

    /// The session jobs are planned and run in.
    pub fn ctx(&self) -> &SessionContext {
        &self.ctx
    }

    /// Ids of every job the scheduler knows.
    pub async fn job_ids(&self) -> Result<HashSet<String>, EngineError> {
        let jobs = self
            .scheduler
            .state
            .task_manager
            .get_all_jobs()
            .await
            .map_err(EngineError::State)?;
        Ok(jobs
            .into_iter()
            .filter(|j| !is_query_job(&j.job_name))
            .map(|j| j.job_id.to_string())
            .collect())
    }

    /// Ids of the executors registered now.
    pub async fn executor_ids(&self) -> HashSet<String> {
        match self
            .scheduler
            .state
            .executor_manager
            .get_executors_state()
            .await
        {
            Ok(executors) => executors.into_iter().map(|(m, ..)| m.id).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the registered executors");
                HashSet::new()
            }
        }
    }

    /// Ids of the Ballista jobs of job runs (not of queries) running now.
    pub async fn running_job_ids(&self) -> HashSet<String> {
        self.running_jobs(|name| !is_query_job(name)).await
    }

    /// Ids of the running Ballista jobs whose name passes `keep`.
    async fn running_jobs(&self, keep: impl Fn(&str) -> bool) -> HashSet<String> {
        let running = self.scheduler.state.task_manager.get_running_job_cache();
        let mut out = HashSet::new();
        for (id, info) in running.iter() {
            if keep(info.execution_graph.read().await.job_name()) {
                out.insert(id.to_string());
            }
        }
        out
    }

    /// A session for one SQL query: the engine's settings and cluster, an empty `catalog`
    /// (the default catalog, schema `default`) for the caller to fill, and Ballista jobs
    /// named after `query_id` so that [`Engine::cancel_query`] can find them.
    pub fn query_context(&self, catalog: &str, query_id: &str) -> SessionContext {
        use datafusion::catalog::{
            CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
        };
        let state = self.ctx.state();
        let mut config = state
            .config()
            .clone()
            .with_ballista_job_name(&format!("{QUERY_JOB_PREFIX}{query_id}"));
        config.options_mut().catalog.default_catalog = catalog.to_string();
        config.options_mut().catalog.default_schema = "default".to_string();
        let catalogs = Arc::new(MemoryCatalogProviderList::new());
        catalogs.register_catalog(catalog.to_string(), Arc::new(MemoryCatalogProvider::new()));
        let state = SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .with_catalog_list(catalogs)
            .with_session_id(uuid::Uuid::now_v7().to_string())
            .build();
        SessionContext::new_with_state(state)
    }

    /// Cancels the Ballista jobs of the query `query_id` (see [`Engine::query_context`]).
    pub async fn cancel_query(&self, query_id: &str) {
        let name = format!("{QUERY_JOB_PREFIX}{query_id}");
        let jobs: Vec<String> = self.running_jobs(|n| n == name).await.into_iter().collect();
        self.cancel_jobs(&jobs).await;
    }

    /// The stages of the jobs running now.
    pub async fn running_stages(&self) -> Vec<StageSnapshot> {
        let mut out = Vec::new();
        let running = self.scheduler.state.task_manager.get_running_job_cache();
        for (job_id, info) in running.iter() {
            let graph = info.execution_graph.read().await;
            if is_query_job(graph.job_name()) {
                continue;
            }
            out.extend(stage_snapshots(job_id.as_ref(), graph.stages()));
        }
        out
    }

    /// The stages of the finished jobs `job_ids`, as they ended (a job leaves the running
    /// jobs when it ends, so [`Engine::running_stages`] no longer shows its last tasks).
    pub async fn finished_stages(&self, job_ids: &[String]) -> Vec<StageSnapshot> {
        let mut out = Vec::new();
        let job_state = self.cluster.job_state();
        for id in job_ids {
            match job_state.get_execution_graph(&id.as_str().into()).await {
                Ok(Some(graph)) => out.extend(stage_snapshots(id, graph.stages())),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "cannot read a finished job's stages")
                }
            }
        }
        out
    }

    /// Rows produced by every file scan of the finished jobs `job_ids`.
    pub async fn scan_rows(&self, job_ids: &[String]) -> ScanRows {
        let mut out = ScanRows::default();
        let job_state = self.cluster.job_state();
        for id in job_ids {
            let Ok(Some(graph)) = job_state.get_execution_graph(&id.as_str().into()).await else {
                continue;
            };
            let first_task = graph
                .stages()
                .values()
                .filter_map(|stage| stage.task_infos())
                .flatten()
                .map(|t| t.start_exec_time)
                .min();
            if let Some(first) = first_task {
                let wait = u64::try_from(first)
                    .unwrap_or(u64::MAX)
                    .saturating_sub(graph.start_time());
                out.first_task_ms = Some(out.first_task_ms.map_or(wait, |w| w.max(wait)));
            }
            for stage in graph.stages().values() {
                if let ExecutionStage::Successful(s) = stage {
                    out.stages += 1;
                    // Ballista 55 may run several partitions of a stage as one task.
                    let tasks: std::collections::HashSet<usize> =
                        s.task_infos.iter().map(|t| t.task_id).collect();
                    out.tasks += tasks.len();
                    collect_scans(s.plan.as_ref(), &s.stage_metrics, &mut out);
                }
            }
        }
        out
    }
}

/// One [`StageSnapshot`] per stage of job `job_id`. A task that ran several of a stage's
/// partitions is listed once.
fn stage_snapshots(
    job_id: &str,
    stages: &std::collections::HashMap<usize, ExecutionStage>,
) -> Vec<StageSnapshot> {
    let mut out = Vec::with_capacity(stages.len());
    for (stage_id, stage) in stages {
        let (state, partitions, tasks) = match stage {
            ExecutionStage::UnResolved(_) => (StageState::Unresolved, 0, None),
            ExecutionStage::Resolved(s) => (StageState::Resolved, s.partitions, None),
            ExecutionStage::Running(s) => (StageState::Running, s.partitions, Some(&s.task_infos)),
            ExecutionStage::Successful(s) => {
                (StageState::Successful, s.partitions, Some(&s.task_infos))
            }
            ExecutionStage::Failed(s) => (StageState::Failed, s.partitions, None),
        };
        let succeeded: Vec<_> = tasks
            .map(|t| {
                t.iter()
                    .filter(|t| matches!(t.task_status, task_status::Status::Successful(_)))
                    .collect()
            })
            .unwrap_or_default();
        let mut finished_tasks: Vec<(usize, u64)> = Vec::new();
        for t in &succeeded {
            if !finished_tasks.iter().any(|(id, _)| *id == t.task_id) {
                let ms = t.end_exec_time.saturating_sub(t.start_exec_time) as u64;
                finished_tasks.push((t.task_id, ms));
            }
        }
        let partitions_done = if state == StageState::Successful {
            partitions
        } else {
            let done: usize = succeeded
                .iter()
                .map(|t| t.global_input_partition_ids.len().max(1))
                .sum();
            done.min(partitions)
        };
        out.push(StageSnapshot {
            job_id: job_id.to_string(),
            stage_id: *stage_id,
            state,
            partitions,
            partitions_done,
            finished_tasks,
        });
    }
    out
}

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

/// Pairs the stage's file scans (in plan pre-order) with the metric sets that carry scan
/// metrics (Ballista collects metrics in pre-order too), and sums their output rows.
fn collect_scans(plan: &dyn ExecutionPlan, metrics: &[MetricsSet], out: &mut ScanRows) {
    let mut scans = Vec::new();
    scan_files(plan, &mut scans);
    let scan_metrics: Vec<&MetricsSet> = metrics
        .iter()
        .filter(|m| m.iter().any(|x| x.value().name() == "time_elapsed_opening"))
        .collect();
    if scans.len() != scan_metrics.len() {
        return;
    }
    for (files, m) in scans.into_iter().zip(scan_metrics) {
        let rows = m.output_rows().unwrap_or(0) as u64;
        out.scans.push((files, rows));
    }
}

fn scan_files(plan: &dyn ExecutionPlan, out: &mut Vec<Vec<String>>) {
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
        && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
    {
        let files = config
            .file_groups
            .iter()
            .flat_map(|g| g.files().iter())
            .map(|f| f.object_meta.location.to_string())
            .collect();
        out.push(files);
    }
    for child in plan.children() {
        scan_files(child.as_ref(), out);
    }
}
