//! The cluster's trust boundary: no port that accepts work or serves data answers an
//! anonymous caller. Probed from outside with Python's grpc and ssl modules
//! (`tests/probe_ports.py`), against real scheduler and executor processes.

use std::path::Path;
use std::process::Command;

use crate::cluster::{Cluster, ONE_CLUSTER_AT_A_TIME, SchedulerSetup, free_port};
use crate::flight_sql::{PASSWORD, USER, config_with_user};
use crate::moto::venv;
use crate::support::*;

/// Ballista's scheduler service methods an attacker used (run a plan, stop executors,
/// delete job data), and those an executor calls: a poll for work is held by the scheduler
/// (`long_poll.rs`), so a flood of anonymous polls must not reach it either.
const BALLISTA_METHODS: [&str; 8] = [
    "/ballista.protobuf.SchedulerGrpc/ExecuteQuery",
    "/ballista.protobuf.SchedulerGrpc/CancelJob",
    "/ballista.protobuf.SchedulerGrpc/ExecutorStopped",
    "/ballista.protobuf.SchedulerGrpc/CleanJobData",
    "/ballista.protobuf.SchedulerGrpc/PollWork",
    "/ballista.protobuf.SchedulerGrpc/RegisterExecutor",
    "/ballista.protobuf.SchedulerGrpc/HeartBeatFromExecutor",
    "/ballista.protobuf.SchedulerGrpc/UpdateTaskStatus",
];

