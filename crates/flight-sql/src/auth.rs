//! Users, roles, password hashes and bearer tokens, shared by every client-facing service.
//!
//! A client logs in once with HTTP basic credentials (the Flight `Handshake`) and gets a
//! random bearer token; every later call carries `authorization: Bearer <token>`.
//! [`AuthLayer`] checks that header for whole gRPC services (Flight SQL and Sluice's job
//! service) before any handler runs, and hands the handler an [`AuthenticatedUser`] with the
//! user's [`Role`]; handlers check it with [`authorize`].
//!
//! # Roles
//!
//! Each configured user has a [`Role`]: `admin` may do everything, `engineer` may submit and
//! cancel jobs and query, `analyst` may query and read job runs (get, list, watch) but neither
//! submit nor cancel. (No call is reserved to `admin` yet: today it may do what `engineer`
//! may; it is the role for administrative calls as they come.) A user without a role is an
//! `analyst`: an account does only what it was explicitly given. A refused call gets `PERMISSION_DENIED` naming the user, the role and
//! what that role may do. Without an authenticator (a loopback-only scheduler without users,
//! or `--insecure-no-auth`) every call is allowed, as the anonymous `admin`.
//!
//! # Password checks under load
//!
//! Argon2 is deliberately slow and memory-hard (the default hash uses 19 MiB per check), so
//! a flood of logins must not be allowed to run one check per request:
//!
//! - **A fixed pool of verifier threads** ([`LoginLimits::workers`], default: the number of
//!   cores, at most 4) checks passwords, each reusing one Argon2 memory block allocated when
//!   the authenticator starts (sized for the most expensive configured hash). Memory for
//!   password checks is therefore fixed — workers × m_cost, 2 × 19 MiB on a 2-core machine —
//!   however many logins arrive, and nothing is freed to, or kept by, the allocator between
//!   checks. A default-cost check takes about 22 ms in a release build (0.4 s in a debug
//!   build), so each worker checks about 45 logins a second. Hash parameters, salt and digest
//!   are parsed from each user's PHC string once; the digests are compared in constant time.
//! - **A bounded wait queue** ([`LoginLimits::queue`], default 4 × workers): a login that finds
//!   every worker busy and the queue full is refused at once with `RESOURCE_EXHAUSTED`
//!   ("too many logins are being checked") instead of waiting; the client may retry shortly.
//! - **Back-off after failures**, per client address (the peer IP; an IPv6 client by its
//!   /64 prefix) and per user name, known or not: after [`LoginLimits::free_failures`] (5)
//!   consecutive failures the key is refused *without hashing* for
//!   [`LoginLimits::first_backoff`] (1 s), doubling with each further failure up to
//!   [`LoginLimits::max_backoff`] (30 s). The refusal is
//!   `RESOURCE_EXHAUSTED` and says how many seconds to wait. A successful login resets both
//!   its user and its address; a key without failures for [`FORGET_FAILURES_AFTER`] is
//!   forgotten, and at most [`MAX_TRACKED_KEYS`] keys are tracked (the stalest go first).
//!   Clients behind one address (a proxy, a BI server logging in for its users) share that
//!   address's count; a flood from elsewhere does not lock them out, but one aimed at a user
//!   name locks that user out until the back-off ends.
//!
//! An unknown user name is checked against a dummy digest with the first configured user's
//! parameters, on the same workers, so it takes as long as a wrong password, and it is
//! backed off like a known name: neither timing nor refusals tell which names exist.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// What a user may do: `admin`, `engineer` or `analyst` in the config file.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Submit and cancel jobs, write dashboards, read job runs, query.
    Engineer,
    /// Query and read job runs (the default: nothing that changes data).
    #[default]
    Analyst,
}

/// Something a call does, checked against the caller's [`Role`] by [`authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run SQL over Flight SQL (and read the catalog's metadata).
    Query,
    /// Get, list or watch job runs.
    ReadJobs,
    /// Submit a job.
    SubmitJob,
    /// Cancel a job run.
    CancelJob,
    /// Save dashboard files (the dashboards' playground).
    WriteDashboards,
}

