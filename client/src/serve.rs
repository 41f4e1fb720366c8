//! `sluice serve`: the dashboards, catalog, runs and SQL pages over a lake, with panel
//! queries running on an embedded cluster through the engine's [`LakeSessions`] (the same
//! sessions the scheduler's Flight SQL service uses).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sluice_catalog::Catalog;
use sluice_dashboard::{
    DashboardOptions, DashboardState, QueryError, ResultsOptions, Retention, RunSummary,
    RunsBackend, SessionsBackend,
};
use sluice_engine::{Engine, LakeSessions};
use sluice_flight_sql::{Authenticator, QuerySessions, User};
use sluice_lake::Lake;

use crate::LakeArgs;

/// The dashboards used when `--dashboards` is not given, if the file exists (the
/// example that README command 1 fills).
const DEFAULT_DASHBOARDS: &str = "examples/spotify/dashboard.yaml";

/// How long a login (session cookie) lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// What `sluice serve` was asked to do.
pub(crate) struct ServeArgs {
    /// Lake and catalog.
    pub(crate) lake: LakeArgs,
    /// A dashboards folder or file; `None`: the example if it exists.
    pub(crate) dashboards: Option<PathBuf>,
    /// Address of the HTTP server.
    pub(crate) http_bind: SocketAddr,
    /// A YAML file with `users:` (as in the scheduler's config file).
    pub(crate) users: Option<PathBuf>,
    /// Task slots of the embedded executor.
    pub(crate) partitions: Option<usize>,
    /// How long, and how many, SQL workbench results are kept in the lake.
    pub(crate) results_retention: Retention,
}

/// The `users:` of a YAML file; other keys (a whole scheduler config) are ignored.
#[derive(serde::Deserialize)]
struct UsersFile {
    #[serde(default)]
    users: Vec<User>,
}

/// [`LakeSessions`] as the dashboards' [`SessionsBackend`] asks for them.
struct EmbeddedSessions(LakeSessions);

#[async_trait::async_trait]
impl QuerySessions for EmbeddedSessions {
    async fn session(&self, query_id: &str) -> Result<SessionContext, DataFusionError> {
        self.0.session(query_id).await
    }

    async fn cancel(&self, query_id: &str) {
        self.0.cancel(query_id).await;
    }
}

/// The runs page without a job service: the run that wrote each table's current version,
/// read from the catalog (the embedded mode keeps no run history).
struct LastRunPerTable(Arc<dyn Catalog>);

#[async_trait::async_trait]
impl RunsBackend for LastRunPerTable {
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunSummary>, QueryError> {
        let tables = self
            .0
            .list_tables()
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string()))?;
        let mut runs: Vec<RunSummary> = tables
            .into_iter()
            .filter_map(|t| {
                let id = t.run_id?;
                Some(RunSummary {
                    id,
                    job: format!(
                        "wrote {}.{} version {} (the last run per table: the embedded mode \
                         keeps no run history)",
                        t.database, t.name, t.version
                    ),
                    state: "SUCCEEDED".to_string(),
                    started_at: None,
                    finished_at: Some(t.updated_at),
                    progress: None,
                    error: None,
                })
            })
            .collect();
        // Newest first; RFC 3339 times in one zone sort as text.
        runs.sort_by(|a, b| b.finished_at.cmp(&a.finished_at));
        runs.truncate(limit);
        Ok(runs)
    }
}

/// Serves the pages until Ctrl-C (or SIGTERM).
pub(crate) async fn serve(args: ServeArgs) -> Result<()> {
    let auth = authenticator(args.users.as_deref())?;
    if auth.is_none() && !args.http_bind.ip().is_loopback() {
        bail!(
            "refusing to serve {} without logins: anyone who reaches it could query the lake. \
             Bind a loopback address (127.0.0.1) or give --users FILE",
            args.http_bind
        );
    }
    let dashboards = args.dashboards.clone().or_else(|| {
        let example = Path::new(DEFAULT_DASHBOARDS);
        example.exists().then(|| example.to_path_buf())
    });
    if let Some(path) = &dashboards
        && !path.exists()
    {
        bail!("--dashboards {}: no such file or folder", path.display());
    }

    let partitions = args
        .partitions
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let engine = Arc::new(
        Engine::embedded(partitions)
            .await
            .context("cannot start the embedded cluster")?,
    );
    let lake = Lake::open(engine.as_ref(), &crate::lake_url(&args.lake.lake)?)
        .context("cannot open the lake")?;
    let catalogs = Arc::new(lake.catalogs(args.lake.catalog));
    let catalog = catalogs
        .get(None)
        .await
        .context("cannot open the catalog")?;
    // The embedded cluster's executor shares this process and its cores: a query gains
    // nothing from a Ballista job here (as `sluice query`, which runs every query in its own
    // DataFusion session), so every query runs in the serving session.
    let sessions = LakeSessions::new(Arc::clone(&engine), Arc::clone(&catalogs))
        .with_local_query_max_bytes(u64::MAX);
    let backend = Arc::new(SessionsBackend::new(
        Arc::new(EmbeddedSessions(sessions)),
        Arc::clone(&catalog),
    ));
    let runs: Arc<dyn RunsBackend> = Arc::new(LastRunPerTable(Arc::clone(&catalog)));
    let state = DashboardState::new(
        backend,
        catalog,
        DashboardOptions {
            dashboards_dir: dashboards.clone(),
            auth,
            runs: Some(runs),
            results: Some(ResultsOptions::new(
                Arc::clone(&lake.store),
                lake.path(),
                args.results_retention,
            )),
            ..DashboardOptions::default()
        },
    );
    let summary = state.reload().await;
    for e in &summary.errors {
        eprintln!("warning: dashboard not loaded: {e}");
    }
    for w in &summary.warnings {
        eprintln!("note: {w}");
    }

    let listener = tokio::net::TcpListener::bind(args.http_bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_bind))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    match &dashboards {
        Some(path) => outln!(
            "serving {} dashboard(s) from {} over the lake {}",
            summary.loaded.len(),
            path.display(),
            args.lake.lake
        ),
        None => outln!(
            "serving the lake {} (no dashboards: give --dashboards DIR)",
            args.lake.lake
        ),
    }
    outln!("open http://{addr}  (Ctrl-C stops)");
    let app = sluice_dashboard::router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("the HTTP server failed")?;
    outln!("stopped");
    Ok(())
}

/// Logins from the users file, if one is given and lists users.
fn authenticator(users: Option<&Path>) -> Result<Option<Arc<Authenticator>>> {
    let Some(path) = users else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: UsersFile = serde_yaml::from_str(&text)
        .with_context(|| format!("{}: not a YAML file with `users:`", path.display()))?;
    if file.users.is_empty() {
        bail!("{}: lists no users", path.display());
    }
    let auth = Authenticator::new(file.users, SESSION_TTL)
        .with_context(|| format!("{}: unusable users", path.display()))?;
    Ok(Some(Arc::new(auth)))
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("warning: cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                eprintln!("warning: cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
