//! `sluice-executor`: a Ballista executor process that runs the tasks of Sluice jobs.
//!
//! It registers with the scheduler's Ballista port, pulls tasks, reads staging and writes the
//! lake with the object stores of its own environment, and serves shuffle data over Flight.
//!
//! With a cluster secret (`SLUICE_CLUSTER_SECRET`, or `--cluster-secret-file`) every
//! connection it makes or accepts is mutual TLS with the cluster's certificates (see
//! `sluice-cluster-tls`). Without one its ports are unauthenticated, so it refuses to bind
//! anything but a loopback address. Its health and metrics port (`--http-bind`) serves no
//! data and takes no commands, so it may be open.
//!
//! On SIGTERM it drains: it takes no new task, finishes the running ones within
//! `--shutdown-grace-seconds`, reports them, tells the scheduler it stopped and exits 0
//! (see `sluice_executor::process`). `sluice-executor probe URL` checks a health endpoint.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ballista_core::extension::SessionConfigExt;
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use clap::{Parser, Subcommand};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use sluice_cluster_tls::ClusterTls;
use sluice_executor::process::ProcessOptions;

/// jemalloc instead of glibc's malloc. A job allocates and frees large buffers (CSV batches,
/// a join's build side, Parquet pages) on many threads; glibc maps each large one afresh and
/// unmaps it on free, so its pages fault in again every time. On the x1000 Spotify job,
/// jemalloc preloaded into the same binary took 24.0-25.6 s against 27.6-29.2 s, with a peak
/// RSS of 1,415-1,487 MiB against 1,691-1,824 MiB
/// (`bench/results/2026-11-28-allocators-x1000.md`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read by jemalloc itself at start
/// (see [`sluice_executor::memory::JEMALLOC_CONF`]).
#[allow(non_upper_case_globals, unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static malloc_conf: &[u8] = sluice_executor::memory::JEMALLOC_CONF;

/// Runs a Sluice (Ballista) executor. Every flag can also be set from the environment
/// variable shown with it.
#[derive(Parser)]
#[command(name = "sluice-executor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: Args,
}

/// Subcommands; without one the executor runs.
#[derive(Subcommand)]
enum Command {
    /// Checks a health endpoint and exits 0 when it is healthy (for container health checks
    /// without curl): http://host:port/path must answer 200, grpc://host:port must answer
    /// SERVING to grpc.health.v1 Check.
    Probe {
        /// http://host:port/path or grpc://host:port
        url: String,
        /// Seconds to wait for an answer.
        #[arg(long, default_value_t = 5)]
        timeout_seconds: u64,
    },
}

/// How the executor runs.
#[derive(clap::Args)]
struct Args {
    /// Scheduler host (its Ballista port).
    #[arg(long, env = "SLUICE_SCHEDULER_HOST", default_value = "127.0.0.1")]
    scheduler_host: String,
    /// Scheduler's Ballista gRPC port.
    #[arg(long, env = "SLUICE_SCHEDULER_PORT", default_value_t = 50050)]
    scheduler_port: u16,
    /// Address to bind the Flight port to.
    #[arg(long, env = "SLUICE_BIND_HOST", default_value = "127.0.0.1")]
    bind_host: String,
    /// Host other processes reach this executor at (default: the bind host).
    #[arg(long, env = "SLUICE_EXTERNAL_HOST")]
    external_host: Option<String>,
    /// Flight port serving shuffle data.
    #[arg(long, env = "SLUICE_PORT", default_value_t = 50051)]
    port: u16,
    /// gRPC port announced to the scheduler (executors pull tasks, so nothing listens on it).
    #[arg(long, env = "SLUICE_GRPC_PORT", default_value_t = 50052)]
    grpc_port: u16,
    /// Address of the health and metrics port: HTTP /healthz, /readyz, /metrics and
    /// grpc.health.v1 on one listener. It serves no data and takes no commands, so it may
    /// be open to the network without a cluster secret.
    #[arg(long, env = "SLUICE_HTTP_BIND", default_value = "127.0.0.1:9100")]
    http_bind: String,
    /// Task slots (default: the number of cores).
    #[arg(long, env = "SLUICE_VCORES")]
    vcores: Option<usize>,
    /// Memory the task slots' joins, sorts and aggregations may hold together, split evenly
    /// between the slots; beyond it they spill to the work folder. A size: 2GiB, 512MiB,
    /// 0.5GB or bytes; 0 for no limit (default: 70% of the process's cgroup v2 memory.max,
    /// else of the host's memory). `--memory-pool-size` is an alias.
    #[arg(
        long,
        env = "SLUICE_MEMORY_LIMIT",
        alias = "memory-pool-size",
        value_name = "SIZE",
        value_parser = sluice_executor::memory::parse_memory_limit
    )]
    memory_limit: Option<sluice_executor::memory::MemoryLimit>,
    /// Accepted for compatibility: under pull scheduling every poll for work is the
    /// executor's heartbeat (several a second while idle).
    #[arg(long, env = "SLUICE_HEARTBEAT_SECONDS", default_value_t = 5)]
    heartbeat_seconds: u64,
    /// Seconds running tasks may take to finish after SIGTERM before the executor leaves
    /// anyway (the scheduler then re-runs them).
    #[arg(long, env = "SLUICE_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    shutdown_grace_seconds: u64,
    /// Folder for shuffle files (default: a temporary folder).
    #[arg(long, env = "SLUICE_WORK_DIR")]
    work_dir: Option<String>,
    /// File holding the cluster secret (the same as the scheduler's); it may also be given
    /// as SLUICE_CLUSTER_SECRET.
    #[arg(long, env = "SLUICE_CLUSTER_SECRET_FILE")]
    cluster_secret_file: Option<std::path::PathBuf>,
    /// Serve shuffle data without a cluster secret on a non-loopback address: anyone who
    /// reaches the port can read it. For local development only.
    #[arg(long, env = "SLUICE_INSECURE_NO_AUTH")]
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Probe {
        url,
        timeout_seconds,
    }) = cli.command
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(sluice_executor::probe::probe(
            &url,
            Duration::from_secs(timeout_seconds),
        ))?;
        println!("{url}: healthy");
        return Ok(());
    }
    run_executor(cli.args)
}

