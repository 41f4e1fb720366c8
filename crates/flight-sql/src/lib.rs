//! Arrow Flight SQL over Sluice's catalog, and the bearer-token authentication shared by the
//! scheduler's client-facing services.
//!
//! [`SluiceFlightSql`] implements arrow-flight's [`FlightSqlService`](arrow_flight::sql::server::FlightSqlService):
//! statements and prepared statements (with bound parameters) planned by DataFusion in
//! sessions a [`QuerySessions`] provides, catalog metadata (`GetCatalogs`, `GetDbSchemas`,
//! `GetTables`, …) and a read-only policy. [`AuthLayer`] guards whole gRPC services with the
//! tokens that [`Authenticator`] hands out at the Flight `Handshake`.

pub mod auth;
mod metadata;
pub mod service;

pub use arrow_flight::flight_service_server::FlightServiceServer;
pub use auth::{AuthError, AuthLayer, AuthenticatedUser, Authenticator, User, hash_password};
pub use service::{FlightSqlOptions, QuerySessions, SQL_CATALOG, SluiceFlightSql};

/// gRPC path prefix of the Flight service (Flight SQL runs on it).
pub const FLIGHT_SERVICE_PATH: &str = "/arrow.flight.protocol.FlightService/";
