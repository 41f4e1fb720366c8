//! How the CLI reaches a scheduler: the gRPC channel (TLS when the URL is https), the login
//! (a Flight `Handshake` with basic auth) and the bearer token every later call carries.

use anyhow::{Context, Result, anyhow};
use arrow_flight::sql::client::FlightSqlServiceClient;
use sluice_proto::job_service_client::JobServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The scheduler the remote commands talk to when none is named.
const DEFAULT_SCHEDULER: &str = "http://127.0.0.1:50050";

/// Which scheduler to talk to, and as whom.
#[derive(clap::Args, Clone)]
pub(crate) struct SchedulerArgs {
    /// The scheduler's client URL (`https://` for TLS; default http://127.0.0.1:50050).
    /// `query` with a scheduler queries its tables over Flight SQL (on its cluster) instead
    /// of reading the lake directly.
    #[arg(long, env = "SLUICE_SCHEDULER")]
    pub scheduler: Option<String>,
    #[command(flatten)]
    pub login: Login,
}

impl SchedulerArgs {
    /// The scheduler's URL: the one given, else the local default.
    pub(crate) fn url(&self) -> &str {
        self.scheduler.as_deref().unwrap_or(DEFAULT_SCHEDULER)
    }
}

/// Credentials and trust for a scheduler.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct Login {
    /// User to log in as (the password is read from SLUICE_PASSWORD).
    #[arg(long, env = "SLUICE_USER")]
    pub user: Option<String>,
    /// CA certificate (PEM) to trust for an https:// scheduler (default: the system's roots
    /// are not used; give the CA that signed the scheduler's certificate).
    #[arg(long, env = "SLUICE_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,
}

/// Adds `authorization: Bearer <token>` to every call when logged in.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A JobService client carrying the login's token.
pub(crate) type JobClient = JobServiceClient<InterceptedService<Channel, Bearer>>;

/// An open connection to a scheduler, logged in if a user was given.
pub(crate) struct Connection {
    channel: Channel,
    token: Option<String>,
}

impl Connection {
    /// Connects to `url` and logs in as `login.user` (password from SLUICE_PASSWORD).
    pub(crate) async fn open(url: &str, login: &Login) -> Result<Self> {
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .with_context(|| format!("`{url}` is not a valid scheduler URL"))?;
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            if let Some(ca) = &login.tls_ca {
                let pem = std::fs::read(ca)
                    .with_context(|| format!("cannot read the CA certificate {}", ca.display()))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .context("the TLS settings are unusable")?;
        }
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot reach the scheduler at {url}"))?;
        let token = match &login.user {
            None => None,
            Some(user) => {
                let password = std::env::var("SLUICE_PASSWORD").map_err(|_| {
                    anyhow!("--user {user} needs the password in the SLUICE_PASSWORD environment variable")
                })?;
                let mut flight = FlightSqlServiceClient::new(channel.clone());
                flight.handshake(user, &password).await.map_err(|e| {
                    anyhow!("cannot log in to {url} as {user}: {}", flight_message(&e))
                })?;
                flight.token().cloned()
            }
        };
        Ok(Self { channel, token })
    }

    /// The scheduler's JobService.
    pub(crate) fn jobs(&self) -> Result<JobClient> {
        let value = match &self.token {
            Some(t) => Some(
                MetadataValue::try_from(format!("Bearer {t}"))
                    .context("the scheduler returned a token that is not a header value")?,
            ),
            None => None,
        };
        Ok(JobServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer(value),
        ))
    }

    /// A Flight SQL client on the same connection, with the token set.
    pub(crate) fn flight_sql(&self) -> FlightSqlServiceClient<Channel> {
        let mut client = FlightSqlServiceClient::new(self.channel.clone());
        if let Some(t) = &self.token {
            client.set_token(t.clone());
        }
        client
    }
}

/// The server's message inside a Flight error, without the wrapping.
pub(crate) fn flight_message(e: &arrow_flight::error::FlightError) -> String {
    match e {
        arrow_flight::error::FlightError::Tonic(status) => {
            format!("{} ({:?})", status.message(), status.code())
        }
        other => other.to_string(),
    }
}
