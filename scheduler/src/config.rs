//! The scheduler's config file (YAML): who may connect and what they may do, TLS, and
//! limits.
//!
//! ```yaml
//! users:
//!   - name: ana
//!     password_hash: "$argon2id$v=19$..."   # sluice-scheduler hash-password
//!     role: analyst                         # admin | engineer | analyst (default analyst)
//!   - name: eve
//!     password_hash: "$argon2id$v=19$..."
//!     role: engineer
//! token_ttl_seconds: 43200
//! query_timeout_seconds: 300
//! tls:
//!   cert: /etc/sluice/tls.crt
//!   key: /etc/sluice/tls.key
//! ```
//!
//! Keys (all optional; an empty file is the defaults):
//!
//! - `users`: who may log in (Flight `Handshake` with basic auth). Each has
//!   - `name`: the login name, unique;
//!   - `password_hash`: an Argon2 PHC string (`$argon2id$...`), as printed by
//!     `sluice-scheduler hash-password`; the password itself is never stored;
//!   - `role`: what the user may do — `admin` (everything; no call is reserved to it yet),
//!     `engineer` (submit and cancel jobs, read job runs, query) or `analyst` (query and
//!     read job runs: get, list, watch).
//!     Omitted, it is `analyst`: a user submits or cancels jobs only when given `engineer`
//!     or `admin` explicitly. A refused call gets `PERMISSION_DENIED` naming the user,
//!     the role and what the role may do.
//!
//!   Without users the scheduler runs open (every caller may do everything) and only on a
//!   loopback `--bind`, unless `--insecure-no-auth`.
//! - `token_ttl_seconds` (default 43200, 12 h): how long a login's bearer token is valid.
//! - `query_timeout_seconds` (default 300): a Flight SQL query running longer is cancelled
//!   (`--query-timeout-seconds` overrides it).
//! - `tls`: `cert` and `key`, PEM files (relative paths are taken from the config file's
//!   folder) for the client port; `--tls-cert`/`--tls-key` override them.
//! - `staging_roots`: absolute folders and `s3://bucket/prefix` URLs that submitted jobs may
//!   read sources from (symbolic links and `..` resolved; `/srv/staging` does not admit
//!   `/srv/stagingX`). None listed: only the lake itself. Targets always stay in the lake.
//!   Anything else is refused at submit with `INVALID_ARGUMENT` naming the field.
//!
//! Unknown keys, and unknown roles, are refused with the file, line and column. Password
//! checks run on a fixed pool of threads and failed logins back off per user and per client
//! address: see `sluice_flight_sql::auth`.

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
    /// Users allowed to connect, with their roles.
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
    /// Folders and S3 prefixes job sources may read from; none: only the lake.
    #[serde(default)]
    pub staging_roots: Vec<String>,
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
            staging_roots: Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_flight_sql::Role;

    /// Writes `text` to a fresh file and loads it.
    fn load(name: &str, text: &str) -> Result<SchedulerConfig, ConfigError> {
        let dir =
            std::env::temp_dir().join(format!("sluice-config-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("scheduler.yaml");
        std::fs::write(&path, text).expect("write config");
        let loaded = SchedulerConfig::load(&path);
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    #[test]
    fn roles_are_read_and_default_to_analyst() {
        let config = load(
            "roles",
            "users:\n  - name: root\n    password_hash: \"$argon2id$x\"\n    role: admin\n  \
             - name: eve\n    password_hash: \"$argon2id$y\"\n    role: engineer\n  \
             - name: ana\n    password_hash: \"$argon2id$z\"\n",
        )
        .expect("valid config");
        let roles: Vec<(&str, Role)> = config
            .users
            .iter()
            .map(|u| (u.name.as_str(), u.role))
            .collect();
        assert_eq!(
            roles,
            [
                ("root", Role::Admin),
                ("eve", Role::Engineer),
                ("ana", Role::Analyst)
            ]
        );
        assert_eq!(config.token_ttl_seconds, 12 * 3600);
        assert_eq!(
            load("empty", "\n").expect("empty"),
            SchedulerConfig::default()
        );
    }

    #[test]
    fn an_unknown_role_is_named_with_file_and_line() {
        let err = load(
            "bad-role",
            "users:\n  - name: ana\n    password_hash: \"$argon2id$z\"\n  \
             - name: bob\n    password_hash: \"$argon2id$z\"\n    role: superuser\n",
        )
        .expect_err("an unknown role is refused");
        let ConfigError::Parse { line, .. } = &err else {
            panic!("not a parse error: {err}");
        };
        assert_eq!(*line, 6, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("scheduler.yaml:6:")
                && text.contains("superuser")
                && text.contains("admin")
                && text.contains("engineer")
                && text.contains("analyst"),
            "{text}"
        );
    }

    #[test]
    fn a_misspelt_key_is_named_with_file_and_line() {
        let err = load(
            "bad-key",
            "users:\n  - name: ana\n    password_hash: \"$argon2id$z\"\n    rol: admin\n",
        )
        .expect_err("an unknown key is refused");
        let text = err.to_string();
        assert!(
            text.contains("scheduler.yaml:4:") && text.contains("rol"),
            "{text}"
        );
    }
}
