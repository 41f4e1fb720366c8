//! The `sluice-scheduler` command line. Every flag can also be set from the environment, as
//! `SLUICE_<FLAG>` (`--cluster-bind` is `SLUICE_CLUSTER_BIND`); secrets come only from the
//! environment or files.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::SchedulerConfig;
use crate::process::{ProcessConfig, ProcessError};

/// Runs the Sluice scheduler.
#[derive(Debug, Parser)]
#[command(name = "sluice-scheduler", version, about)]
pub struct Args {
    /// A one-off command instead of running the scheduler.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Address of the client port: JobService and Flight SQL (and Ballista's scheduler
    /// service for executors, unless --cluster-bind is given).
    #[arg(long, env = "SLUICE_BIND", default_value = "127.0.0.1:50050")]
    pub bind: SocketAddr,
    /// Separate address for executors (Ballista's scheduler service). Needed with TLS, with
    /// users and with a cluster secret.
    #[arg(long, env = "SLUICE_CLUSTER_BIND")]
    pub cluster_bind: Option<SocketAddr>,
    /// File holding the cluster secret shared with the executors (mutual TLS on the cluster
    /// port); it may also be given as SLUICE_CLUSTER_SECRET.
    #[arg(long, env = "SLUICE_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// URL executors and this process reach Ballista's service at (default: http://<the
    /// cluster port>).
    #[arg(long, env = "SLUICE_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// The data lake: a folder or file:// URL (the embedded catalog lives inside it).
    #[arg(long, env = "SLUICE_LAKE", default_value = "lake")]
    pub lake: String,
    /// Folder for the scheduler's own state (job runs).
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "sluice-data")]
    pub data_dir: PathBuf,
    /// Target partitions of job plans (default: the number of cores).
    #[arg(long, env = "SLUICE_PARTITIONS")]
    pub partitions: Option<usize>,
    /// Memory the DataFusion operators of queries and jobs may hold in this process
    /// (results gathered here, queries answered here) and the budget job plans are made for:
    /// a hash join whose build side is estimated above a quarter of it is planned as a
    /// sort-merge join, which spills. A size: 2GiB, 512MiB, 0.5GB or bytes; 0 for no limit
    /// (default: 70% of the process's cgroup v2 memory.max, else of the host's memory).
    /// Executors enforce their own --memory-limit.
    #[arg(long, env = "SLUICE_MEMORY_LIMIT", value_name = "SIZE",
          value_parser = sluice_engine::session::parse_memory_limit)]
    pub memory_limit: Option<sluice_engine::session::MemoryLimit>,
    /// Runs that may run at once; the rest wait, first come first served (runs of one job,
    /// or into one table, always run one after the other).
    #[arg(long, env = "SLUICE_MAX_CONCURRENT_RUNS", default_value_t = 4)]
    pub max_concurrent_runs: usize,
    /// SQL queries whose tables hold at most this much (the catalog's sizes of their current
    /// versions, in all) run in this process without a cluster job; larger ones run on the
    /// executors. A size: 64MiB, 1GB or bytes; 0 sends every query that reads a table to
    /// the executors.
    #[arg(long, env = "SLUICE_LOCAL_QUERY_MAX_BYTES", value_name = "SIZE", default_value = "64MiB",
          value_parser = sluice_engine::session::parse_size)]
    pub local_query_max_bytes: u64,
    /// Seconds without a heartbeat before an executor is declared dead.
    #[arg(long, env = "SLUICE_EXECUTOR_TIMEOUT_SECONDS", default_value_t = 30)]
    pub executor_timeout_seconds: u64,
    /// Catalog for targets that name none, and for queries: `embedded` (in the lake) or
    /// `glue` (AWS Glue; region, credentials and endpoint from the standard AWS settings).
    #[arg(long, env = "SLUICE_CATALOG", default_value = "embedded")]
    pub catalog: sluice_catalog::CatalogKind,
    /// Config file (YAML): users and password hashes, TLS files, query time limit.
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Accept clients without logging in, and executors without the cluster secret, on any
    /// address. For local development only.
    #[arg(long, env = "SLUICE_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// TLS certificate (PEM) for the client port; overrides the config file.
    #[arg(long, env = "SLUICE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the client port; overrides the config file.
    #[arg(long, env = "SLUICE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a SQL query may run before it is cancelled; overrides the config file.
    #[arg(long, env = "SLUICE_QUERY_TIMEOUT_SECONDS")]
    pub query_timeout_seconds: Option<u64>,
    /// Address of the HTTP port: /healthz, /readyz, /metrics, and the dashboards with
    /// --dashboards (which serve data: without users, loopback only unless
    /// --insecure-no-auth).
    #[arg(long, env = "SLUICE_HTTP_BIND", default_value = "127.0.0.1:8080")]
    pub http_bind: SocketAddr,
    /// Folder of dashboard files (or one file) to serve on the HTTP port, with the catalog,
    /// runs and SQL pages.
    #[arg(long, env = "SLUICE_DASHBOARDS")]
    pub dashboards: Option<PathBuf>,
    /// How long, and how many, SQL workbench results are kept in the lake
    /// (`_sluice/results/`): an age (30m, 12h, 7d), a count (500), or both (7d,500).
    #[arg(long, env = "SLUICE_RESULTS_RETENTION", default_value = "7d,1000")]
    pub results_retention: sluice_dashboard::Retention,
    /// Seconds a SIGTERM waits for committing runs to finish before the process exits.
    #[arg(long, env = "SLUICE_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,
}

