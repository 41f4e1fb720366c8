//! The object stores Sluice reads staging from and writes the lake to.
//!
//! [`SluiceObjectStores`] is a DataFusion object-store registry: `file://` is the local file
//! system, and every `s3://bucket` gets an S3 client built once, on first use, from this
//! process's own AWS configuration: region and credentials from the AWS SDK's chain (the
//! same one the Glue catalog uses, see [`aws`]: environment, `AWS_PROFILE` and the profile
//! files, SSO, web identity, ECS, instance metadata), `AWS_ENDPOINT_URL` for S3-compatible
//! servers. The scheduler, the executors and the CLI each build theirs, so no credentials
//! travel inside plans.

pub mod aws;
pub mod roots;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, RetryConfig};
use url::Url;

pub use roots::{AllowedRoots, RootError};

/// Environment variables naming an S3-compatible endpoint, most specific first.
const ENDPOINT_VARS: [&str; 3] = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"];

/// A registry that knows local folders and builds S3 stores on demand.
#[derive(Debug)]
pub struct SluiceObjectStores {
    inner: DefaultObjectStoreRegistry,
    s3: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl SluiceObjectStores {
    /// A registry with the local file system registered.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: DefaultObjectStoreRegistry::new(),
            s3: RwLock::new(HashMap::new()),
        })
    }
}

/// Why a lake location cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The local folder cannot be created or resolved.
    #[error("cannot use the folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// Why it cannot be used.
        #[source]
        source: std::io::Error,
    },
    /// The path cannot be written as a URL.
    #[error("{0} is not a usable folder path")]
    NotAFolder(String),
}

/// A lake given as a folder (created if missing) or a URL, as a URL ending in `/`.
pub fn lake_url(arg: &str) -> std::result::Result<String, LocationError> {
    if arg.contains("://") {
        return Ok(if arg.ends_with('/') {
            arg.to_string()
        } else {
            format!("{arg}/")
        });
    }
    let folder = |source| LocationError::Folder {
        path: arg.to_string(),
        source,
    };
    std::fs::create_dir_all(arg).map_err(folder)?;
    let abs = std::fs::canonicalize(arg).map_err(folder)?;
    Url::from_directory_path(&abs)
        .map(|u| u.to_string())
        .map_err(|_| LocationError::NotAFolder(abs.display().to_string()))
}

/// An S3 client for `bucket` configured from the environment and the AWS chain.
pub fn s3_from_env(bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    let cannot = |e: &dyn std::fmt::Display| {
        DataFusionError::External(format!("cannot configure S3 for bucket '{bucket}': {e}").into())
    };
    let chain = aws::S3Chain::for_process().map_err(|e| cannot(&e))?;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_credentials(chain.credentials.clone());
    let endpoint = ENDPOINT_VARS
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .or(chain.endpoint);
    if let Some(endpoint) = endpoint {
        // S3-compatible servers (moto, MinIO) want path-style requests.
        builder = builder
            .with_endpoint(&endpoint)
            .with_virtual_hosted_style_request(false);
        if endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
    }
    if let Some(region) = std::env::var("AWS_REGION").ok().or(chain.region) {
        builder = builder.with_region(region);
    }
    // Give up on an unreachable endpoint in seconds, not minutes.
    builder = builder.with_retry(RetryConfig {
        max_retries: 4,
        retry_timeout: Duration::from_secs(20),
        ..RetryConfig::default()
    });
    let store = builder.build().map_err(|e| cannot(&e))?;
    Ok(Arc::new(store))
}

impl ObjectStoreRegistry for SluiceObjectStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.inner.get_store(url) {
            return Ok(store);
        }
        if !matches!(url.scheme(), "s3" | "s3a") {
            return Err(DataFusionError::Configuration(format!(
                "no object store for '{url}': Sluice reads file:// and s3:// URLs"
            )));
        }
        let bucket = url
            .host_str()
            .ok_or_else(|| DataFusionError::Configuration(format!("'{url}' names no bucket")))?
            .to_string();
        // A poisoned lock is recovered: the map is only ever changed by single inserts, so
        // a panicking holder cannot have left it half-updated (the same rule as everywhere
        // else in Sluice).
        let cached = self
            .s3
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&bucket)
            .cloned();
        if let Some(s) = cached {
            return Ok(s);
        }
        let store = s3_from_env(&bucket)?;
        self.s3
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(bucket, store.clone());
        Ok(store)
    }
}
