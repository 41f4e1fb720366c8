//! How the processes behave under an orchestrator: health, readiness, metrics, graceful shutdown.
