//! Who may reach each port: logins on the client port, the cluster's mutual TLS on the
//! executors' port, TLS on the client port, and the set-ups refused because they would leave
//! a port open to anyone.

use std::sync::Arc;
use std::time::Duration;

use sluice_cluster_tls::ClusterTls;
use sluice_flight_sql::Authenticator;
use tonic::transport::{Identity, ServerTlsConfig};

use super::{ProcessConfig, ProcessError};

/// How every port of the process is secured.
pub(crate) struct Security {
    /// Logins on the client port (none: clients need not log in).
    pub(crate) auth: Option<Arc<Authenticator>>,
    /// The cluster's mutual TLS on the executors' port (none: plain gRPC).
    pub(crate) cluster_tls: Option<ClusterTls>,
    /// TLS on the client port.
    pub(crate) client_tls: Option<ServerTlsConfig>,
}

impl Security {
    /// The security `config` asks for, or why it would leave a port open.
    pub(crate) fn from_config(config: &ProcessConfig) -> Result<Self, ProcessError> {
        let auth = authenticator(config)?;
        let cluster_tls = cluster_tls(config, auth.is_some())?;
        let client_tls = client_tls(config)?;
        if client_tls.is_some() && config.cluster_bind.is_none() {
            return Err(ProcessError::TlsWithoutClusterPort);
        }
        // Health and metrics may be open; dashboards serve data.
        if config.dashboards.is_some()
            && auth.is_none()
            && !config.insecure_no_auth
            && !config.http_bind.ip().is_loopback()
        {
            return Err(ProcessError::OpenDashboards(config.http_bind));
        }
        Ok(Self {
            auth,
            cluster_tls,
            client_tls,
        })
    }
}

/// Who may connect: an authenticator when users are configured, none when running open is
/// allowed (--insecure-no-auth, or a loopback-only port).
fn authenticator(config: &ProcessConfig) -> Result<Option<Arc<Authenticator>>, ProcessError> {
    let users = &config.file.users;
    if !users.is_empty() {
        if config.insecure_no_auth {
            return Err(ProcessError::InsecureWithUsers);
        }
        let ttl = Duration::from_secs(config.file.token_ttl_seconds.max(1));
        let auth = Authenticator::new(users.clone(), ttl).map_err(ProcessError::Users)?;
        return Ok(Some(Arc::new(auth)));
    }
    if config.insecure_no_auth {
        tracing::warn!(bind = %config.bind, "--insecure-no-auth: anyone who reaches the port can query and submit jobs");
        return Ok(None);
    }
    if config.bind.ip().is_loopback() {
        tracing::info!("no users configured: accepting clients without login on loopback only");
        return Ok(None);
    }
    Err(ProcessError::OpenClientPort(config.bind))
}

/// How executors reach Ballista's scheduler service: the cluster's mutual TLS when a secret
/// is configured, else plain gRPC where that is safe.
fn cluster_tls(
    config: &ProcessConfig,
    with_users: bool,
) -> Result<Option<ClusterTls>, ProcessError> {
    let secret = sluice_cluster_tls::secret_from(config.cluster_secret_file.as_deref())?;
    let cluster_addr = config.cluster_addr();
    let Some(secret) = secret else {
        if with_users && config.cluster_bind.is_none() {
            return Err(ProcessError::SharedClusterPort);
        }
        if !cluster_addr.ip().is_loopback() && !config.insecure_no_auth {
            return Err(ProcessError::OpenClusterPort(cluster_addr));
        }
        if !cluster_addr.ip().is_loopback() {
            tracing::warn!(%cluster_addr, "--insecure-no-auth: anyone who reaches the executors' port can run plans");
        }
        return Ok(None);
    };
    if config.cluster_bind.is_none() {
        return Err(ProcessError::SecretWithoutClusterPort);
    }
    Ok(Some(ClusterTls::from_secret(&secret)?))
}

/// TLS on the client port, from the flags' files or else the config file's.
fn client_tls(config: &ProcessConfig) -> Result<Option<ServerTlsConfig>, ProcessError> {
    let files = config.tls_files.clone().or_else(|| {
        config
            .file
            .tls
            .as_ref()
            .map(|t| (t.cert.clone(), t.key.clone()))
    });
    let Some((cert, key)) = files else {
        return Ok(None);
    };
    let read = |what: &'static str, path: std::path::PathBuf| {
        std::fs::read(&path).map_err(|source| ProcessError::TlsFile { what, path, source })
    };
    let cert_pem = read("certificate", cert)?;
    let key_pem = read("key", key)?;
    Ok(Some(
        ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem)),
    ))
}
