//! The process's ports and the gRPC services on each: the one place where listeners and
//! tonic services are assembled.
//!
//! - client port (`--bind`): Sluice's `JobService` and Arrow Flight SQL, behind the login
//!   layer and optional TLS; also Ballista's scheduler service when executors have no port
//!   of their own;
//! - cluster port (`--cluster-bind`): Ballista's scheduler service, with the cluster's mutual
//!   TLS when a secret is configured.
//!
//! A service added later (gRPC health on the client port, an HTTP server on a port of its
//! own) gets its listener in [`Listeners`] and its place in [`Services::serve`].

use std::net::SocketAddr;

use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use sluice_engine::BallistaService;
use sluice_flight_sql::{AuthLayer, FLIGHT_SERVICE_PATH, FlightServiceServer, SluiceFlightSql};
use sluice_proto::job_service_server::JobServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::security::Security;
use super::{ProcessConfig, ProcessError};
use crate::service::JobServiceImpl;

/// The ports the process listens on, bound before anything else starts.
pub(crate) struct Listeners {
    /// The client port.
    pub(crate) client: TcpListener,
    /// The executors' own port, if they have one.
    pub(crate) cluster: Option<TcpListener>,
}

impl Listeners {
    /// Binds the ports `config` names.
    pub(crate) async fn bind(config: &ProcessConfig) -> Result<Self, ProcessError> {
        let client = bind(config.bind).await?;
        let cluster = match config.cluster_bind {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Self { client, cluster })
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
        } = self;
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
        router
            .serve_with_incoming_shutdown(
                sluice_executor::grpc_incoming(listeners.client),
                stopped(stop),
            )
            .await
            .map_err(ProcessError::ClientServer)?;
        if let Some(task) = cluster_task {
            task.await
                .map_err(ProcessError::ClusterServerPanicked)?
                .map_err(ProcessError::ClusterServer)?;
        }
        Ok(())
    }
}

/// Resolves when `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    // An error means the sender is gone: nothing can ask to stop any more, so stop now.
    let _ = stop.wait_for(|s| *s).await;
}
