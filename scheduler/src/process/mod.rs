//! The scheduler process: starts the engine, the lake, the run store and the job manager,
//! then serves them until told to stop (as Ballista's `scheduler_process` does for its
//! binary's `main`).
//!
//! [`SchedulerProcess::start`] does everything that can refuse a configuration (port
//! security, binding the ports, opening the lake and the run store, recovering runs) before
//! anything is served; [`SchedulerProcess::run`] serves until its shutdown future resolves.
//! Modules: `security` (who may reach each port), `services` (listeners and the gRPC
//! services on them), `http` (health, readiness, metrics and the dashboards), `error`
//! ([`ProcessError`]).
//!
//! Shutdown: when the shutdown future resolves, readiness turns false at once, submissions
//! are refused (UNAVAILABLE), runs that have not begun committing are stopped and left
//! unfinished in the run store (the next start resubmits them), runs that are committing
//! finish (up to the grace period), then the servers stop.

mod error;
mod http;
mod security;
mod services;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use sluice_catalog::CatalogKind;
use sluice_dashboard::{DashboardOptions, DashboardState, ResultsOptions, SessionsBackend};
use sluice_engine::{Engine, EngineOptions, LakeSessions};
use sluice_flight_sql::{FlightSqlOptions, SluiceFlightSql};
use sluice_lake::Lake;

pub use error::ProcessError;
use http::Health;
use security::Security;
use services::{Listeners, Services};

use crate::config::SchedulerConfig;
use crate::dashboards::{EndedRuns, ManagerRuns, MeteredBackend};
use crate::metrics::SchedulerMetrics;
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
    /// Memory limit of this process's DataFusion operators, and the budget joins are planned
    /// for (default: a share of the process's memory; see `EngineOptions::memory_limit`).
    pub memory_limit: Option<sluice_engine::session::MemoryLimit>,
    /// Seconds without a heartbeat before an executor is declared dead.
    pub executor_timeout_seconds: u64,
    /// Runs that may run at once (the rest wait).
    pub max_concurrent_runs: usize,
    /// SQL queries scanning at most this many bytes run in this process.
    pub local_query_max_bytes: u64,
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
    /// The HTTP port: health, readiness, metrics, and the dashboards.
    pub http_bind: SocketAddr,
    /// Dashboard files to serve (none: the HTTP port serves no data).
    pub dashboards: Option<PathBuf>,
    /// How long, and how many, SQL workbench results are kept in the lake.
    pub results_retention: sluice_dashboard::Retention,
    /// How long a shutdown waits for committing runs.
    pub shutdown_grace: Duration,
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
    manager: Arc<JobManager>,
}

/// How long the servers may take to close their connections after a shutdown (a client
/// watching a run would otherwise hold its connection open).
const SERVERS_CLOSE_GRACE: Duration = Duration::from_secs(5);

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
        if let Some(limit) = config.memory_limit {
            options.memory_limit = limit;
        }
        let (engine, ballista) = Engine::for_service(options, &own_url).await?;
        let engine = Arc::new(engine);
        let lake_url = sluice_storage::lake_url(&config.lake)?;
        let lake = Lake::open(engine.as_ref(), &lake_url).map_err(ProcessError::Lake)?;
        let catalogs = Arc::new(lake.catalogs(config.catalog));
        let store = RunStore::open(&config.data_dir).map_err(ProcessError::RunStore)?;
        let metrics = SchedulerMetrics::new()?;
        let sessions: Arc<dyn sluice_flight_sql::QuerySessions> = Arc::new(FlightSessions {
            sessions: LakeSessions::new(Arc::clone(&engine), Arc::clone(&catalogs))
                .with_local_query_max_bytes(config.local_query_max_bytes),
            metrics: metrics.clone(),
        });
        let timeout = config
            .query_timeout_seconds
            .unwrap_or(config.file.query_timeout_seconds);
        let dashboard_catalog = match config.dashboards {
            Some(_) => Some(
                catalogs
                    .get(None)
                    .await
                    .map_err(ProcessError::DashboardCatalog)?,
            ),
            None => None,
        };
        let results = ResultsOptions::new(
            Arc::clone(&lake.store),
            lake.path(),
            config.results_retention,
        );
        let manager = JobManager::new(
            Arc::clone(&engine),
            lake,
            catalogs,
            store,
            &config.file.staging_roots,
            config.max_concurrent_runs,
        )?;
        let dashboards = dashboard_catalog.map(|catalog| {
            let backend = SessionsBackend::new(Arc::clone(&sessions), Arc::clone(&catalog))
                .with_timeout(Duration::from_secs(timeout.max(1)));
            DashboardState::new(
                Arc::new(MeteredBackend {
                    inner: Arc::new(backend),
                    metrics: metrics.clone(),
                }),
                catalog,
                DashboardOptions {
                    dashboards_dir: config.dashboards.clone(),
                    auth: security.auth.clone(),
                    runs: Some(Arc::new(ManagerRuns(Arc::clone(&manager)))),
                    results: Some(results),
                    ..DashboardOptions::default()
                },
            )
        });
        manager.set_listener(Arc::new(EndedRuns {
            metrics: metrics.clone(),
            dashboards: dashboards.clone(),
        }));
        let recovered = manager.recover().map_err(ProcessError::Recover)?;
        // Schedules start after the recovery, so their restart checks see the resubmitted runs.
        crate::service::schedules::Schedules::start(&manager, &config.data_dir)
            .map_err(ProcessError::RunStore)?;
        let flight = SluiceFlightSql::new(
            sessions,
            security.auth.clone(),
            FlightSqlOptions {
                query_timeout: Duration::from_secs(timeout.max(1)),
                ..FlightSqlOptions::default()
            },
        );
        let health = Health {
            manager: Arc::clone(&manager),
            engine,
            metrics,
            serving: Arc::new(AtomicBool::new(false)),
        };
        let services = Services {
            flight,
            jobs: JobServiceImpl::new(Arc::clone(&manager)),
            ballista,
            security,
            health,
            dashboards,
        };
        Ok(Self {
            config,
            listeners,
            services,
            recovered,
            manager,
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
            manager,
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
            http_bind = %config.http_bind,
            dashboards = config.dashboards.is_some(),
            "sluice-scheduler listening: JobService and Flight SQL"
        );
        println!("sluice-scheduler listening on {}", config.bind);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let grace = config.shutdown_grace;
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!(
                grace_seconds = grace.as_secs(),
                "shutting down: refusing submissions, letting commits finish"
            );
            let left = manager.shut_down(grace).await;
            tracing::info!(
                left,
                "runs left for the next start to resubmit; stopping the servers"
            );
            // The servers hold the receivers until they have stopped; none left means
            // nothing is listening any more.
            let _ = stop_tx.send(true);
            let _ = stopped_tx.send(());
        });
        let serving = services.serve(listeners, stop_rx);
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => result,
            Ok(()) = stopped_rx => {
                match tokio::time::timeout(SERVERS_CLOSE_GRACE, serving).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::info!("connections still open after the shutdown; closing them");
                        Ok(())
                    }
                }
            }
        }
    }
}

/// Resolves when the process is asked to stop: SIGTERM (an orchestrator) or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM"),
        }
    }
    ctrl_c().await;
    tracing::info!("Ctrl-C: shutting down");
}

/// Resolves on Ctrl-C (never, when no handler can be installed).
async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        // Without a signal handler, never ask to stop: the process runs until killed.
        tracing::warn!(error = %e, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}
