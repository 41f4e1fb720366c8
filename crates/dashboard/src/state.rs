//! What the HTTP handlers share: the backends, the loaded dashboards (reloaded when a file
//! or a table changes), the result cache and the login settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use sluice_catalog::Catalog;
use sluice_flight_sql::Authenticator;
use tokio::sync::{Mutex, RwLock};

use crate::backend::{QueryBackend, QueryError, QueryResult, RunsBackend};
use crate::cache::ResultCache;
use crate::load::load_dir;
use crate::query::BoundQuery;
use crate::spec::Dashboard;

/// Settings of the dashboards' server.
pub struct DashboardOptions {
    /// The folder of dashboard files (`--dashboards DIR`), or one file; `None`: no dashboards, the
    /// catalog, runs and SQL pages still work.
    pub dashboards_dir: Option<PathBuf>,
    /// Logins: with an authenticator every page and API call needs a session (the same
    /// users and roles as Flight SQL); without one everything is open (bind to loopback).
    pub auth: Option<Arc<Authenticator>>,
    /// Job runs for the runs page (`None` in the embedded mode: the page says so).
    pub runs: Option<Arc<dyn RunsBackend>>,
    /// The server runs TLS: session cookies are marked `Secure`.
    pub secure_cookies: bool,
    /// Bytes of query results kept in memory.
    pub cache_bytes: usize,
    /// Where the SQL workbench keeps its results and saved queries (the lake's store and
    /// root, with a retention); `None`: neither is kept.
    pub results: Option<crate::workbench::ResultsOptions>,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        Self {
            dashboards_dir: None,
            auth: None,
            runs: None,
            secure_cookies: false,
            cache_bytes: 256 << 20,
            results: None,
        }
    }
}

/// A server without logins asked to listen beyond loopback.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to serve the dashboards without logins on {addr}: configure users, bind a \
     loopback address, or pass --insecure-no-auth"
)]
pub struct OpenBindError {
    /// The address asked for.
    pub addr: SocketAddr,
}

impl DashboardOptions {
    /// The scheduler's rule for open servers: without an authenticator the pages and API
    /// may listen only on a loopback address (unless `insecure_no_auth`).
    pub fn check_bind(
        &self,
        addr: SocketAddr,
        insecure_no_auth: bool,
    ) -> Result<(), OpenBindError> {
        if self.auth.is_some() || insecure_no_auth || addr.ip().is_loopback() {
            Ok(())
        } else {
            Err(OpenBindError { addr })
        }
    }
}

/// What a folder of dashboards gave, at one moment.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) dashboards: Vec<Arc<Dashboard>>,
    /// One message per file that did not load (`file:line:col: path: message` lines).
    pub(crate) errors: Vec<String>,
    pub(crate) warnings: Vec<String>,
    signature: Option<Signature>,
}

impl Loaded {
    pub(crate) fn dashboard(&self, id: &str) -> Option<Arc<Dashboard>> {
        self.dashboards.iter().find(|d| d.id == id).cloned()
    }
}

/// What, when changed, calls for a reload: the files and the tables' versions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    files: Vec<(PathBuf, Option<SystemTime>, u64)>,
    tables: Vec<(String, String, u64)>,
}

pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn QueryBackend>,
    pub(crate) catalog: Arc<dyn Catalog>,
    pub(crate) options: DashboardOptions,
    pub(crate) cache: ResultCache,
    loaded: RwLock<Arc<Loaded>>,
    reloading: Mutex<()>,
}

/// The dashboards' shared state: clone it freely (it is one `Arc`).
#[derive(Clone)]
pub struct DashboardState(pub(crate) Arc<Shared>);

/// What a reload found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadSummary {
    /// Ids of the dashboards that loaded.
    pub loaded: Vec<String>,
    /// Errors of the files that did not (each names its file and line).
    pub errors: Vec<String>,
    /// Datasets over tables that do not exist yet.
    pub warnings: Vec<String>,
}

impl DashboardState {
    /// State over `backend` (SQL) and `catalog` (tables); dashboards load on first use.
    pub fn new(
        backend: Arc<dyn QueryBackend>,
        catalog: Arc<dyn Catalog>,
        options: DashboardOptions,
    ) -> Self {
        let cache = ResultCache::new(options.cache_bytes);
        Self(Arc::new(Shared {
            backend,
            catalog,
            options,
            cache,
            loaded: RwLock::new(Arc::new(Loaded::default())),
            reloading: Mutex::new(()),
        }))
    }