impl Action {
    /// How a refusal names the action.
    fn describe(self) -> &'static str {
        match self {
            Action::Query => "query",
            Action::ReadJobs => "read job runs",
            Action::SubmitJob => "submit jobs",
            Action::CancelJob => "cancel jobs",
            Action::WriteDashboards => "write dashboards",
        }
    }
}

impl Role {
    /// Whether this role may do `action`.
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Admin | Role::Engineer => true,
            Role::Analyst => matches!(action, Action::Query | Action::ReadJobs),
        }
    }

    /// What this role may do, for refusals.
    pub fn permissions(self) -> &'static str {
        match self {
            Role::Admin => "everything",
            Role::Engineer => "submit and cancel jobs, write dashboards, read job runs and query",
            Role::Analyst => "query and read job runs",
        }
    }

    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Engineer => "engineer",
            Role::Analyst => "analyst",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user allowed to connect, with the PHC-format hash of their password
/// (`$argon2id$...`, as printed by `sluice-scheduler hash-password`) and their role.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Hash of the password in the PHC string format.
    pub password_hash: String,
    /// What the user may do (default `analyst`).
    #[serde(default)]
    pub role: Role,
}

/// Why a login or a token was refused, or a user list is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A configured hash cannot be parsed.
    #[error(
        "user `{user}`: password_hash is not an Argon2 PHC string (`$argon2id$v=19$...`): {source}"
    )]
    BadHash {
        /// The user whose hash is broken.
        user: String,
        /// What the parser said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The same user appears twice.
    #[error("user `{0}` is listed twice")]
    DuplicateUser(String),
    /// Hashing a new password failed.
    #[error("cannot hash the password: {0}")]
    Hash(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A thread that checks passwords could not be started.
    #[error("cannot hash the password: cannot start a password worker: {0}")]
    Worker(#[source] std::io::Error),
    /// Unknown user or wrong password (deliberately not saying which).
    #[error("invalid user name or password")]
    BadCredentials,
    /// Every password worker is busy and the wait queue is full.
    #[error("too many logins are being checked at once ({0} at most): try again in a few seconds")]
    Busy(usize),
    /// Too many consecutive failures for this user or client address.
    #[error(
        "too many failed logins for this user or from this address: try again in {} s",
        .retry_after.as_secs() + u64::from(.retry_after.subsec_nanos() > 0)
    )]
    BackOff {
        /// How long until the next attempt is checked.
        retry_after: Duration,
    },
    /// The `authorization` header is missing or not of the expected scheme.
    #[error("{0}")]
    BadHeader(String),
    /// The bearer token is unknown or expired.
    #[error(
        "the bearer token is unknown or expired: log in again (Flight Handshake with basic auth)"
    )]
    BadToken,
}

impl AuthError {
    /// The gRPC status for this error: `RESOURCE_EXHAUSTED` for [`AuthError::Busy`] and
    /// [`AuthError::BackOff`], `INTERNAL` for hashing failures, `UNAUTHENTICATED` otherwise.
    pub fn to_status(&self) -> tonic::Status {
        match self {
            AuthError::Busy(_) | AuthError::BackOff { .. } => {
                tonic::Status::resource_exhausted(self.to_string())
            }
            AuthError::Hash(_) | AuthError::Worker(_) => tonic::Status::internal(self.to_string()),
            _ => tonic::Status::unauthenticated(self.to_string()),
        }
    }
}

/// Hashes `password` with Argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AuthError::Hash(e.into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.into()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.into()))
}

/// The user a request was authenticated as (a request extension set by [`AuthLayer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// Login name (`anonymous` when the scheduler runs without users).
    pub name: String,
    /// What the user may do.
    pub role: Role,
}

impl AuthenticatedUser {
    /// The caller of a scheduler without an authenticator: anonymous, allowed everything.
    pub fn anonymous() -> Self {
        Self {
            name: "anonymous".into(),
            role: Role::Admin,
        }
    }
}

