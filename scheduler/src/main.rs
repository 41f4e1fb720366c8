//! `sluice-scheduler`: the Sluice service.
//!
//! The client port serves Sluice's `JobService` (submit and watch jobs) and Arrow Flight SQL
//! (queries from BI tools), behind bearer-token authentication and optional TLS. Executors
//! connect to Ballista's scheduler service, which accepts plans and cancels jobs and so is
//! never open to clients: with a cluster secret it is served on `--cluster-bind` over mutual
//! TLS (see `sluice-cluster-tls`); without one it is unauthenticated and allowed only on a
//! loopback address, and on the client port only when the client port has no logins either.
//! The HTTP port (`--http-bind`) serves health, readiness and Prometheus metrics, and the
//! dashboards with `--dashboards`; SIGTERM or Ctrl-C shuts down gracefully (see
//! `sluice_scheduler::process`, which is what the process starts and serves).

use anyhow::{Context, Result};
use clap::Parser;
use sluice_scheduler::args::{Args, Command, hash_password};
use sluice_scheduler::process::{SchedulerProcess, shutdown_signal};

/// mimalloc instead of glibc's malloc: every SQL query builds a session and plans, many small
/// allocations freed across threads. Under 32 Flight SQL clients it cut the scheduler's CPU
/// per query from 3.8-3.9 ms to 3.1-3.3 ms; its peak RSS went from 139 MB to 228-238 MB, or
/// 164-171 MB with `MIMALLOC_ARENA_EAGER_COMMIT=0` (arenas committed as used), which the
/// deploy images set.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::HashPassword) => {
            println!("{}", hash_password(std::io::stdin().lock())?);
            return Ok(());
        }
        Some(Command::ClusterSecret) => {
            println!("{}", sluice_cluster_tls::generate_secret()?);
            return Ok(());
        }
        None => {}
    }
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
    runtime.block_on(async {
        let process = SchedulerProcess::start(args.process_config()?).await?;
        process.run(shutdown_signal()).await
    })?;
    Ok(())
}