fn run_executor(args: Args) -> Result<()> {
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
    let spill_dir = std::path::PathBuf::from(&work_dir);
    let spills = Arc::new(sluice_executor::memory::SpillCounter::default());
    let counter = spills.clone();
    let runtime_producer: ballista_core::RuntimeProducer = Arc::new(move |_| {
        let disk = sluice_executor::memory::counting_disk_manager(
            Some(spill_dir.clone()),
            counter.clone(),
        )?;
        let runtime = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(disk)
            .with_object_store_registry(registry.clone())
            .build()?;
        Ok(Arc::new(runtime))
    });
    // Every connection this executor makes (to the scheduler, and to other executors for
    // shuffle data) gets time limits, and with a secret the cluster's mutual TLS.
    let endpoint = sluice_cluster_tls::endpoint_override(tls.clone());
    let session_config = SessionConfig::new_with_ballista()
        .with_ballista_use_tls(tls.is_some())
        .with_ballista_override_create_grpc_client_endpoint(endpoint.clone());
    let engine: Arc<dyn ExecutionEngine> =
        if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v.split(',').any(|f| f == "slow_tasks")) {
            Arc::new(SlowTasks(DefaultExecutionEngine::new()))
        } else {
            Arc::new(DefaultExecutionEngine::new())
        };
    let memory_limit = sluice_executor::memory::MemoryLimit::or_default(args.memory_limit);
    let memory_pool_bytes = memory_limit.bytes();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The OTLP exporter needs the runtime while it is built.
    let _enter = runtime.enter();
    let _telemetry = sluice_telemetry::init("sluice-executor", "info");
    match (args.memory_limit, memory_limit) {
        (Some(_), limit) => tracing::info!("memory limit {limit} (--memory-limit)"),
        (None, sluice_executor::memory::MemoryLimit::Bytes(_)) => tracing::info!(
            "memory limit {memory_limit} (default: {:.0}% of this process's memory)",
            sluice_executor::memory::DEFAULT_FRACTION * 100.0
        ),
        (None, _) => tracing::warn!(
            "memory limit: none (this process's memory could not be read; set --memory-limit)"
        ),
    }
    let health_listener = runtime
        .block_on(tokio::net::TcpListener::bind(&args.http_bind))
        .with_context(|| format!("cannot bind the health port --http-bind {}", args.http_bind))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let options = ProcessOptions {
        scheduler_url: format!("{scheme}://{}:{}", args.scheduler_host, args.scheduler_port),
        external_host: args.external_host.unwrap_or_else(|| args.bind_host.clone()),
        bind_host: args.bind_host,
        flight_port: args.port,
        grpc_port: args.grpc_port,
        vcores,
        work_dir,
        memory_pool_bytes,
        runtime_producer,
        spills,
        session_config,
        logical_codec: Arc::new(sluice_writer::SluiceLogicalCodec::default()),
        physical_codec: Arc::new(sluice_writer::SluicePhysicalCodec::default()),
        endpoint_override: endpoint,
        tls,
        engine,
        health_listener,
        shutdown_grace: Duration::from_secs(args.shutdown_grace_seconds),
    };
    runtime.block_on(sluice_executor::process::run(options))?;
    Ok(())
}
