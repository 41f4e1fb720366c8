//! `sluice-scheduler`: the Sluice service.
//!
//! The client port serves Sluice's `JobService` (submit and watch jobs) and Arrow Flight SQL
//! (queries from BI tools), behind bearer-token authentication and optional TLS. Executors
//! connect to Ballista's scheduler service, which accepts plans and cancels jobs and so is
//! never open to clients: with a cluster secret it is served on `--cluster-bind` over mutual
//! TLS (see `sluice-cluster-tls`); without one it is unauthenticated and allowed only on a
//! loopback address, and on the client port only when the client port has no logins either.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use clap::{Parser, Subcommand};
use sluice_cluster_tls::ClusterTls;
use sluice_flight_sql::{
    AuthLayer, Authenticator, FLIGHT_SERVICE_PATH, FlightServiceServer, FlightSqlOptions,
    SluiceFlightSql,
};
use sluice_proto::job_service_server::JobServiceServer;
use sluice_scheduler::config::SchedulerConfig;
use sluice_scheduler::engine::{Engine, EngineOptions};
use sluice_scheduler::query::LakeSessions;
use sluice_scheduler::runner::Lake;
use sluice_scheduler::service::{JobManager, JobServiceImpl, RunStore};
use tonic::transport::{Identity, ServerTlsConfig};

/// Runs the Sluice scheduler.
#[derive(Parser)]
#[command(name = "sluice-scheduler", version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address of the client port: JobService and Flight SQL (and Ballista's scheduler
    /// service for executors, unless --cluster-bind is given).
    #[arg(long, env = "SLUICE_BIND", default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
    /// Separate address for executors (Ballista's scheduler service). Needed with TLS, with
    /// users and with a cluster secret.
    #[arg(long, env = "SLUICE_CLUSTER_BIND")]
    cluster_bind: Option<SocketAddr>,
    /// File holding the cluster secret shared with the executors (mutual TLS on the cluster
    /// port); it may also be given as SLUICE_CLUSTER_SECRET.
    #[arg(long, env = "SLUICE_CLUSTER_SECRET_FILE")]
    cluster_secret_file: Option<PathBuf>,
    /// URL executors and this process reach Ballista's service at (default: http://<the
    /// cluster port>).
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
    /// Config file (YAML): users and password hashes, TLS files, query time limit.
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    /// Accept clients without logging in, and executors without the cluster secret, on any
    /// address. For local development only.
    #[arg(long)]
    insecure_no_auth: bool,
    /// TLS certificate (PEM) for the client port; overrides the config file.
    #[arg(long, env = "SLUICE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the client port; overrides the config file.
    #[arg(long, env = "SLUICE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds a SQL query may run before it is cancelled; overrides the config file.
    #[arg(long)]
    query_timeout_seconds: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the hash of a password for the config file's `users` (the password is read
    /// from SLUICE_PASSWORD, else from the first line of standard input).
    HashPassword,
    /// Prints a new random cluster secret (for SLUICE_CLUSTER_SECRET or a secret file).
    ClusterSecret,
}

fn lake_url(arg: &str) -> Result<String> {
    Ok(sluice_storage::lake_url(arg)?)
}

/// Who may connect: an authenticator when users are configured, none when running open is
/// allowed (--insecure-no-auth, or a loopback-only port).
fn authenticator(args: &Args, config: &SchedulerConfig) -> Result<Option<Arc<Authenticator>>> {
    if !config.users.is_empty() {
        if args.insecure_no_auth {
            bail!("--insecure-no-auth conflicts with the users in the config file: drop one");
        }
        let ttl = Duration::from_secs(config.token_ttl_seconds.max(1));
        let auth = Authenticator::new(config.users.clone(), ttl)
            .context("the config file's users are unusable")?;
        return Ok(Some(Arc::new(auth)));
    }
    if args.insecure_no_auth {
        tracing::warn!(bind = %args.bind, "--insecure-no-auth: anyone who reaches the port can query and submit jobs");
        return Ok(None);
    }
    if args.bind.ip().is_loopback() {
        tracing::info!("no users configured: accepting clients without login on loopback only");
        return Ok(None);
    }
    bail!(
        "the client port {} is reachable from other machines but no users are configured: \
         add users to the config file (--config; hashes from `sluice-scheduler hash-password`) \
         or pass --insecure-no-auth for local development",
        args.bind
    )
}

/// How executors reach Ballista's scheduler service: the cluster's mutual TLS when a secret
/// is configured, else plain gRPC where that is safe.
fn cluster_tls(args: &Args, with_users: bool) -> Result<Option<ClusterTls>> {
    let secret = sluice_cluster_tls::secret_from(args.cluster_secret_file.as_deref())?;
    let cluster_addr = args.cluster_bind.unwrap_or(args.bind);
    let Some(secret) = secret else {
        if with_users && args.cluster_bind.is_none() {
            bail!(
                "users are configured, so the client port cannot also serve executors \
                 (Ballista's scheduler service takes no logins): give executors their own \
                 port with --cluster-bind, and a cluster secret (SLUICE_CLUSTER_SECRET; make \
                 one with `sluice-scheduler cluster-secret`) unless that port is loopback-only"
            );
        }
        if !cluster_addr.ip().is_loopback() && !args.insecure_no_auth {
            bail!(
                "the executors' port {cluster_addr} is reachable from other machines but no \
                 cluster secret is configured: set SLUICE_CLUSTER_SECRET (or \
                 --cluster-secret-file) here and on every executor (make one with \
                 `sluice-scheduler cluster-secret`), or pass --insecure-no-auth for local \
                 development"
            );
        }
        if !cluster_addr.ip().is_loopback() {
            tracing::warn!(%cluster_addr, "--insecure-no-auth: anyone who reaches the executors' port can run plans");
        }
        return Ok(None);
    };
    if args.cluster_bind.is_none() {
        bail!(
            "a cluster secret puts executors on mutual TLS, on a port of their own: add \
             --cluster-bind (for example 0.0.0.0:50049)"
        );
    }
    Ok(Some(ClusterTls::from_secret(&secret)?))
}