    /// The result cache (for [`ResultCache::invalidate_table`] when a run commits, and
    /// its statistics).
    pub fn cache(&self) -> &ResultCache {
        &self.0.cache
    }

    /// Reads the dashboard folder again now; logs and returns what it found.
    pub async fn reload(&self) -> LoadSummary {
        let _one_at_a_time = self.0.reloading.lock().await;
        let signature = self.signature().await;
        let loaded = self.load(signature).await;
        let summary = LoadSummary {
            loaded: loaded.dashboards.iter().map(|d| d.id.clone()).collect(),
            errors: loaded.errors.clone(),
            warnings: loaded.warnings.clone(),
        };
        *self.0.loaded.write().await = Arc::new(loaded);
        summary
    }

    /// The dashboards, reloaded first if a file or a table changed since the last load.
    pub(crate) async fn current(&self) -> Arc<Loaded> {
        let signature = self.signature().await;
        {
            let loaded = self.0.loaded.read().await;
            if loaded.signature.as_ref() == Some(&signature) {
                return Arc::clone(&loaded);
            }
        }
        let _one_at_a_time = self.0.reloading.lock().await;
        {
            let loaded = self.0.loaded.read().await;
            if loaded.signature.as_ref() == Some(&signature) {
                return Arc::clone(&loaded);
            }
        }
        let loaded = Arc::new(self.load(signature).await);
        *self.0.loaded.write().await = Arc::clone(&loaded);
        loaded
    }

    async fn signature(&self) -> Signature {
        let mut files = Vec::new();
        if let Some(dir) = &self.0.options.dashboards_dir {
            let paths: Vec<PathBuf> = if dir.is_file() {
                vec![dir.clone()]
            } else {
                std::fs::read_dir(dir)
                    .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
                    .unwrap_or_default()
            };
            for path in paths {
                let meta = std::fs::metadata(&path).ok();
                files.push((
                    path,
                    meta.as_ref().and_then(|m| m.modified().ok()),
                    meta.map_or(0, |m| m.len()),
                ));
            }
        }
        files.sort();
        let tables = match self.0.catalog.list_tables().await {
            Ok(tables) => tables
                .into_iter()
                .map(|t| (t.database, t.name, t.version))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "dashboards: cannot list the catalog's tables");
                Vec::new()
            }
        };
        Signature { files, tables }
    }

    async fn load(&self, signature: Signature) -> Loaded {
        let Some(dir) = &self.0.options.dashboards_dir else {
            return Loaded {
                signature: Some(signature),
                ..Loaded::default()
            };
        };
        let report = load_dir(dir, self.0.backend.as_ref()).await;
        let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        for e in &errors {
            tracing::warn!("dashboard not loaded: {e}");
        }
        for w in &report.warnings {
            tracing::info!("dashboard: {w}");
        }
        Loaded {
            dashboards: report.dashboards.into_iter().map(Arc::new).collect(),
            errors,
            warnings: report.warnings,
            signature: Some(signature),
        }
    }

    /// Runs `query` or answers it from the cache; says which.
    pub(crate) async fn run_cached(
        &self,
        query: &BoundQuery,
    ) -> Result<(Arc<QueryResult>, bool), QueryError> {
        let backend = &self.0.backend;
        // Versions first: a commit landing after this makes the next lookup miss, never
        // serves older data under a newer version.
        let versions = backend.table_versions(&query.sql).await?;
        if let Some(hit) = self.0.cache.get(&query.sql, &query.params, &versions) {
            return Ok((hit, true));
        }
        let result = Arc::new(backend.run(&query.sql, query.params.clone()).await?);
        self.0
            .cache
            .put(&query.sql, &query.params, versions, Arc::clone(&result));
        Ok((result, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_servers_stay_on_loopback() {
        let open = DashboardOptions::default();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(open.check_bind(local, false).is_ok());
        assert!(open.check_bind(any, false).is_err());
        assert!(open.check_bind(any, true).is_ok());
    }
}