fn probe(args: &[&str]) -> String {
    let out = Command::new(venv().join("bin/python"))
        .arg(repo().join("tests/probe_ports.py"))
        .args(args)
        .output()
        .expect("python starts");
    assert!(
        out.status.success(),
        "probe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The executors' Flight addresses, from their logs.
fn flight_addresses(cluster: &Cluster) -> Vec<String> {
    cluster
        .executor_logs()
        .iter()
        .map(|log| {
            log.lines()
                .find_map(|l| l.split("Flight service over mutual TLS on ").nth(1))
                .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
                .unwrap_or_else(|| panic!("an executor named its Flight address:\n{log}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_secret_puts_every_internal_port_on_mutual_tls() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = config_with_user(tmp.path(), "");
    let secret = "a-test-cluster-secret-of-more-than-32-characters";
    let http = format!("127.0.0.1:{}", free_port());
    let dashboards = repo().join("examples/spotify/dashboard.yaml");
    let cluster = Cluster::start_full(
        tmp.path(),
        &tmp.path().join("lake").display().to_string(),
        vec![("SLUICE_CLUSTER_SECRET".into(), secret.into())],
        SchedulerSetup {
            args: vec![
                "--config".into(),
                config.display().to_string(),
                "--http-bind".into(),
                http.clone(),
                "--dashboards".into(),
                dashboards.display().to_string(),
            ],
            cluster_port: true,
            url: None,
        },
    );

    // The whole pipeline runs over the authenticated cluster, and its table is DuckDB's
    // join of the raw CSVs.
    let job = repo().join("examples/spotify/job.yaml");
    let mut args = vec!["submit", job.to_str().expect("utf-8")];
    args.extend(["--user", USER]);
    let submitted = cluster.cli_env(&args, &[("SLUICE_PASSWORD", PASSWORD)]);
    let submitted = submitted.expect_ok();
    assert!(
        submitted.stdout.contains("state   SUCCEEDED"),
        "{}",
        submitted.stdout
    );
    let entry = catalog_entry(&cluster.lake(), "spotify", "tracks").expect("registered");
    let location = entry["location"].as_str().expect("location");
    let rows = assert_spotify_oracle(
        &spotify_data(),
        Path::new(location.trim_start_matches("file://")),
    );
    assert_eq!(rows, 19_621);

    // The client port does not serve Ballista's service at all.
    let client = format!("127.0.0.1:{}", cluster.port());
    for method in BALLISTA_METHODS {
        let code = probe(&["grpc", &client, method]);
        assert!(
            code == "UNIMPLEMENTED" || code == "UNAUTHENTICATED",
            "{method} on the client port answered {code}"
        );
    }
    // The cluster port takes neither plain gRPC nor TLS without the cluster's certificate.
    let internal = format!("127.0.0.1:{}", cluster.cluster_port());
    for method in BALLISTA_METHODS {
        let code = probe(&["grpc", &internal, method]);
        assert_eq!(
            code, "UNAVAILABLE",
            "{method} in cleartext on the cluster port"
        );
    }
    assert_eq!(
        probe(&["tls", &internal]),
        "refused",
        "TLS without a client certificate"
    );
    // Nor do the executors' Flight ports (shuffle data and results).
    for flight in flight_addresses(&cluster) {
        let code = probe(&[
            "grpc",
            &flight,
            "/arrow.flight.protocol.FlightService/DoGet",
        ]);
        assert_eq!(code, "UNAVAILABLE", "DoGet in cleartext on {flight}");
        assert_eq!(
            probe(&["tls", &flight]),
            "refused",
            "TLS without a certificate on {flight}"
        );
    }
    // The HTTP ports: health and metrics answer anyone (orchestrators probe them); the
    // scheduler's dashboard pages send an anonymous caller to the login page and its API
    // answers 401, reads and state-changing requests alike.
    let get = |url: &str| probe(&["http", url]);
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(&format!("http://{http}{path}")), "200", "{path}");
    }
    for page in [
        "/",
        "/dashboards",
        "/dashboards/spotify",
        "/catalog",
        "/runs",
        "/sql",
    ] {
        let answer = get(&format!("http://{http}{page}"));
        assert!(
            answer.starts_with("303 -> /login?next="),
            "{page} without a session: {answer}"
        );
    }
    for api in [
        "/api/dashboards",
        "/api/dashboards/spotify/panels/tracks/data",
        "/api/dashboards/spotify/panels/top_tracks/rows",
        "/api/catalog",
        "/api/runs",
        "/api/cache",
    ] {
        assert_eq!(get(&format!("http://{http}{api}")), "401", "{api}");
    }
    assert_eq!(
        probe(&["http", &format!("http://{http}/api/sql"), "POST"]),
        "401"
    );
    // The executors' HTTP ports serve health and metrics only: no dashboards, no data (other
    // paths fall through to the gRPC health router, which answers UNIMPLEMENTED, empty).
    let not_served = |answer: &str| answer == "404" || answer == "200 grpc-status 12";
    for log in cluster.executor_logs() {
        let address = log
            .lines()
            .find_map(|l| l.split("health and metrics on http://").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("an executor named its HTTP address:\n{log}"))
            .to_string();
        for path in ["/healthz", "/readyz", "/metrics"] {
            assert_eq!(get(&format!("http://{address}{path}")), "200", "{path}");
        }
        for path in ["/dashboards", "/api/dashboards", "/api/catalog"] {
            let answer = get(&format!("http://{address}{path}"));
            assert!(not_served(&answer), "{path} on {address}: {answer}");
        }
        let answer = probe(&["http", &format!("http://{address}/api/sql"), "POST"]);
        assert!(not_served(&answer), "POST /api/sql on {address}: {answer}");
    }
}

/// What an adversarial review found: with users configured and no `--cluster-bind`, the
/// client port served Ballista's service to anyone. Such set-ups now refuse to start.
#[tokio::test(flavor = "multi_thread")]
async fn open_cluster_ports_refuse_to_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = config_with_user(tmp.path(), "");
    let port = free_port().to_string();
    let scheduler = |extra: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(binary("sluice-scheduler"));
        cmd.args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--lake", &tmp.path().join("lake").display().to_string()])
            .args(["--data-dir", &tmp.path().join("data").display().to_string()])
            .args(extra)
            .env_remove("SLUICE_CLUSTER_SECRET");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("sluice-scheduler starts");
        assert!(!out.status.success(), "it must refuse {extra:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let config = config.display().to_string();
    let err = scheduler(&["--config", &config], &[]);
    assert!(err.contains("--cluster-bind"), "{err}");

    let open = format!("0.0.0.0:{}", free_port());
    let err = scheduler(&["--config", &config, "--cluster-bind", &open], &[]);
    assert!(err.contains("no cluster secret"), "{err}");

    let err = scheduler(&[], &[("SLUICE_CLUSTER_SECRET", "too-short")]);
    assert!(err.contains("--cluster-bind"), "{err}");
    let internal = format!("127.0.0.1:{}", free_port());
    let err = scheduler(
        &["--cluster-bind", &internal],
        &[("SLUICE_CLUSTER_SECRET", "too-short")],
    );
    assert!(err.contains("at least 32"), "{err}");

    let out = Command::new(binary("sluice-executor"))
        .args(["--bind-host", "0.0.0.0", "--scheduler-port", &port])
        .args(["--port", &free_port().to_string()])
        .env_remove("SLUICE_CLUSTER_SECRET")
        .output()
        .expect("sluice-executor starts");
    assert!(
        !out.status.success(),
        "an executor open to the network refuses"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no cluster secret"), "{err}");
}
