//! The process's ports and the gRPC services on each: the one place where listeners and
//! tonic services are assembled.
//!
//! - client port (`--bind`): Sluice's `JobService` and Arrow Flight SQL, behind the login
//!   layer and optional TLS; also Ballista's scheduler service when executors have no port
//!   of their own;
//! - cluster port (`--cluster-bind`): Ballista's scheduler service, with the cluster's mutual
//!   TLS when a secret is configured;
//! - HTTP port (`--http-bind`): health, readiness, metrics and the dashboards (see `http`).
//!
//! The client port also serves `grpc.health.v1.Health`, outside the login layer (which
//! guards exactly Flight SQL and the job service); its overall status (`""`) follows
//! readiness.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use sluice_engine::BallistaService;
use sluice_flight_sql::{AuthLayer, FLIGHT_SERVICE_PATH, FlightServiceServer, SluiceFlightSql};
use sluice_proto::job_service_server::JobServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;

use super::http::Health;
use super::security::Security;
use super::{ProcessConfig, ProcessError};
use crate::service::JobServiceImpl;

/// The ports the process listens on, bound before anything else starts.
pub(crate) struct Listeners {
    /// The client port.
    pub(crate) client: TcpListener,
    /// The executors' own port, if they have one.
    pub(crate) cluster: Option<TcpListener>,
    /// The HTTP port.
    pub(crate) http: TcpListener,
}

impl Listeners {
    /// Binds the ports `config` names.
    pub(crate) async fn bind(config: &ProcessConfig) -> Result<Self, ProcessError> {
        let client = bind(config.bind).await?;
        let cluster = match config.cluster_bind {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let http = bind(config.http_bind).await?;
        Ok(Self {
            client,
            cluster,
            http,
        })
    }
}

/// Binds `addr`.
async fn bind(addr: SocketAddr) -> Result<TcpListener, ProcessError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ProcessError::Bind { addr, source })
}

/// The gRPC services of the process, and how the ports serving them are secured.
pub(crate) struct Services {
    /// Arrow Flight SQL.
    pub(crate) flight: SluiceFlightSql,
    /// Sluice's job service.
    pub(crate) jobs: JobServiceImpl,
    /// Ballista's scheduler service, for executors.
    pub(crate) ballista: BallistaService,
    /// Logins and TLS.
    pub(crate) security: Security,
    /// What the health and metrics endpoints read.
    pub(crate) health: Health,
    /// The dashboards, when mounted.
    pub(crate) dashboards: Option<sluice_dashboard::DashboardState>,
}

impl Services {
    /// Serves every service on its port until `stop` turns true, then waits for both
    /// servers to finish.
    pub(crate) async fn serve(
        self,
        listeners: Listeners,
        stop: watch::Receiver<bool>,
    ) -> Result<(), ProcessError> {
        let Self {
            flight,
            jobs,
            ballista,
            security,
            health,
            dashboards,
        } = self;
        let (reporter, health_service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        let follow = tokio::spawn(follow_readiness(reporter, health.clone()));
        let http_task = tokio::spawn(super::http::serve(
            listeners.http,
            health.clone(),
            dashboards,
            stop.clone(),
        ));
        let auth_layer = AuthLayer::new(
            security.auth.clone(),
            &[FLIGHT_SERVICE_PATH, "/sluice.v1.JobService/"],
        );
        let mut client_server = tonic::transport::Server::builder();
        if let Some(tls) = security.client_tls {
            client_server = client_server
                .tls_config(tls)
                .map_err(ProcessError::ClientTls)?;
        }
        let mut router = client_server
            .layer(auth_layer)
            .add_service(health_service)
            .add_service(FlightServiceServer::new(flight))
            .add_service(JobServiceServer::new(jobs));
        let cluster_task = match listeners.cluster {
            None => {
                router = router.add_service(ballista);
                None
            }
            Some(cluster_listener) => {
                let mut server = create_grpc_server(&GrpcServerConfig::default());
                if let Some(cluster_tls) = &security.cluster_tls {
                    server = server
                        .tls_config(cluster_tls.server_tls())
                        .map_err(ProcessError::ClusterTlsConfig)?;
                }
                Some(tokio::spawn(
                    server.add_service(ballista).serve_with_incoming_shutdown(
                        sluice_executor::grpc_incoming(cluster_listener),
                        stopped(stop.clone()),
                    ),
                ))
            }
        };
        health.serving.store(true, Ordering::SeqCst);
        let served = router
            .serve_with_incoming_shutdown(
                sluice_executor::grpc_incoming(listeners.client),
                stopped(stop),
            )
            .await;
        follow.abort();
        served.map_err(ProcessError::ClientServer)?;
        http_task
            .await
            .map_err(ProcessError::HttpServerPanicked)?
            .map_err(ProcessError::HttpServer)?;
        if let Some(task) = cluster_task {
            task.await
                .map_err(ProcessError::ClusterServerPanicked)?
                .map_err(ProcessError::ClusterServer)?;
        }
        Ok(())
    }
}

/// How often the gRPC health status is brought in step with readiness.
const GRPC_STATUS_REFRESH: Duration = Duration::from_millis(200);

/// Keeps the gRPC status of service `""` equal to readiness.
async fn follow_readiness(reporter: tonic_health::server::HealthReporter, health: Health) {
    let mut last = None;
    loop {
        let now = health.ready();
        if last != Some(now) {
            let status = if now {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            last = Some(now);
        }
        tokio::time::sleep(GRPC_STATUS_REFRESH).await;
    }
}

/// Resolves when `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    // An error means the sender is gone: nothing can ask to stop any more, so stop now.
    let _ = stop.wait_for(|s| *s).await;
}
