//! Logging and tracing for Sluice processes.
//!
//! [`init`] installs a `tracing` subscriber: logs on stderr filtered by `SLUICE_LOG` (an
//! `EnvFilter`; Ballista's `log` records are bridged in), and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, an OpenTelemetry layer that exports spans over OTLP
//! (gRPC) with `service.name` set to the process's name. Keep the returned [`Telemetry`] alive:
//! dropping it flushes the spans still buffered.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The environment variable that turns OTLP export on.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Flushes and stops span export when dropped.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs logging (and OTLP export when configured) for the process `service`.
/// `default_filter` applies when `SLUICE_LOG` is not set.
pub fn init(service: &'static str, default_filter: &str) -> Telemetry {
    let filter =
        || EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter());
    let endpoint = std::env::var(OTLP_ENDPOINT_ENV)
        .ok()
        .filter(|e| !e.is_empty());
    let provider = endpoint.and_then(|endpoint| {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| eprintln!("warning: OTLP export is off: {e}"))
            .ok()?;
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(service).build())
                .build(),
        )
    });
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service))
            .with_filter(EnvFilter::new("info,sluice=debug"))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    Telemetry { provider }
}