/// One-off commands of `sluice-scheduler`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prints the hash of a password for the config file's `users` (the password is read
    /// from SLUICE_PASSWORD, else from the first line of standard input).
    HashPassword,
    /// Prints a new random cluster secret (for SLUICE_CLUSTER_SECRET or a secret file).
    ClusterSecret,
}

impl Args {
    /// The process's settings: these flags, and the config file they name.
    pub fn process_config(self) -> Result<ProcessConfig, ProcessError> {
        let file = match &self.config {
            Some(path) => SchedulerConfig::load(path)?,
            None => SchedulerConfig::default(),
        };
        Ok(ProcessConfig {
            bind: self.bind,
            cluster_bind: self.cluster_bind,
            cluster_secret_file: self.cluster_secret_file,
            advertise_url: self.advertise_url,
            lake: self.lake,
            data_dir: self.data_dir,
            partitions: self.partitions,
            memory_limit: self.memory_limit,
            executor_timeout_seconds: self.executor_timeout_seconds,
            max_concurrent_runs: self.max_concurrent_runs,
            local_query_max_bytes: self.local_query_max_bytes,
            catalog: self.catalog,
            file,
            insecure_no_auth: self.insecure_no_auth,
            tls_files: self.tls_cert.zip(self.tls_key),
            query_timeout_seconds: self.query_timeout_seconds,
            http_bind: self.http_bind,
            dashboards: self.dashboards,
            results_retention: self.results_retention,
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace_seconds),
        })
    }
}

/// Errors of `hash-password`.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Standard input could not be read.
    #[error("cannot read the password from standard input")]
    Read(#[source] std::io::Error),
    /// No password was given.
    #[error("empty password: set SLUICE_PASSWORD or pipe the password in")]
    Empty,
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] sluice_flight_sql::AuthError),
}

/// The hash of the password in SLUICE_PASSWORD, else on the first line of `input`, for the
/// config file's `users`. The password itself is never printed.
pub fn hash_password(input: impl BufRead) -> Result<String, PasswordError> {
    let password = match std::env::var("SLUICE_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let mut line = String::new();
            let mut input = input;
            input.read_line(&mut line).map_err(PasswordError::Read)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    Ok(sluice_flight_sql::hash_password(&password)?)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every flag of the scheduler can be set from the environment, as SLUICE_<FLAG>.
    #[test]
    fn every_flag_has_its_environment_variable() {
        let command = Args::command();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let expected = format!("SLUICE_{}", long.to_uppercase().replace('-', "_"));
            let env = arg.get_env().and_then(|e| e.to_str());
            assert_eq!(env, Some(expected.as_str()), "--{long}");
        }
    }
}
