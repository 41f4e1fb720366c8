//! `sluice-executor`: a Ballista executor process that runs the tasks of Sluice jobs.
//!
//! It registers with the scheduler's Ballista port, pulls tasks, reads staging and writes the
//! lake with the object stores of its own environment, and serves shuffle data over Flight.

use std::sync::Arc;

use anyhow::{Context, Result};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use clap::Parser;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

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
}

fn main() -> Result<()> {
    let args = Args::parse();
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
    let config = ExecutorProcessConfig {
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
