//! Mutual TLS for the cluster's internal traffic, from one shared secret.
//!
//! Ballista's own services are unauthenticated: the scheduler service executors register
//! with and pull tasks from (it also accepts plans and cancels jobs), and each executor's
//! Flight service that serves shuffle data and results. Anyone who can reach those ports can
//! run a plan that reads or writes the hosts' files. Sluice therefore runs them over mutual
//! TLS whenever a cluster secret is configured: every server demands a client certificate
//! signed by the cluster's CA, and every client checks the server's against it.
//!
//! The CA is not a file to distribute: its Ed25519 key is derived from the cluster secret
//! (HKDF-SHA256), so every process holding the secret rebuilds the same CA, and only those
//! processes can sign a certificate the others accept. Each process signs a certificate of
//! its own with a fresh key at start-up. Certificates name [`CLUSTER_SERVER_NAME`] instead of
//! a host, and clients verify that name, so host names and IP addresses do not matter.
//!
//! Ballista offers hooks for exactly this, and only at the level of a tonic [`Endpoint`]
//! (no request metadata reaches all of its clients): [`ClusterTls::endpoint_override`] for
//! its clients (executor → scheduler, executor → executor shuffle reads, scheduler →
//! executor result fetches), and a server TLS config for its servers.

use std::sync::Arc;
use std::time::Duration;

use ballista_core::extension::EndpointOverrideFn;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// The name every cluster certificate carries and every cluster client expects.
pub const CLUSTER_SERVER_NAME: &str = "sluice-cluster";

/// Fewest characters a cluster secret may have (see [`generate_secret`]).
pub const MIN_SECRET_LEN: usize = 32;

/// Why the cluster's TLS identity cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClusterTlsError {
    /// The secret is too short to resist guessing.
    #[error(
        "the cluster secret has {0} characters; it needs at least {MIN_SECRET_LEN} \
         (make one with `sluice-scheduler cluster-secret`)"
    )]
    WeakSecret(usize),
    /// Deriving keys or signing certificates failed.
    #[error("cannot build the cluster's TLS certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The random source failed.
    #[error("cannot read random bytes: {0}")]
    Random(String),
    /// The secret file cannot be read.
    #[error("cannot read the cluster secret file {path}: {source}")]
    ReadSecret {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Environment variable holding the cluster secret itself.
pub const SECRET_ENV: &str = "SLUICE_CLUSTER_SECRET";

/// The cluster secret: the first line of `file` when given, else [`SECRET_ENV`]; `None`
/// when neither is set (or both are empty).
pub fn secret_from(file: Option<&std::path::Path>) -> Result<Option<String>, ClusterTlsError> {
    let secret = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| ClusterTlsError::ReadSecret {
                path: path.display().to_string(),
                source,
            })?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        None => std::env::var(SECRET_ENV)
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    Ok((!secret.is_empty()).then_some(secret))
}

/// A process's TLS identity in the cluster: the CA derived from the cluster secret and a
/// certificate of its own signed by it.
#[derive(Clone)]
pub struct ClusterTls {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterTls(..)")
    }
}

