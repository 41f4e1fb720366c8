//! Why the scheduler process refused to start or stopped.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the scheduler process refused to start, or failed while serving.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The config file could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// `--insecure-no-auth` was given along with users.
    #[error("--insecure-no-auth conflicts with the users in the config file: drop one")]
    InsecureWithUsers,
    /// The users of the config file could not be set up.
    #[error("the config file's users are unusable")]
    Users(#[source] sluice_flight_sql::AuthError),
    /// The client port would take anyone from other machines.
    #[error(
        "the client port {0} is reachable from other machines but no users are configured: \
         add users to the config file (--config; hashes from `sluice-scheduler hash-password`) \
         or pass --insecure-no-auth for local development"
    )]
    OpenClientPort(SocketAddr),
    /// With users, executors need a port of their own.
    #[error(
        "users are configured, so the client port cannot also serve executors \
         (Ballista's scheduler service takes no logins): give executors their own \
         port with --cluster-bind, and a cluster secret (SLUICE_CLUSTER_SECRET; make \
         one with `sluice-scheduler cluster-secret`) unless that port is loopback-only"
    )]
    SharedClusterPort,
    /// The executors' port would take anyone from other machines.
    #[error(
        "the executors' port {0} is reachable from other machines but no \
         cluster secret is configured: set SLUICE_CLUSTER_SECRET (or \
         --cluster-secret-file) here and on every executor (make one with \
         `sluice-scheduler cluster-secret`), or pass --insecure-no-auth for local \
         development"
    )]
    OpenClusterPort(SocketAddr),
    /// A cluster secret was given without a port of its own for executors.
    #[error(
        "a cluster secret puts executors on mutual TLS, on a port of their own: add \
         --cluster-bind (for example 0.0.0.0:50049)"
    )]
    SecretWithoutClusterPort,
    /// The dashboards would serve data to anyone from other machines.
    #[error(
        "the HTTP port {0} is reachable from other machines and serves dashboards, but no \
         users are configured: add users to the config file, bind --http-bind to a loopback \
         address, or pass --insecure-no-auth for local development"
    )]
    OpenDashboards(SocketAddr),
    /// The scheduler's metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// The catalog the dashboards read could not be reached.
    #[error("cannot reach the catalog for the dashboards")]
    DashboardCatalog(#[source] sluice_catalog::CatalogError),
    /// The HTTP server failed.
    #[error("the HTTP server failed")]
    HttpServer(#[source] std::io::Error),
    /// The HTTP server panicked.
    #[error("the HTTP server panicked")]
    HttpServerPanicked(#[source] tokio::task::JoinError),
    /// TLS on the client port was asked for without a port of its own for executors.
    #[error(
        "TLS on the client port needs --cluster-bind: executors speak plain gRPC to \
         Ballista's scheduler service, which then gets its own (private) port"
    )]
    TlsWithoutClusterPort,
    /// The cluster secret could not be read or used.
    #[error(transparent)]
    ClusterTls(#[from] sluice_cluster_tls::ClusterTlsError),
    /// A TLS certificate or key file could not be read.
    #[error("cannot read the TLS {what} {}", .path.display())]
    TlsFile {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The client port's TLS certificate or key is unusable.
    #[error("the TLS certificate or key is unusable")]
    ClientTls(#[source] tonic::transport::Error),
    /// The cluster's TLS certificate is unusable.
    #[error("the cluster's TLS certificate is unusable")]
    ClusterTlsConfig(#[source] tonic::transport::Error),
    /// A port could not be bound.
    #[error("cannot bind {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The lake argument is not a usable location.
    #[error(transparent)]
    LakeUrl(#[from] sluice_storage::LocationError),
    /// The engine (Ballista's scheduler) did not start.
    #[error(transparent)]
    Engine(#[from] sluice_engine::EngineError),
    /// The lake could not be opened.
    #[error("cannot open the lake")]
    Lake(#[source] sluice_lake::LakeError),
    /// The run store could not be opened.
    #[error("cannot open the run store")]
    RunStore(#[source] crate::service::store::StoreError),
    /// The job manager could not be set up.
    #[error(transparent)]
    Jobs(#[from] crate::service::JobError),
    /// The runs of the run store could not be recovered.
    #[error("cannot recover runs")]
    Recover(#[source] crate::service::JobError),
    /// The client port's gRPC server failed.
    #[error("the client gRPC server failed")]
    ClientServer(#[source] tonic::transport::Error),
    /// The cluster port's gRPC server failed.
    #[error("the cluster gRPC server failed")]
    ClusterServer(#[source] tonic::transport::Error),
    /// The cluster port's gRPC server panicked.
    #[error("the cluster gRPC server panicked")]
    ClusterServerPanicked(#[source] tokio::task::JoinError),
}
