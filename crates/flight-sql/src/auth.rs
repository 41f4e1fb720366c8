//! Users, password hashes and bearer tokens, shared by every client-facing service.
//!
//! A client logs in once with HTTP basic credentials (the Flight `Handshake`) and gets a
//! random bearer token; every later call carries `authorization: Bearer <token>`.
//! [`AuthLayer`] checks that header for whole gRPC services (Flight SQL and Sluice's job
//! service) before any handler runs.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// A user allowed to connect, with the PHC-format hash of their password
/// (`$argon2id$...`, as printed by `sluice-scheduler hash-password`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Hash of the password in the PHC string format.
    pub password_hash: String,
}

/// Why a login or a token was refused, or a user list is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A configured hash cannot be parsed.
    #[error(
        "user `{user}`: password_hash is not a PHC string such as `$argon2id$v=19$...`: {message}"
    )]
    BadHash {
        /// The user whose hash is broken.
        user: String,
        /// What the parser said.
        message: String,
    },
    /// The same user appears twice.
    #[error("user `{0}` is listed twice")]
    DuplicateUser(String),
    /// Hashing a new password failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// Unknown user or wrong password (deliberately not saying which).
    #[error("invalid user name or password")]
    BadCredentials,
    /// The `authorization` header is missing or not of the expected scheme.
    #[error("{0}")]
    BadHeader(String),
    /// The bearer token is unknown or expired.
    #[error(
        "the bearer token is unknown or expired: log in again (Flight Handshake with basic auth)"
    )]
    BadToken,
}

/// Hashes `password` with Argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// The user a request was authenticated as (a request extension set by [`AuthLayer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser(pub String);

struct Session {
    user: String,
    expires: Instant,
}

/// Checks passwords against the configured hashes and hands out bearer tokens.
pub struct Authenticator {
    users: HashMap<String, String>,
    tokens: Mutex<HashMap<String, Session>>,
    token_ttl: Duration,
    /// Verified for unknown users, so a wrong name takes as long as a wrong password.
    dummy_hash: String,
}

impl Authenticator {
    /// An authenticator for `users`; tokens expire `token_ttl` after login.
    pub fn new(users: Vec<User>, token_ttl: Duration) -> Result<Self, AuthError> {
        let mut map = HashMap::new();
        for user in users {
            PasswordHash::new(&user.password_hash).map_err(|e| AuthError::BadHash {
                user: user.name.clone(),
                message: e.to_string(),
            })?;
            if map.insert(user.name.clone(), user.password_hash).is_some() {
                return Err(AuthError::DuplicateUser(user.name));
            }
        }
        Ok(Self {
            users: map,
            tokens: Mutex::new(HashMap::new()),
            token_ttl,
            dummy_hash: hash_password("sluice-no-such-user")?,
        })
    }

    /// Verifies a user name and password and returns a new bearer token.
    ///
    /// Argon2 is deliberately slow: call this off the async executor
    /// (see [`Authenticator::login_basic`]).
    pub fn login(&self, user: &str, password: &str) -> Result<String, AuthError> {
        let stored = self.users.get(user).unwrap_or(&self.dummy_hash);
        let ok = PasswordHash::new(stored)
            .map(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false);
        if !ok || !self.users.contains_key(user) {
            return Err(AuthError::BadCredentials);
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.retain(|_, s| s.expires > now);
        tokens.insert(
            token.clone(),
            Session {
                user: user.to_string(),
                expires: now + self.token_ttl,
            },
        );
        Ok(token)
    }

    /// Logs in with an `authorization: Basic base64(user:password)` header value, hashing on
    /// a blocking thread. Returns the user and a new token.
    pub async fn login_basic(
        self: &Arc<Self>,
        header: &str,
    ) -> Result<(String, String), AuthError> {
        let (user, password) = parse_basic(header)?;
        let me = Arc::clone(self);
        let name = user.clone();
        let token = tokio::task::spawn_blocking(move || me.login(&name, &password))
            .await
            .map_err(|e| AuthError::Hash(e.to_string()))??;
        Ok((user, token))
    }

    /// The user an `authorization: Bearer <token>` header value belongs to.
    pub fn check_bearer(&self, header: &str) -> Result<String, AuthError> {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                AuthError::BadHeader(
                    "expected `authorization: Bearer <token>`; get a token with a Flight \
                     Handshake using basic auth"
                        .into(),
                )
            })?
            .trim();
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        match tokens.get(token) {
            Some(s) if s.expires > Instant::now() => Ok(s.user.clone()),
            _ => Err(AuthError::BadToken),
        }
    }
}

