//! `sluice-executor`: a Ballista executor process that runs the tasks of Sluice jobs.
//!
//! It registers with the scheduler's Ballista port, pulls tasks, reads staging and writes the
//! lake with the object stores of its own environment, and serves shuffle data over Flight.
//!
//! With a cluster secret (`SLUICE_CLUSTER_SECRET`, or `--cluster-secret-file`) every
//! connection it makes or accepts is mutual TLS with the cluster's certificates (see
//! `sluice-cluster-tls`). Without one its ports are unauthenticated, so it refuses to bind
//! anything but a loopback address.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::error::BallistaError;
use ballista_core::extension::SessionConfigExt;
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use ballista_executor::ArrowFlightServerProvider;
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::shutdown::Shutdown;
use clap::Parser;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use sluice_cluster_tls::ClusterTls;

/// Runs a Sluice (Ballista) executor.
#[derive(Parser)]
#[command(name = "sluice-executor", version, about)]
struct Args {
    /// Scheduler host (its Ballista port).
    #[arg(long, env = "SLUICE_SCHEDULER_HOST", default_value = "127.0.0.1")]
    scheduler_host: String,
    /// Scheduler's Ballista gRPC port.
    #[arg(long, env = "SLUICE_SCHEDULER_PORT", default_value_t = 50050)]
    scheduler_port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    /// Host other processes reach this executor at (default: the bind host).
    #[arg(long)]
    external_host: Option<String>,
    /// Flight port serving shuffle data.
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// gRPC port of the executor service.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Task slots (default: the number of cores).
    #[arg(long)]
    vcores: Option<usize>,
    /// Seconds between heartbeats to the scheduler (keep well under its executor timeout).
    #[arg(long, default_value_t = 5)]
    heartbeat_seconds: u64,
    /// Folder for shuffle files (default: a temporary folder).
    #[arg(long)]
    work_dir: Option<String>,
    /// File holding the cluster secret (the same as the scheduler's); it may also be given
    /// as SLUICE_CLUSTER_SECRET.
    #[arg(long, env = "SLUICE_CLUSTER_SECRET_FILE")]
    cluster_secret_file: Option<std::path::PathBuf>,
    /// Serve shuffle data without a cluster secret on a non-loopback address: anyone who
    /// reaches the port can read it. For local development only.
    #[arg(long)]
    insecure_no_auth: bool,
}

/// The cluster's TLS identity, or none when no secret is configured and the executor's
/// ports stay on loopback.
fn cluster_tls(args: &Args) -> Result<Option<ClusterTls>> {
    let Some(secret) = sluice_cluster_tls::secret_from(args.cluster_secret_file.as_deref())? else {
        let loopback = args
            .bind_host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
            || args.bind_host == "localhost";
        if !loopback && !args.insecure_no_auth {
            bail!(
                "--bind-host {} is reachable from other machines but no cluster secret is \
                 configured: set SLUICE_CLUSTER_SECRET (or --cluster-secret-file) to the \
                 scheduler's secret, or pass --insecure-no-auth for local development",
                args.bind_host
            );
        }
        return Ok(None);
    };
    Ok(Some(ClusterTls::from_secret(&secret)?))
}

/// Ballista's Flight service (shuffle data, results) over mutual TLS.
fn tls_flight_server(tls: ClusterTls) -> Arc<ArrowFlightServerProvider> {
    Arc::new(
        move |work_dir: String,
              address: std::net::SocketAddr,
              mut shutdown: Shutdown,
              grpc: GrpcServerConfig| {
            let tls = tls.server_tls();
            tracing::info!("Flight service over mutual TLS on {address}");
            tokio::spawn(async move {
                let server = create_grpc_server(&grpc)
                    .tls_config(tls)
                    .map_err(BallistaError::TonicError)?
                    .add_service(
                        FlightServiceServer::new(BallistaFlightService::new(work_dir))
                            .max_decoding_message_size(MAX_MESSAGE)
                            .max_encoding_message_size(MAX_MESSAGE),
                    );
                server
                    .serve_with_shutdown(address, shutdown.recv())
                    .await
                    .map_err(BallistaError::TonicError)
            })
        },
    )
}

/// Environment variable naming faults to inject, for tests (a comma-separated list):
/// `slow_tasks` makes every task say which stage it belongs to and wait 3 s before it runs,
/// so that a test can pause or cut off the executor while it provably holds a task of a
/// given stage.
const FAILPOINT_ENV: &str = "SLUICE_FAILPOINT";

/// Ballista's execution engine with the `slow_tasks` failpoint in front of every task.
struct SlowTasks(DefaultExecutionEngine);