/// Checks that the caller of `request` may do `action`.
///
/// The caller is the [`AuthenticatedUser`] [`AuthLayer`] put into the request; a request
/// that did not pass through an `AuthLayer` is refused (fail closed).
pub fn authorize<T>(
    request: &tonic::Request<T>,
    action: Action,
) -> Result<AuthenticatedUser, tonic::Status> {
    let user = request
        .extensions()
        .get::<AuthenticatedUser>()
        .ok_or_else(|| {
            tonic::Status::permission_denied(format!(
                "cannot {}: the call was not authenticated (no AuthLayer in front of this service)",
                action.describe()
            ))
        })?;
    if user.role.allows(action) {
        return Ok(user.clone());
    }
    Err(tonic::Status::permission_denied(format!(
        "user `{}` has role `{}`, which may not {}: an `{}` may {}",
        user.name,
        user.role,
        action.describe(),
        user.role,
        user.role.permissions()
    )))
}

/// How many password checks run at once, how many may wait, and how failures back off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimits {
    /// Threads checking passwords, each with its own Argon2 memory (default: the cores, at
    /// most 4).
    pub workers: usize,
    /// Logins that may wait for a worker; beyond it a login is refused at once.
    pub queue: usize,
    /// Consecutive failures of a user or address before it is backed off.
    pub free_failures: u32,
    /// The first back-off; it doubles with each further failure.
    pub first_backoff: Duration,
    /// The longest back-off.
    pub max_backoff: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        Self {
            workers,
            queue: 4 * workers,
            free_failures: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// A key without failures for this long is forgotten (its count starts again from zero).
pub const FORGET_FAILURES_AFTER: Duration = Duration::from_secs(15 * 60);

/// Users and addresses whose failures are tracked at most; the stalest are dropped first.
pub const MAX_TRACKED_KEYS: usize = 10_000;

/// A password hash parsed from its PHC string, ready to check a password against.
#[derive(Clone)]
struct Digest {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Output,
}

impl Digest {
    /// The digest of a PHC string, or what the parser said about it.
    fn parse(phc: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let hash = PasswordHash::new(phc)?;
        let algorithm = Algorithm::try_from(hash.algorithm)?;
        let version = match hash.version {
            Some(v) => Version::try_from(v)?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash)?;
        let mut buf = [0u8; 64];
        let salt = hash.salt.ok_or("no salt")?.decode_b64(&mut buf)?.to_vec();
        let expected = hash.hash.ok_or("no digest")?;
        Ok(Self {
            algorithm,
            version,
            params,
            salt,
            expected,
        })
    }

    /// A digest no password matches, with `like`'s parameters (for unknown users).
    fn dummy(like: &Digest) -> Result<Self, AuthError> {
        let mut salt = vec![0u8; like.salt.len().max(16)];
        let mut expected = vec![0u8; like.expected.len()];
        getrandom::fill(&mut salt).map_err(|e| AuthError::Hash(e.into()))?;
        getrandom::fill(&mut expected).map_err(|e| AuthError::Hash(e.into()))?;
        Ok(Self {
            salt,
            expected: Output::new(&expected).map_err(|e| AuthError::Hash(e.into()))?,
            ..like.clone()
        })
    }

    /// Whether `password` matches, hashed in `memory` (at least `block_count` blocks).
    fn matches(&self, password: &str, memory: &mut [Block], out: &mut [u8]) -> bool {
        let argon = Argon2::new(self.algorithm, self.version, self.params.clone());
        let out = &mut out[..self.expected.len()];
        argon
            .hash_password_into_with_memory(password.as_bytes(), &self.salt, out, memory)
            .is_ok()
            && Output::new(out).is_ok_and(|o| o == self.expected)
    }
}

/// One password check for the verifier threads.
struct Check {
    digest: Arc<Digest>,
    password: String,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// A fixed pool of threads checking passwords, each with preallocated Argon2 memory, fed by
/// a bounded queue.
struct Verifiers {
    queue: SyncSender<Check>,
    capacity: usize,
}

impl Verifiers {
    fn start(workers: usize, queue: usize, blocks: usize) -> Result<Self, AuthError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Check>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("sluice-login-{i}"))
                .spawn(move || verify_loop(&rx, blocks))
                .map_err(AuthError::Worker)?;
        }
        Ok(Self {
            queue: tx,
            capacity: workers.max(1) + queue,
        })
    }

    /// Checks `password` against `digest` on a worker; refuses at once when the queue is full.
    async fn check(&self, digest: Arc<Digest>, password: String) -> Result<bool, AuthError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let check = Check {
            digest,
            password,
            reply,
        };
        match self.queue.try_send(check) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(AuthError::Busy(self.capacity)),
            Err(TrySendError::Disconnected(_)) => {
                return Err(AuthError::Hash("the password workers stopped".into()));
            }
        }
        answer
            .await
            .map_err(|_| AuthError::Hash("a password worker stopped".into()))
    }
}