fn tls(args: &Args, config: &SchedulerConfig) -> Result<Option<ServerTlsConfig>> {
    let files = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => config.tls.as_ref().map(|t| (t.cert.clone(), t.key.clone())),
    };
    let Some((cert, key)) = files else {
        return Ok(None);
    };
    let cert_pem = std::fs::read(&cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?;
    let key_pem = std::fs::read(&key)
        .with_context(|| format!("cannot read the TLS key {}", key.display()))?;
    Ok(Some(
        ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem)),
    ))
}

async fn serve(args: Args) -> Result<()> {
    let config = match &args.config {
        Some(path) => SchedulerConfig::load(path)?,
        None => SchedulerConfig::default(),
    };
    let auth = authenticator(&args, &config)?;
    let cluster_tls = cluster_tls(&args, auth.is_some())?;
    let tls = tls(&args, &config)?;
    if tls.is_some() && args.cluster_bind.is_none() {
        bail!(
            "TLS on the client port needs --cluster-bind: executors speak plain gRPC to \
             Ballista's scheduler service, which then gets its own (private) port"
        );
    }
    let partitions = args
        .partitions
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let cluster_addr = args.cluster_bind.unwrap_or(args.bind);
    let own_url = args
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("http://{cluster_addr}"));
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot bind {}", args.bind))?;
    let cluster_listener = match args.cluster_bind {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind {addr}"))?,
        ),
        None => None,
    };
    let mut options = EngineOptions::new(partitions);
    options.executor_timeout_seconds = args.executor_timeout_seconds;
    options.cluster_tls = cluster_tls.clone();
    let (engine, ballista) = Engine::for_service(options, &own_url).await?;
    let engine = Arc::new(engine);
    let lake = Lake::open(&engine, &lake_url(&args.lake)?).context("cannot open the lake")?;
    let catalogs = Arc::new(lake.catalogs(args.catalog));
    let store = RunStore::open(&args.data_dir).context("cannot open the run store")?;
    let sessions = Arc::new(LakeSessions::new(
        Arc::clone(&engine),
        Arc::clone(&catalogs),
    ));
    let manager = JobManager::new(engine, lake, catalogs, store, &config.staging_roots)?;
    let recovered = manager.recover().context("cannot recover runs")?;
    let timeout = args
        .query_timeout_seconds
        .unwrap_or(config.query_timeout_seconds);
    let flight = SluiceFlightSql::new(
        sessions,
        auth.clone(),
        FlightSqlOptions {
            query_timeout: Duration::from_secs(timeout.max(1)),
            ..FlightSqlOptions::default()
        },
    );
    tracing::info!(
        bind = %args.bind,
        cluster_bind = %cluster_addr,
        lake = %args.lake,
        data_dir = %args.data_dir.display(),
        auth = auth.is_some(),
        tls = tls.is_some(),
        cluster_tls = cluster_tls.is_some(),
        recovered,
        "sluice-scheduler listening: JobService and Flight SQL"
    );
    println!("sluice-scheduler listening on {}", args.bind);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let auth_layer = AuthLayer::new(auth, &[FLIGHT_SERVICE_PATH, "/sluice.v1.JobService/"]);
    let mut client_server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        client_server = client_server
            .tls_config(tls)
            .context("the TLS certificate or key is unusable")?;
    }
    let mut router = client_server
        .layer(auth_layer)
        .add_service(FlightServiceServer::new(flight))
        .add_service(JobServiceServer::new(JobServiceImpl::new(manager)));
    let cluster_task = match cluster_listener {
        None => {
            router = router.add_service(ballista);
            None
        }
        Some(cluster_listener) => {
            let rx = stop_rx.clone();
            let mut server = create_grpc_server(&GrpcServerConfig::default());
            if let Some(cluster_tls) = &cluster_tls {
                server = server
                    .tls_config(cluster_tls.server_tls())
                    .context("the cluster's TLS certificate is unusable")?;
            }
            Some(tokio::spawn(
                server.add_service(ballista).serve_with_incoming_shutdown(
                    sluice_executor::grpc_incoming(cluster_listener),
                    stopped(rx),
                ),
            ))
        }
    };
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    router
        .serve_with_incoming_shutdown(sluice_executor::grpc_incoming(listener), stopped(stop_rx))
        .await
        .context("the client gRPC server failed")?;
    if let Some(task) = cluster_task {
        task.await
            .context("the cluster gRPC server panicked")?
            .context("the cluster gRPC server failed")?;
    }
    Ok(())
}

fn hash_password() -> Result<()> {
    let password = match std::env::var("SLUICE_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        bail!("empty password: set SLUICE_PASSWORD or pipe the password in");
    }
    println!("{}", sluice_flight_sql::hash_password(&password)?);
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::HashPassword) => return hash_password(),
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
    runtime.block_on(serve(args))
}
