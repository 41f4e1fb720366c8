//! The scheduler process: starts the engine, the lake, the run store and the job manager,
//! then serves them until told to stop (as Ballista's `scheduler_process` does for its
//! binary's `main`).
//!
//! [`SchedulerProcess::start`] does everything that can refuse a configuration (port
//! security, binding the ports, opening the lake and the run store, recovering runs) before
//! anything is served; [`SchedulerProcess::run`] serves until its shutdown future resolves.
//! Modules: `security` (who may reach each port), `services` (listeners and the gRPC
//! services on them), `error` ([`ProcessError`]).

mod error;
mod security;
mod services;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_catalog::CatalogKind;
use sluice_engine::{Engine, EngineOptions, LakeSessions};
use sluice_flight_sql::{FlightSqlOptions, SluiceFlightSql};
use sluice_lake::Lake;

pub use error::ProcessError;
use security::Security;
use services::{Listeners, Services};

use crate::config::SchedulerConfig;
use crate::service::{JobManager, JobServiceImpl, RunStore};
use crate::sessions::FlightSessions;

/// Everything the scheduler process needs to start: its flags (or their environment
/// variables) and its config file, resolved.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The client port: `JobService` and Flight SQL (and Ballista's scheduler service for
    /// executors, without `cluster_bind`).
    pub bind: SocketAddr,
    /// A port of their own for executors (Ballista's scheduler service).
    pub cluster_bind: Option<SocketAddr>,
    /// File holding the cluster secret (else `SLUICE_CLUSTER_SECRET`, else none).
    pub cluster_secret_file: Option<PathBuf>,
    /// URL executors and this process reach Ballista's service at (default: http://<the
    /// cluster port>).
    pub advertise_url: Option<String>,
    /// The data lake: a folder, file:// or s3:// URL.
    pub lake: String,
    /// Folder for the scheduler's own state (job runs).
    pub data_dir: PathBuf,
    /// Target partitions of job plans (default: the number of cores).
    pub partitions: Option<usize>,
    /// Seconds without a heartbeat before an executor is declared dead.
    pub executor_timeout_seconds: u64,
    /// Catalog for targets that name none, and for queries.
    pub catalog: CatalogKind,
    /// The config file's settings (users, staging roots, TLS files, time limits).
    pub file: SchedulerConfig,
    /// Accept clients and executors without proof on any address (development only).
    pub insecure_no_auth: bool,
    /// TLS certificate and key (PEM files) for the client port; override the file's.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// Seconds a SQL query may run; overrides the file's.
    pub query_timeout_seconds: Option<u64>,
}

impl ProcessConfig {
    /// Where executors connect: their own port, or the client port.
    pub fn cluster_addr(&self) -> SocketAddr {
        self.cluster_bind.unwrap_or(self.bind)
    }
}

/// A started scheduler process: its ports bound, its state recovered, ready to serve.
pub struct SchedulerProcess {
    config: ProcessConfig,
    listeners: Listeners,
    services: Services,
    recovered: usize,
}

impl SchedulerProcess {
    /// Checks `config`, binds its ports, starts the engine and the job manager and recovers
    /// the runs of the run store. Nothing is served yet.
    pub async fn start(config: ProcessConfig) -> Result<Self, ProcessError> {
        let security = Security::from_config(&config)?;
        let partitions = config
            .partitions
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let own_url = config
            .advertise_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.cluster_addr()));
        let listeners = Listeners::bind(&config).await?;

        let mut options = EngineOptions::new(partitions);
        options.executor_timeout_seconds = config.executor_timeout_seconds;
        options.cluster_tls = security.cluster_tls.clone();
        let (engine, ballista) = Engine::for_service(options, &own_url).await?;
        let engine = Arc::new(engine);
        let lake_url = sluice_storage::lake_url(&config.lake)?;
        let lake = Lake::open(engine.as_ref(), &lake_url).map_err(ProcessError::Lake)?;
        let catalogs = Arc::new(lake.catalogs(config.catalog));
        let store = RunStore::open(&config.data_dir).map_err(ProcessError::RunStore)?;
        let sessions = LakeSessions::new(Arc::clone(&engine), Arc::clone(&catalogs));
        let manager = JobManager::new(engine, lake, catalogs, store, &config.file.staging_roots)?;
        let recovered = manager.recover().map_err(ProcessError::Recover)?;
        let timeout = config
            .query_timeout_seconds
            .unwrap_or(config.file.query_timeout_seconds);
        let flight = SluiceFlightSql::new(
            Arc::new(FlightSessions(sessions)),
            security.auth.clone(),
            FlightSqlOptions {
                query_timeout: Duration::from_secs(timeout.max(1)),
                ..FlightSqlOptions::default()
            },
        );
        let services = Services {
            flight,
            jobs: JobServiceImpl::new(manager),
            ballista,
            security,
        };
        Ok(Self {
            config,
            listeners,
            services,
            recovered,
        })
    }

    /// Serves every port until `shutdown` resolves, then stops the servers gracefully.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ProcessError> {
        let Self {
            config,
            listeners,
            services,
            recovered,
        } = self;
        tracing::info!(
            bind = %config.bind,
            cluster_bind = %config.cluster_addr(),
            lake = %config.lake,
            data_dir = %config.data_dir.display(),
            auth = services.security.auth.is_some(),
            tls = services.security.client_tls.is_some(),
            cluster_tls = services.security.cluster_tls.is_some(),
            recovered,
            "sluice-scheduler listening: JobService and Flight SQL"
        );
        println!("sluice-scheduler listening on {}", config.bind);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            // The servers hold the receivers until they have stopped; none left means
            // nothing is listening any more.
            let _ = stop_tx.send(true);
        });
        services.serve(listeners, stop_rx).await
    }
}

/// Resolves when the process is asked to stop (Ctrl-C, SIGINT).
pub async fn shutdown_signal() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        // Without a signal handler, never ask to stop: the process runs until killed.
        tracing::warn!(error = %e, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}