/// A verifier thread: one memory block for its whole life, until the queue closes.
fn verify_loop(rx: &Mutex<Receiver<Check>>, blocks: usize) {
    let mut memory = vec![Block::default(); blocks];
    let mut out = [0u8; Output::MAX_LENGTH];
    loop {
        // Only one idle worker waits on the channel at a time; the others wait for the lock.
        let next = crate::lock(rx).recv();
        let Ok(check) = next else {
            return;
        };
        let ok = check.digest.matches(&check.password, &mut memory, &mut out);
        // The client may have gone away; nothing to do then.
        if check.reply.send(ok).is_err() {
            tracing::debug!("a password check finished after its caller went away");
        }
    }
}

/// What the back-off tracks: a client address or a user name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Peer(IpAddr),
    User(String),
}

/// The back-off key of a client address: IPv4 addresses (also IPv4-mapped IPv6 ones) as
/// they are, IPv6 addresses by their /64 prefix, which one client usually holds whole.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// Consecutive login failures per key, and the back-off they earn.
struct Throttle {
    limits: LoginLimits,
    keys: Mutex<HashMap<Key, Failures>>,
}

impl Throttle {
    /// How long the first blocked key among `keys` is still refused, if any.
    fn blocked(&self, keys: &[Key], now: Instant) -> Option<Duration> {
        let map = crate::lock(&self.keys);
        keys.iter()
            .filter_map(|k| map.get(k)?.blocked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    fn failed(&self, keys: &[Key], now: Instant) -> Option<Duration> {
        let mut map = crate::lock(&self.keys);
        if map.len() + keys.len() > MAX_TRACKED_KEYS {
            map.retain(|_, f| now.duration_since(f.last) < FORGET_FAILURES_AFTER);
            while map.len() + keys.len() > MAX_TRACKED_KEYS {
                let Some(stalest) = map
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                map.remove(&stalest);
            }
        }
        let mut longest = None;
        for key in keys {
            let f = map.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: None,
            });
            if now.duration_since(f.last) >= FORGET_FAILURES_AFTER {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
            if f.count >= self.limits.free_failures {
                let doublings = (f.count - self.limits.free_failures).min(20);
                let backoff = self
                    .limits
                    .first_backoff
                    .saturating_mul(1 << doublings)
                    .min(self.limits.max_backoff);
                f.blocked_until = Some(now + backoff);
                longest = longest.max(Some(backoff));
            }
        }
        longest
    }

    fn succeeded(&self, keys: &[Key]) {
        let mut map = crate::lock(&self.keys);
        for key in keys {
            map.remove(key);
        }
    }
}

struct Account {
    digest: Arc<Digest>,
    role: Role,
}

struct Session {
    user: AuthenticatedUser,
    expires: Instant,
}

/// Checks passwords against the configured hashes and hands out bearer tokens.
///
/// Password checks run on a fixed pool of threads with a bounded queue, and repeated
/// failures back off (see the [module docs](self)).
pub struct Authenticator {
    users: HashMap<String, Account>,
    tokens: Mutex<HashMap<String, Session>>,
    token_ttl: Duration,
    /// Checked for unknown users, so a wrong name takes as long as a wrong password.
    dummy: Arc<Digest>,
    verifiers: Verifiers,
    throttle: Throttle,
}

impl Authenticator {
    /// An authenticator for `users` with the default [`LoginLimits`]; tokens expire
    /// `token_ttl` after login.
    pub fn new(users: Vec<User>, token_ttl: Duration) -> Result<Self, AuthError> {
        Self::with_limits(users, token_ttl, LoginLimits::default())
    }