/// A new random cluster secret (32 bytes, base64): 43 characters.
pub fn generate_secret() -> Result<String, ClusterTlsError> {
    use base64::Engine as _;
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|e| ClusterTlsError::Random(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// PKCS#8 v1 wrapping of an Ed25519 private key (RFC 8410): this prefix, then the seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The cluster CA's key: an Ed25519 key whose seed is HKDF-SHA256 of the secret.
fn ca_key(secret: &str) -> Result<KeyPair, ClusterTlsError> {
    use ring::hkdf::{HKDF_SHA256, Salt};
    struct Len32;
    impl ring::hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let mut seed = [0u8; 32];
    Salt::new(HKDF_SHA256, b"sluice cluster CA v1")
        .extract(secret.as_bytes())
        .expand(&[b"ed25519 seed"], Len32)
        .and_then(|okm| okm.fill(&mut seed))
        .map_err(|_| ClusterTlsError::Random("HKDF failed".into()))?;
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(
        &der.as_slice().into(),
        &PKCS_ED25519,
    )?)
}

fn ca_params() -> Result<CertificateParams, ClusterTlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Sluice cluster CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

impl ClusterTls {
    /// The identity of one process of the cluster whose secret is `secret`.
    pub fn from_secret(secret: &str) -> Result<Self, ClusterTlsError> {
        let secret = secret.trim();
        if secret.chars().count() < MIN_SECRET_LEN {
            return Err(ClusterTlsError::WeakSecret(secret.chars().count()));
        }
        let ca_key = ca_key(secret)?;
        let ca_params = ca_params()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate_for(&PKCS_ED25519)?;
        let mut params = CertificateParams::new(vec![CLUSTER_SERVER_NAME.to_string()])?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, CLUSTER_SERVER_NAME);
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// TLS for a cluster server: its certificate, and client certificates required and
    /// checked against the cluster CA.
    pub fn server_tls(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
    }

    /// TLS for a cluster client: its certificate, and the server's checked against the
    /// cluster CA under [`CLUSTER_SERVER_NAME`].
    pub fn client_tls(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(CLUSTER_SERVER_NAME)
    }

    /// Ballista's endpoint hook: turns the plain `http://host:port` endpoints Ballista
    /// builds into `https://host:port` ones that present this process's certificate (with
    /// the time limits of [`endpoint_override`]).
    pub fn endpoint_override(&self) -> EndpointOverrideFn {
        endpoint_override(Some(self.clone()))
    }
}

/// Seconds a cluster call may wait for its peer to answer (connect, or the response headers
/// of a call; a streamed body is watched by HTTP/2 keep-alive pings instead).
pub const CALL_TIMEOUT_SECONDS: u64 = 20;

/// Ballista's endpoint hook for every cluster-internal connection: time limits and HTTP/2
/// keep-alive, and with `tls` the cluster's mutual TLS (`https://`).
///
/// Ballista's shuffle reads set no time limit: a reader whose peer executor was paused
/// (SIGSTOP: its sockets still accept, nothing answers) waited forever, holding its task
/// slot, and the job never finished even after the scheduler dropped the paused executor.
/// With these limits such a read fails, and Ballista re-runs the lost work.
pub fn endpoint_override(tls: Option<ClusterTls>) -> EndpointOverrideFn {
    let tls = tls.map(|t| t.client_tls());
    Arc::new(move |endpoint: Endpoint| {
        let uri = endpoint.uri();
        let authority = uri
            .authority()
            .ok_or_else(|| format!("the cluster address {uri} has no host"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut rebuilt = Endpoint::from_shared(format!("{scheme}://{authority}"))?
            .connect_timeout(Duration::from_secs(CALL_TIMEOUT_SECONDS))
            .timeout(Duration::from_secs(CALL_TIMEOUT_SECONDS))
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(60)))
            .http2_keep_alive_interval(Duration::from_secs(CALL_TIMEOUT_SECONDS / 2))
            .keep_alive_timeout(Duration::from_secs(CALL_TIMEOUT_SECONDS / 2))
            .keep_alive_while_idle(true);
        if let Some(tls) = &tls {
            rebuilt = rebuilt.tls_config(tls.clone())?;
        }
        Ok(rebuilt)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        let e = ClusterTls::from_secret("short").unwrap_err();
        assert!(e.to_string().contains("at least 32"), "{e}");
    }

    #[test]
    fn every_process_derives_the_same_ca_and_its_own_certificate() {
        let secret = generate_secret().unwrap();
        assert!(secret.len() >= MIN_SECRET_LEN);
        let a = ClusterTls::from_secret(&secret).unwrap();
        let b = ClusterTls::from_secret(&secret).unwrap();
        let other = ClusterTls::from_secret(&generate_secret().unwrap()).unwrap();
        // Same CA key and name (the trust anchor), different leaf keys.
        assert_eq!(
            ca_key(&secret).unwrap().public_key_raw(),
            ca_key(&secret).unwrap().public_key_raw()
        );
        assert_ne!(
            ca_key(&secret).unwrap().public_key_raw(),
            ca_key(&generate_secret().unwrap())
                .unwrap()
                .public_key_raw()
        );
        assert_ne!(a.key_pem, b.key_pem);
        assert_ne!(a.ca_pem, other.ca_pem);
    }

    /// A real TLS handshake over loopback: a peer with the secret is served, a client
    /// without a certificate and one from another cluster are refused.
    #[tokio::test]
    async fn only_peers_with_the_secret_complete_the_handshake() {
        use tonic::transport::Server;
        let secret = generate_secret().unwrap();
        let server = ClusterTls::from_secret(&secret).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(
            Server::builder()
                .tls_config(server.server_tls())
                .unwrap()
                .add_service(health)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let plain = format!("http://{addr}");
        let call = |endpoint: Endpoint| async move {
            let channel = endpoint
                .connect()
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        };
        let peer = ClusterTls::from_secret(&secret).unwrap();
        let ok = call(
            (peer.endpoint_override())(Endpoint::from_shared(plain.clone()).unwrap()).unwrap(),
        )
        .await;
        assert!(ok.is_ok(), "a peer with the secret is served: {ok:?}");

        let stranger = ClusterTls::from_secret(&generate_secret().unwrap()).unwrap();
        let refused = call(
            (stranger.endpoint_override())(Endpoint::from_shared(plain.clone()).unwrap()).unwrap(),
        )
        .await;
        assert!(refused.is_err(), "another cluster's certificate is refused");

        let no_cert = Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&server.ca_pem))
                    .domain_name(CLUSTER_SERVER_NAME),
            )
            .unwrap();
        assert!(
            call(no_cert).await.is_err(),
            "a client without a certificate is refused"
        );

        let cleartext = Endpoint::from_shared(plain).unwrap();
        assert!(call(cleartext).await.is_err(), "plain gRPC is refused");
    }
}
