//! Arrow Flight SQL over Sluice's catalog, and the bearer-token authentication shared by the
//! scheduler's client-facing services.
//!
//! [`SluiceFlightSql`] implements arrow-flight's [`FlightSqlService`](arrow_flight::sql::server::FlightSqlService):
//! statements and prepared statements (with bound parameters) planned by DataFusion in
//! sessions a [`QuerySessions`] provides, catalog metadata (`GetCatalogs`, `GetDbSchemas`,
//! `GetTables`, …) and a read-only policy. [`AuthLayer`] guards whole gRPC services with the
//! tokens that [`Authenticator`] hands out at the Flight `Handshake`, and [`authorize`] checks
//! a caller's [`Role`] (every role may query; see [`auth`] for roles, and for how password
//! checks are bounded and failed logins back off).

pub mod auth;
mod metadata;
mod planned;
mod planning;
mod prepared;
pub mod service;
mod streaming;

pub use arrow_flight::flight_service_server::FlightServiceServer;
pub use auth::{
    Action, AuthError, AuthLayer, AuthenticatedUser, Authenticator, LoginLimits, Role, User,
    authorize, hash_password,
};
pub use service::{FlightSqlOptions, QuerySessions, SQL_CATALOG, SluiceFlightSql};

/// gRPC path prefix of the Flight service (Flight SQL runs on it).
pub const FLIGHT_SERVICE_PATH: &str = "/arrow.flight.protocol.FlightService/";

/// Locks `m`, recovering the guard if a thread panicked while holding it. Every critical
/// section guarded this way leaves its data whole (each one is a single insert, remove,
/// lookup or field update, with no invariant spread over several steps), so the data a
/// panicking holder left behind is still consistent; refusing it would only turn one
/// failed task into failures of every later call.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