impl ExecutionEngine for SlowTasks {
    fn create_query_stage_exec(
        &self,
        job_id: ballista_core::JobId,
        stage_id: usize,
        task_id: usize,
        partitions: Vec<usize>,
        plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> datafusion::error::Result<Arc<dyn QueryStageExecutor>> {
        let label = format!("{job_id}/{stage_id}");
        let inner = self.0.create_query_stage_exec(
            job_id, stage_id, task_id, partitions, plan, work_dir, config,
        )?;
        Ok(Arc::new(SlowStage { inner, label }))
    }
}

/// One stage's task executor behind the `slow_tasks` failpoint.
#[derive(Debug)]
struct SlowStage {
    inner: Arc<dyn QueryStageExecutor>,
    label: String,
}

impl std::fmt::Display for SlowStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for SlowStage {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<datafusion::execution::TaskContext>,
    ) -> datafusion::error::Result<Vec<ballista_core::serde::protobuf::ShuffleWritePartition>> {
        eprintln!(
            "failpoint slow_tasks: pid {} holds task {task_id} of stage {}",
            std::process::id(),
            self.label
        );
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        self.inner.execute_query_stage(task_id, context).await
    }

    fn collect_plan_metrics(&self) -> Vec<datafusion::physical_plan::metrics::MetricsSet> {
        self.inner.collect_plan_metrics()
    }

    fn collect_runtime_stats_reports(
        &self,
    ) -> Vec<ballista_core::serde::protobuf::RuntimeStatsReport> {
        self.inner.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(
        &self,
    ) -> datafusion::error::Result<Vec<ballista_core::serde::protobuf::WindowStateReport>> {
        self.inner.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<ballista_core::serde::protobuf::TaskColumnStats> {
        self.inner.collect_column_stats()
    }
}

/// Largest gRPC message of the Flight service (Ballista's default).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

fn main() -> Result<()> {
    let args = Args::parse();
    let tls = cluster_tls(&args)?;
    let vcores = args
        .vcores
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    // Shuffle and spill files go to --work-dir, or to a folder removed on exit.
    let (work_dir, _temp_dir) = match args.work_dir.clone() {
        Some(dir) => (dir, None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("sluice-executor-")
                .tempdir()
                .context("cannot create a work folder")?;
            (t.path().display().to_string(), Some(t))
        }
    };
    let registry = sluice_storage::SluiceObjectStores::new();
    let spill_dir = work_dir.clone();
    let runtime_producer: ballista_core::RuntimeProducer = Arc::new(move |_| {
        let runtime = RuntimeEnvBuilder::new()
            .with_temp_file_path(spill_dir.clone())
            .with_object_store_registry(registry.clone())
            .build()?;
        Ok(Arc::new(runtime))
    });
    let mut config = ExecutorProcessConfig {
        bind_host: args.bind_host.clone(),
        external_host: Some(args.external_host.unwrap_or(args.bind_host)),
        port: args.port,
        grpc_port: args.grpc_port,
        scheduler_host: args.scheduler_host,
        scheduler_port: args.scheduler_port,
        vcores,
        work_dir: Some(work_dir),
        override_runtime_producer: Some(runtime_producer),
        override_logical_codec: Some(Arc::new(sluice_writer::SluiceLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(sluice_writer::SluicePhysicalCodec::default())),
        executor_heartbeat_interval_seconds: args.heartbeat_seconds,
        task_scheduling_policy: ballista_core::config::TaskSchedulingPolicy::PullStaged,
        ..Default::default()
    };
    // Every connection this executor makes (to the scheduler, and to other executors for
    // shuffle data) gets time limits, and with a secret the cluster's mutual TLS.
    let endpoint = sluice_cluster_tls::endpoint_override(tls.clone());
    let session = SessionConfig::new_with_ballista()
        .with_ballista_use_tls(tls.is_some())
        .with_ballista_override_create_grpc_client_endpoint(endpoint.clone());
    config.override_config_producer = Some(Arc::new(move || session.clone()));
    config.override_create_grpc_client_endpoint = Some(endpoint);
    if let Some(tls) = tls {
        config.override_arrow_flight_service = Some(tls_flight_server(tls));
    }
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v.split(',').any(|f| f == "slow_tasks")) {
        config.override_execution_engine = Some(Arc::new(SlowTasks(DefaultExecutionEngine::new())));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The OTLP exporter needs the runtime while it is built.
    let _enter = runtime.enter();
    let _telemetry = sluice_telemetry::init("sluice-executor", "info");
    runtime
        .block_on(start_executor_process(Arc::new(config)))
        .map_err(|e| anyhow::anyhow!("executor failed: {e}"))
}