    /// An authenticator for `users` whose password checks are bounded by `limits`.
    pub fn with_limits(
        users: Vec<User>,
        token_ttl: Duration,
        limits: LoginLimits,
    ) -> Result<Self, AuthError> {
        let mut map = HashMap::new();
        let mut first: Option<Arc<Digest>> = None;
        for user in users {
            let digest =
                Digest::parse(&user.password_hash).map_err(|source| AuthError::BadHash {
                    user: user.name.clone(),
                    source,
                })?;
            let digest = Arc::new(digest);
            first.get_or_insert_with(|| Arc::clone(&digest));
            let account = Account {
                digest,
                role: user.role,
            };
            if map.insert(user.name.clone(), account).is_some() {
                return Err(AuthError::DuplicateUser(user.name));
            }
        }
        let like = match first {
            Some(d) => d,
            None => Arc::new(
                Digest::parse(&hash_password("sluice-no-such-user")?).map_err(AuthError::Hash)?,
            ),
        };
        let dummy = Arc::new(Digest::dummy(&like)?);
        let blocks = map
            .values()
            .map(|a| a.digest.params.block_count())
            .chain([dummy.params.block_count()])
            .max()
            .unwrap_or(0);
        Ok(Self {
            users: map,
            tokens: Mutex::new(HashMap::new()),
            token_ttl,
            dummy,
            verifiers: Verifiers::start(limits.workers, limits.queue, blocks)?,
            throttle: Throttle {
                limits,
                keys: Mutex::new(HashMap::new()),
            },
        })
    }