/// Splits a `Basic base64(user:password)` header value.
fn parse_basic(header: &str) -> Result<(String, String), AuthError> {
    let bad =
        || AuthError::BadHeader("expected `authorization: Basic base64(user:password)`".into());
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
        .ok_or_else(bad)?;
    // Some clients (arrow-go, so ADBC) leave out the `=` padding.
    let decoded = STANDARD_NO_PAD
        .decode(encoded.trim().trim_end_matches('='))
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (user, password) = text.split_once(':').ok_or_else(bad)?;
    Ok((user.to_string(), password.to_string()))
}

/// A tower layer that refuses calls to protected gRPC services without a valid bearer token.
///
/// Paths under `open_paths` (the Flight `Handshake`, which logs in) and services not listed as
/// protected (Ballista's executor-facing service) pass through. Without an authenticator
/// (`--insecure-no-auth`, or a loopback-only scheduler without users) everything passes.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Option<Arc<Authenticator>>,
    protected: Arc<[String]>,
}

/// gRPC path of the Flight `Handshake`, which carries basic credentials instead of a token.
pub const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";

impl AuthLayer {
    /// Protects every service whose gRPC path starts with one of `protected_services`
    /// (e.g. `/arrow.flight.protocol.FlightService/`).
    pub fn new(auth: Option<Arc<Authenticator>>, protected_services: &[&str]) -> Self {
        Self {
            auth,
            protected: protected_services.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around a gRPC router.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S> AuthService<S> {
    fn check<B>(&self, req: &http::Request<B>) -> Result<Option<String>, tonic::Status> {
        let Some(auth) = &self.layer.auth else {
            return Ok(None);
        };
        let path = req.uri().path();
        if path == HANDSHAKE_PATH || !self.layer.protected.iter().any(|p| path.starts_with(p)) {
            return Ok(None);
        }
        let header = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| {
                tonic::Status::unauthenticated(
                    "no `authorization` header: log in with a Flight Handshake (basic auth) \
                     and send `authorization: Bearer <token>`",
                )
            })?
            .to_str()
            .map_err(|_| tonic::Status::unauthenticated("the authorization header is not text"))?;
        auth.check_bearer(header)
            .map(Some)
            .map_err(|e| tonic::Status::unauthenticated(e.to_string()))
    }
}

impl<S, B> tower_service::Service<http::Request<B>> for AuthService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.check(&req) {
            Ok(user) => {
                if let Some(user) = user {
                    req.extensions_mut().insert(AuthenticatedUser(user));
                }
                Box::pin(self.inner.call(req))
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_checks_the_hash_and_tokens_expire() {
        let hash = hash_password("s3cret").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        let auth = Authenticator::new(
            vec![User {
                name: "ana".into(),
                password_hash: hash,
            }],
            Duration::from_millis(200),
        )
        .expect("users");
        assert!(matches!(
            auth.login("ana", "wrong"),
            Err(AuthError::BadCredentials)
        ));
        assert!(matches!(
            auth.login("bob", "s3cret"),
            Err(AuthError::BadCredentials)
        ));
        let token = auth.login("ana", "s3cret").expect("login");
        assert_eq!(
            auth.check_bearer(&format!("Bearer {token}"))
                .expect("token"),
            "ana"
        );
        assert!(matches!(
            auth.check_bearer("Bearer nope"),
            Err(AuthError::BadToken)
        ));
        std::thread::sleep(Duration::from_millis(250));
        assert!(matches!(
            auth.check_bearer(&format!("Bearer {token}")),
            Err(AuthError::BadToken)
        ));
    }

    #[test]
    fn bad_hashes_and_headers_are_named() {
        let err = Authenticator::new(
            vec![User {
                name: "ana".into(),
                password_hash: "plain".into(),
            }],
            Duration::from_secs(1),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("user `ana`"), "{err}");
        assert!(parse_basic("Basic !!").is_err());
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ana:pa:ss")
        );
        assert_eq!(
            parse_basic(&header).expect("parse"),
            ("ana".to_string(), "pa:ss".to_string())
        );
    }
}
