//! `sluice-executor probe URL`: a health check for containers that have no curl.
//!
//! `http://host:port/path` succeeds on a 200 answer to a GET; `grpc://host:port` succeeds
//! when `grpc.health.v1.Health/Check` for the overall service (`""`) answers SERVING.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The URL is not `http://host:port/path` or `grpc://host:port`.
    #[error("cannot probe '{0}': expected http://host:port/path or grpc://host:port")]
    BadUrl(String),
    /// The server could not be reached or did not answer in time.
    #[error("{url}: {message}")]
    Unreachable {
        /// The probed URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered, but not healthy.
    #[error("{url}: {answer}")]
    Unhealthy {
        /// The probed URL.
        url: String,
        /// What it answered.
        answer: String,
    },
}

/// Probes `url`, giving up after `timeout`.
pub async fn probe(url: &str, timeout: Duration) -> Result<(), ProbeError> {
    let unreachable = |message: String| ProbeError::Unreachable {
        url: url.to_string(),
        message,
    };
    let check = async {
        if let Some(rest) = url.strip_prefix("http://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            if authority.is_empty() {
                return Err(ProbeError::BadUrl(url.to_string()));
            }
            http_get(url, authority, path).await
        } else if let Some(authority) = url.strip_prefix("grpc://") {
            let authority = authority.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(ProbeError::BadUrl(url.to_string()));
            }
            grpc_check(url, authority).await
        } else {
            Err(ProbeError::BadUrl(url.to_string()))
        }
    };
    tokio::time::timeout(timeout, check)
        .await
        .map_err(|_| unreachable(format!("no answer within {} s", timeout.as_secs())))?
}

/// A GET over HTTP/1.1; 200 is healthy.
async fn http_get(url: &str, authority: &str, path: &str) -> Result<(), ProbeError> {
    let unreachable = |e: std::io::Error| ProbeError::Unreachable {
        url: url.to_string(),
        message: e.to_string(),
    };
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(unreachable)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.map_err(unreachable)?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    if code == "200" {
        Ok(())
    } else {
        Err(ProbeError::Unhealthy {
            url: url.to_string(),
            answer: if status_line.is_empty() {
                "no HTTP answer".to_string()
            } else {
                status_line.to_string()
            },
        })
    }
}

/// `grpc.health.v1.Health/Check` of the overall service; SERVING is healthy.
async fn grpc_check(url: &str, authority: &str) -> Result<(), ProbeError> {
    let unreachable = |message: String| ProbeError::Unreachable {
        url: url.to_string(),
        message,
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|_| ProbeError::BadUrl(url.to_string()))?
        .connect()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|e| unreachable(e.message().to_string()))?
        .into_inner();
    match ServingStatus::try_from(answer.status) {
        Ok(ServingStatus::Serving) => Ok(()),
        Ok(other) => Err(ProbeError::Unhealthy {
            url: url.to_string(),
            answer: other.as_str_name().to_string(),
        }),
        Err(_) => Err(ProbeError::Unhealthy {
            url: url.to_string(),
            answer: format!("unknown status {}", answer.status),
        }),
    }
}
