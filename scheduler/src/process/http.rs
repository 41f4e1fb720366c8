//! The HTTP port (`--http-bind`): `/healthz` (the process is alive), `/readyz` (200 only
//! while it can take work: the run store answers, the servers are serving, no shutdown has
//! begun), `/metrics` (Prometheus text, see [`crate::metrics`]) and, with `--dashboards`,
//! the dashboards' pages and API (`sluice_dashboard::router`), behind the same logins as
//! Flight SQL.
//!
//! Health and metrics read no data and accept no command, so they are open; the port's
//! address is refused only when it would serve dashboards to anyone (see `security`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, TextEncoder};
use sluice_dashboard::DashboardState;
use sluice_engine::Engine;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::SchedulerMetrics;
use crate::service::JobManager;

/// What the health and metrics handlers read.
#[derive(Clone)]
pub(crate) struct Health {
    /// The job manager (run store, shutdown state).
    pub(crate) manager: Arc<JobManager>,
    /// The engine (registered executors).
    pub(crate) engine: Arc<Engine>,
    /// The metrics to serve.
    pub(crate) metrics: SchedulerMetrics,
    /// Set once the gRPC servers are serving.
    pub(crate) serving: Arc<AtomicBool>,
}

impl Health {
    /// Whether the process can take work now.
    pub(crate) fn ready(&self) -> bool {
        self.serving.load(Ordering::SeqCst)
            && !self.manager.is_shutting_down()
            && self.manager.store_readable()
    }
}

/// Serves the HTTP port on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    health: Health,
    dashboards: Option<DashboardState>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    if let Some(dashboards) = dashboards {
        app = app.merge(sluice_dashboard::router(dashboards));
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    match health.manager.list() {
        Ok(runs) => health.metrics.set_runs(&runs),
        Err(e) => tracing::warn!(error = %e, "cannot read the runs for /metrics"),
    }
    let executors = health.engine.scheduler().executor_ids().await;
    health.metrics.set_executors_alive(executors.len());
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&health.metrics.registry().gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_string())],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_string())],
            e.to_string().into_bytes(),
        ),
    }
}