    /// Verifies a user name and password from client address `peer` and returns a new
    /// bearer token, or refuses at once when the user or address is backed off or every
    /// password worker is busy.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<String, AuthError> {
        let mut keys = vec![Key::User(user.to_string())];
        keys.extend(peer.map(|ip| Key::Peer(address_key(ip))));
        if let Some(retry_after) = self.throttle.blocked(&keys, Instant::now()) {
            return Err(AuthError::BackOff { retry_after });
        }
        let account = self.users.get(user);
        let digest = account.map_or(&self.dummy, |a| &a.digest);
        let ok = self
            .verifiers
            .check(Arc::clone(digest), password.to_string())
            .await?;
        let Some(account) = account.filter(|_| ok) else {
            if let Some(backoff) = self.throttle.failed(&keys, Instant::now()) {
                tracing::warn!(
                    user,
                    peer = ?peer,
                    backoff_ms = backoff.as_millis() as u64,
                    "repeated failed logins: backing off"
                );
            }
            return Err(AuthError::BadCredentials);
        };
        self.throttle.succeeded(&keys);
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| AuthError::Hash(e.into()))?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut tokens = crate::lock(&self.tokens);
        tokens.retain(|_, s| s.expires > now);
        tokens.insert(
            token.clone(),
            Session {
                user: AuthenticatedUser {
                    name: user.to_string(),
                    role: account.role,
                },
                expires: now + self.token_ttl,
            },
        );
        Ok(token)
    }

    /// Logs in with an `authorization: Basic base64(user:password)` header value from
    /// client address `peer` (see [`Authenticator::login`]). Returns the user and a new token.
    pub async fn login_basic(
        &self,
        header: &str,
        peer: Option<IpAddr>,
    ) -> Result<(String, String), AuthError> {
        let (user, password) = parse_basic(header)?;
        let token = self.login(&user, &password, peer).await?;
        Ok((user, token))
    }

    /// The user an `authorization: Bearer <token>` header value belongs to.
    pub fn check_bearer(&self, header: &str) -> Result<AuthenticatedUser, AuthError> {
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
        let tokens = crate::lock(&self.tokens);
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
/// protected (Ballista's executor-facing service) pass through. Every protected call reaches
/// its handler with an [`AuthenticatedUser`] extension, for [`authorize`]. Without an
/// authenticator (`--insecure-no-auth`, or a loopback-only scheduler without users) every
/// call passes, as [`AuthenticatedUser::anonymous`].
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
    fn check<B>(&self, req: &http::Request<B>) -> Result<Option<AuthenticatedUser>, tonic::Status> {
        let path = req.uri().path();
        if path == HANDSHAKE_PATH || !self.layer.protected.iter().any(|p| path.starts_with(p)) {
            return Ok(None);
        }
        let Some(auth) = &self.layer.auth else {
            return Ok(Some(AuthenticatedUser::anonymous()));
        };
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
            .map_err(|e| e.to_status())
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
                    req.extensions_mut().insert(user);
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

    /// A PHC hash with tiny parameters, so tests do not wait for Argon2's defaults.
    fn cheap_hash(password: &str) -> String {
        let params = Params::new(64, 1, 1, None).expect("params");
        let salt = SaltString::encode_b64(b"sluice-test-salt").expect("salt");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .expect("hash")
            .to_string()
    }

    fn user(name: &str, password: &str, role: Role) -> User {
        User {
            name: name.into(),
            password_hash: cheap_hash(password),
            role,
        }
    }

    fn peer(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[tokio::test]
    async fn login_checks_the_hash_and_tokens_expire() {
        let hash = hash_password("s3cret").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        let auth = Authenticator::new(
            vec![User {
                name: "ana".into(),
                password_hash: hash,
                role: Role::Engineer,
            }],
            Duration::from_millis(300),
        )
        .expect("users");
        assert!(matches!(
            auth.login("ana", "wrong", None).await,
            Err(AuthError::BadCredentials)
        ));
        assert!(matches!(
            auth.login("bob", "s3cret", None).await,
            Err(AuthError::BadCredentials)
        ));
        let token = auth.login("ana", "s3cret", None).await.expect("login");
        assert_eq!(
            auth.check_bearer(&format!("Bearer {token}"))
                .expect("token"),
            AuthenticatedUser {
                name: "ana".into(),
                role: Role::Engineer
            }
        );
        assert!(matches!(
            auth.check_bearer("Bearer nope"),
            Err(AuthError::BadToken)
        ));
        tokio::time::sleep(Duration::from_millis(350)).await;
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
                role: Role::Analyst,
            }],
            Duration::from_secs(1),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("user `ana`"), "{err}");
        let pbkdf = "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$c2FsdHNhbHRzYWx0c2FsdHNhbHQ";
        let err = Authenticator::new(
            vec![User {
                name: "bob".into(),
                password_hash: pbkdf.into(),
                role: Role::Analyst,
            }],
            Duration::from_secs(1),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("user `bob`"), "{err}");
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

    #[tokio::test]
    async fn checks_beyond_the_workers_and_queue_are_refused_at_once() {
        let limits = LoginLimits {
            workers: 1,
            queue: 1,
            ..LoginLimits::default()
        };
        // Default (slow) parameters, so checks overlap.
        let hash = hash_password("s3cret").expect("hash");
        let users = vec![User {
            name: "ana".into(),
            password_hash: hash,
            role: Role::Analyst,
        }];
        let auth =
            Authenticator::with_limits(users, Duration::from_secs(60), limits).expect("users");
        // Distinct users and addresses, so no back-off is involved.
        let names: Vec<String> = (0..12).map(|i| format!("user{i}")).collect();
        let attempts = names
            .iter()
            .enumerate()
            .map(|(i, name)| auth.login(name, "wrong", peer(i as u8)));
        let results = futures::future::join_all(attempts).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(AuthError::Busy(2))))
            .count();
        let checked = results
            .iter()
            .filter(|r| matches!(r, Err(AuthError::BadCredentials)))
            .count();
        assert_eq!(busy + checked, results.len());
        assert!((1..=3).contains(&checked) && busy >= 9, "{results:?}");
        let status = AuthError::Busy(2).to_status();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        // The workers are free again afterwards.
        assert!(auth.login("ana", "s3cret", peer(99)).await.is_ok());
    }

    #[tokio::test]
    async fn repeated_failures_back_off_per_user_and_per_address() {
        let limits = LoginLimits {
            free_failures: 2,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_millis(500),
            ..LoginLimits::default()
        };
        let users = vec![
            user("ana", "a-pass", Role::Analyst),
            user("bob", "b-pass", Role::Engineer),
        ];
        let auth =
            Authenticator::with_limits(users, Duration::from_secs(60), limits).expect("users");
        for _ in 0..2 {
            assert!(matches!(
                auth.login("ana", "wrong", peer(1)).await,
                Err(AuthError::BadCredentials)
            ));
        }
        // Backed off: even the right password is not checked, for the user from anywhere...
        let refused = auth.login("ana", "a-pass", peer(2)).await;
        let Err(AuthError::BackOff { retry_after }) = refused else {
            panic!("not backed off: {refused:?}");
        };
        assert!(retry_after <= Duration::from_millis(200), "{retry_after:?}");
        let message = AuthError::BackOff { retry_after }.to_string();
        assert!(message.contains("try again in 1 s"), "{message}");
        // ...and for the address, whatever the user.
        assert!(matches!(
            auth.login("bob", "b-pass", peer(1)).await,
            Err(AuthError::BackOff { .. })
        ));
        // Others are not affected.
        assert!(auth.login("bob", "b-pass", peer(3)).await.is_ok());

        // After the back-off one more failure doubles it (capped)...
        tokio::time::sleep(Duration::from_millis(220)).await;
        assert!(matches!(
            auth.login("ana", "wrong", peer(4)).await,
            Err(AuthError::BadCredentials)
        ));
        let Err(AuthError::BackOff { retry_after }) = auth.login("ana", "a-pass", peer(5)).await
        else {
            panic!("not backed off after a further failure");
        };
        assert!(retry_after > Duration::from_millis(200), "{retry_after:?}");
        // ...and a success resets the count.
        tokio::time::sleep(Duration::from_millis(420)).await;
        assert!(auth.login("ana", "a-pass", peer(6)).await.is_ok());
        assert!(matches!(
            auth.login("ana", "wrong", peer(6)).await,
            Err(AuthError::BadCredentials)
        ));
        assert!(auth.login("ana", "a-pass", peer(6)).await.is_ok());

        // Unknown names back off like known ones.
        for _ in 0..2 {
            assert!(matches!(
                auth.login("nobody", "x", peer(7)).await,
                Err(AuthError::BadCredentials)
            ));
        }
        assert!(matches!(
            auth.login("nobody", "x", peer(8)).await,
            Err(AuthError::BackOff { .. })
        ));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(address_key(mapped), IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn roles_allow_what_the_docs_say() {
        use Action::*;
        for action in [Query, ReadJobs, SubmitJob, CancelJob, WriteDashboards] {
            assert!(Role::Admin.allows(action));
            assert!(Role::Engineer.allows(action));
        }
        assert!(Role::Analyst.allows(Query) && Role::Analyst.allows(ReadJobs));
        assert!(!Role::Analyst.allows(SubmitJob) && !Role::Analyst.allows(CancelJob));
        assert!(!Role::Analyst.allows(WriteDashboards));
        assert_eq!(Role::default(), Role::Analyst);

        let mut request = tonic::Request::new(());
        let refused = authorize(&request, Query).expect_err("no AuthLayer, no access");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        request.extensions_mut().insert(AuthenticatedUser {
            name: "ana".into(),
            role: Role::Analyst,
        });
        assert!(authorize(&request, ReadJobs).is_ok());
        let refused = authorize(&request, SubmitJob).expect_err("analysts do not submit");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(
            refused.message().contains("user `ana` has role `analyst`")
                && refused.message().contains("may not submit jobs")
                && refused.message().contains("query and read job runs"),
            "{}",
            refused.message()
        );
        let mut open = tonic::Request::new(());
        open.extensions_mut().insert(AuthenticatedUser::anonymous());
        assert!(authorize(&open, CancelJob).is_ok());
    }
}
