//! `sluice-scheduler`: the Sluice service. One gRPC port serves both Sluice's `JobService`
//! (clients submit and watch jobs) and Ballista's scheduler service (executors register and
//! pull tasks).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use clap::Parser;
use sluice_proto::job_service_server::JobServiceServer;
use sluice_scheduler::engine::{Engine, EngineOptions};
use sluice_scheduler::runner::Lake;
use sluice_scheduler::service::{JobManager, JobServiceImpl, RunStore};

/// Runs the Sluice scheduler.
#[derive(Parser)]
#[command(name = "sluice-scheduler", version, about)]
struct Args {
    /// Address of the gRPC port (JobService and Ballista's scheduler service).
    #[arg(long, env = "SLUICE_BIND", default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
    /// URL executors and this process reach the port at (default: http://<bind>).
    #[arg(long, env = "SLUICE_ADVERTISE_URL")]
    advertise_url: Option<String>,
    /// The data lake: a folder or file:// URL (the embedded catalog lives inside it).
    #[arg(long, env = "SLUICE_LAKE", default_value = "lake")]
    lake: String,
    /// Folder for the scheduler's own state (job runs).
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "sluice-data")]
    data_dir: PathBuf,
    /// Target partitions of job plans (default: the number of cores).
    #[arg(long)]
    partitions: Option<usize>,
    /// Seconds without a heartbeat before an executor is declared dead.
    #[arg(long, default_value_t = 30)]
    executor_timeout_seconds: u64,
    /// Catalog for targets that name none, and for queries: `embedded` (in the lake) or
    /// `glue` (AWS Glue; region, credentials and endpoint from the standard AWS settings).
    #[arg(long, env = "SLUICE_CATALOG", default_value = "embedded")]
    catalog: sluice_catalog::CatalogKind,
}

fn lake_url(arg: &str) -> Result<String> {
    Ok(sluice_storage::lake_url(arg)?)
}

async fn serve(args: Args) -> Result<()> {
    let partitions = args
        .partitions
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let own_url = args
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.bind));
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot bind {}", args.bind))?;
    let mut options = EngineOptions::new(partitions);
    options.executor_timeout_seconds = args.executor_timeout_seconds;
    let (engine, ballista) = Engine::for_service(options, &own_url).await?;
    let lake = Lake::open(&engine, &lake_url(&args.lake)?).context("cannot open the lake")?;
    let catalogs = Arc::new(lake.catalogs(args.catalog));
    let store = RunStore::open(&args.data_dir).context("cannot open the run store")?;
    let manager = JobManager::new(engine, lake, catalogs, store);
    let recovered = manager.recover().context("cannot recover runs")?;
    tracing::info!(
        bind = %args.bind,
        lake = %args.lake,
        data_dir = %args.data_dir.display(),
        recovered,
        "sluice-scheduler listening: JobService and Ballista scheduler on one port"
    );
    println!("sluice-scheduler listening on {}", args.bind);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    create_grpc_server(&GrpcServerConfig::default())
        .add_service(ballista)
        .add_service(JobServiceServer::new(JobServiceImpl::new(manager)))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await
        .context("the gRPC server failed")
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The OTLP exporter needs the runtime while it is built.
    let _enter = runtime.enter();
    let _telemetry = sluice_telemetry::init(
        "sluice-scheduler",
        "info,ballista=warn,ballista_scheduler=warn,ballista_core=warn",
    );
    runtime.block_on(serve(args))
}
