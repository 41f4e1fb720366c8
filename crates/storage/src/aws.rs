//! One AWS configuration for every AWS client of a Sluice process.
//!
//! [`sdk_config`] loads the configuration the AWS SDKs load (region, endpoint, and the full
//! credentials chain: environment, `AWS_PROFILE` and the `~/.aws/config` / `credentials`
//! profiles with SSO, role chaining and `credential_process`, web identity for IRSA, ECS and
//! instance metadata). The Glue catalog builds its client from it, and S3 stores take their
//! region and credentials from the same chain through [`S3Chain`], so an operator configures
//! credentials once for both.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_types::os_shim_internal::{Env, Fs};
use object_store::CredentialProvider;
use object_store::aws::AwsCredential;

/// Credentials that expire sooner than this are fetched again before use.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Why the AWS configuration cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsConfigError {
    /// `AWS_PROFILE` names a profile that no config or credentials file defines.
    #[error(
        "the AWS profile '{profile}' (AWS_PROFILE) is not defined in the AWS config or \
         credentials files ({files}){known}"
    )]
    MissingProfile {
        /// The profile asked for.
        profile: String,
        /// Where the profiles were read from.
        files: String,
        /// The profiles that exist, for the message.
        known: String,
    },
    /// The profile files exist but cannot be read or parsed.
    #[error("cannot read the AWS profile files: {0}")]
    ProfileFiles(String),
    /// The loader could not run.
    #[error("cannot load the AWS configuration: {0}")]
    Loader(String),
}

/// Loads the AWS SDK configuration exactly as every AWS client of Sluice does: the default
/// chain for region, endpoint and credentials, with HTTPS over rustls with ring (as
/// `object_store` uses) instead of building aws-lc.
pub async fn sdk_config() -> SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}

/// Fails with a message naming the profile when `AWS_PROFILE` selects a profile that no
/// profile file defines. (The SDK chain would skip it silently and fall through to the
/// next providers, ending in an instance-metadata timeout that does not name it.)
pub async fn check_selected_profile() -> Result<(), AwsConfigError> {
    let Some(profile) = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let set = aws_config::profile::load(&Fs::real(), &Env::real(), &Default::default(), None)
        .await
        .map_err(|e| AwsConfigError::ProfileFiles(e.to_string()))?;
    if set.get_profile(&profile).is_some() {
        return Ok(());
    }
    let files = [
        ("AWS_CONFIG_FILE", "~/.aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    ]
    .iter()
    .map(|(var, default)| std::env::var(var).unwrap_or_else(|_| (*default).to_string()))
    .collect::<Vec<_>>()
    .join(", ");
    let mut names: Vec<&str> = set.profiles().collect();
    names.sort_unstable();
    let known = if names.is_empty() {
        String::new()
    } else {
        format!("; defined: {}", names.join(", "))
    };
    Err(AwsConfigError::MissingProfile {
        profile,
        files,
        known,
    })
}

/// What an S3 store takes from the AWS chain: its region, endpoint and credentials.
#[derive(Debug, Clone)]
pub struct S3Chain {
    /// The region from the chain (`AWS_REGION`, the profile, instance metadata), if any.
    pub region: Option<String>,
    /// The endpoint from the chain (`AWS_ENDPOINT_URL` or the profile's `endpoint_url`).
    pub endpoint: Option<String>,
    /// Credentials from the chain, cached until shortly before they expire.
    pub credentials: Arc<SdkCredentials>,
}

impl S3Chain {
    /// Loads the chain (see [`sdk_config`]) after checking the selected profile exists.
    pub async fn load() -> Result<Self, AwsConfigError> {
        check_selected_profile().await?;
        let config = sdk_config().await;
        let profile = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
        let provider = config.credentials_provider().ok_or_else(|| {
            AwsConfigError::Loader("the AWS SDK configuration has no credentials chain".into())
        })?;
        Ok(Self {
            region: config.region().map(|r| r.to_string()),
            endpoint: config.endpoint_url().map(str::to_string),
            credentials: Arc::new(SdkCredentials {
                provider,
                profile,
                cached: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// This process's chain, loaded once (on a thread of its own, so that callers inside
    /// or outside an async runtime can ask for it synchronously).
    pub fn for_process() -> Result<Self, AwsConfigError> {
        static CHAIN: OnceLock<Result<S3Chain, AwsConfigError>> = OnceLock::new();
        CHAIN.get_or_init(load_on_own_thread).clone()
    }
}

/// Runs [`S3Chain::load`] to completion on a new thread with a runtime of its own.
fn load_on_own_thread() -> Result<S3Chain, AwsConfigError> {
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AwsConfigError::Loader(e.to_string()))?;
        runtime.block_on(S3Chain::load())
    })
    .join()
    .map_err(|_| AwsConfigError::Loader("the loader thread panicked".into()))?
}

/// An `object_store` credential provider backed by the AWS SDK's credentials chain.
///
/// The SDK's own clients cache credentials in their identity cache; a provider used on its
/// own does not, so this one keeps the last credentials and fetches new ones only when they
/// are within [`REFRESH_BEFORE_EXPIRY`] of expiring (one fetch at a time).
pub struct SdkCredentials {
    provider: SharedCredentialsProvider,
    profile: Option<String>,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

/// Credentials and when they expire (never, for long-term keys).
struct Cached {
    credential: Arc<AwsCredential>,
    expires: Option<SystemTime>,
}

impl fmt::Debug for SdkCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkCredentials")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c
                .expires
                .is_none_or(|at| at > SystemTime::now() + REFRESH_BEFORE_EXPIRY);
            if fresh {
                return Ok(c.credential.clone());
            }
        }
        let credentials = self.provider.provide_credentials().await.map_err(|e| {
            let from = self
                .profile
                .as_deref()
                .map(|p| format!(" (AWS profile '{p}')"))
                .unwrap_or_default();
            object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "no AWS credentials{from}: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                )
                .into(),
            }
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_string(),
            secret_key: credentials.secret_access_key().to_string(),
            token: credentials.session_token().map(str::to_string),
        });
        *cached = Some(Cached {
            credential: credential.clone(),
            expires: credentials.expiry(),
        });
        Ok(credential)
    }
}
