//! Health and metrics for an orchestrator, on one port: HTTP `/healthz`, `/readyz`,
//! `/metrics` (Prometheus text) and gRPC `grpc.health.v1.Health`.
//!
//! One listener serves both protocols: axum serves HTTP/1.1 and HTTP/2 (gRPC is HTTP/2 with
//! prior knowledge), and tonic's health service is mounted as axum routes. So a container
//! exposes one probe port, and kubelet's `httpGet` and `grpc` probes and Prometheus all
//! reach it. Nothing here reads data or accepts a command: a process may serve it on an
//! open address.
//!
//! Any Sluice process can use it: give [`serve`] a readiness check and a `prometheus`
//! registry. The gRPC overall status (service `""`) follows the readiness check.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

/// Says whether the process can take work now.
pub type ReadinessCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// How often the gRPC health status is brought in step with the readiness check.
const GRPC_STATUS_REFRESH: Duration = Duration::from_millis(200);

/// What the HTTP handlers read.
#[derive(Clone)]
struct Endpoints {
    ready: ReadinessCheck,
    registry: Registry,
}

/// Serves the health and metrics endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    ready: ReadinessCheck,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let follow = tokio::spawn(follow_readiness(reporter, ready.clone()));
    let http = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Endpoints { ready, registry });
    let app = tonic::service::Routes::new(health_service)
        .prepare()
        .into_axum_router()
        .merge(http);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    follow.abort();
    served
}

/// Keeps the gRPC status of service `""` equal to the readiness check.
async fn follow_readiness(reporter: tonic_health::server::HealthReporter, ready: ReadinessCheck) {
    let mut last = false;
    loop {
        let now = ready();
        if now != last {
            let status = if now {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            last = now;
        }
        tokio::time::sleep(GRPC_STATUS_REFRESH).await;
    }
}

async fn readyz(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    if (endpoints.ready)() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&endpoints.registry.gather(), &mut body) {
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
