//! The scheduler's config file (YAML): who may connect, TLS, and query limits.
//!
//! ```yaml
//! users:
//!   - name: analyst
//!     password_hash: "$argon2id$v=19$..."   # sluice-scheduler hash-password
//! token_ttl_seconds: 43200
//! query_timeout_seconds: 300
//! tls:
//!   cert: /etc/sluice/tls.crt
//!   key: /etc/sluice/tls.key
//! ```

use std::path::{Path, PathBuf};

use sluice_flight_sql::User;

/// Errors reading the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line of the mistake.
        line: usize,
        /// 1-based column of the mistake.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// TLS certificate and key files (PEM).
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Everything the config file can set.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Users allowed to query and submit jobs.
    #[serde(default)]
    pub users: Vec<User>,
    /// Seconds a login token stays valid.
    #[serde(default = "default_token_ttl")]
    pub token_ttl_seconds: u64,
    /// Seconds a SQL query may run before it is cancelled.
    #[serde(default = "default_query_timeout")]
    pub query_timeout_seconds: u64,
    /// TLS for the client-facing port.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

fn default_token_ttl() -> u64 {
    12 * 3600
}

fn default_query_timeout() -> u64 {
    300
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            token_ttl_seconds: default_token_ttl(),
            query_timeout_seconds: default_query_timeout(),
            tls: None,
        }
    }
}

impl SchedulerConfig {
    /// Reads the config file at `path`; relative TLS paths are taken from its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut config: Self = if text.trim().is_empty() {
            Self::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| {
                let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                ConfigError::Parse {
                    path: shown.clone(),
                    line,
                    column,
                    message: e.to_string(),
                }
            })?
        };
        if let (Some(tls), Some(dir)) = (&mut config.tls, path.parent()) {
            tls.cert = dir.join(&tls.cert);
            tls.key = dir.join(&tls.key);
        }
        Ok(config)
    }
}
