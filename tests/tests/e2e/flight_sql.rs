//! The Flight SQL query service, tested with clients Sluice did not write (ADBC's Flight SQL
//! driver and pyarrow.flight, in `tests/flight_sql_client.py`) against a real scheduler and
//! executors, with logins, TLS and the query time limit.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cluster::{Cluster, ONE_CLUSTER_AT_A_TIME, SchedulerSetup};
use crate::moto::venv;
use crate::support::*;

pub(crate) const USER: &str = "analyst";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A scheduler config file with one user whose hash `sluice-scheduler hash-password` made.
pub(crate) fn config_with_user(dir: &Path, extra: &str) -> PathBuf {
    let hash = password_hash(PASSWORD);
    let path = dir.join("scheduler.yaml");
    std::fs::write(
        &path,
        // The user submits jobs as well as querying: users default to the `analyst` role.
        format!(
            "users:\n  - name: {USER}\n    password_hash: \"{hash}\"\n    role: engineer\n{extra}"
        ),
    )
    .expect("write config");
    path
}

/// `sluice ARGS --scheduler URL --user analyst` with the password in the environment.
fn logged_in(cluster: &Cluster, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--scheduler", &cluster.url, "--user", USER]);
    let mut env = vec![("SLUICE_PASSWORD", PASSWORD)];
    env.extend_from_slice(extra_env);
    sluice(&all, &env)
}

/// The folder of the current version of `spotify.tracks`, from the embedded catalog.
fn tracks_location(lake: &Path) -> String {
    let entry = catalog_entry(lake, "spotify", "tracks").expect("spotify.tracks is registered");
    let location = entry["location"].as_str().expect("a location").to_string();
    location
        .strip_prefix("file://")
        .unwrap_or(&location)
        .to_string()
}

/// Runs the Python Flight SQL clients; returns the checks that passed.
fn python_clients(uri: &str, location: &str, extra: &[&str]) -> String {
    let out = Command::new(venv().join("bin/python"))
        .arg("-W")
        .arg("ignore")
        .arg(repo().join("tests/flight_sql_client.py"))
        .args(["--uri", uri, "--user", USER, "--password", PASSWORD])
        .args(["--location", location])
        .args(extra)
        .output()
        .expect("python starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the Flight SQL clients failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn flight_sql_serves_the_lake_to_adbc_and_pyarrow_after_login() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = config_with_user(tmp.path(), "");
    // With users, executors get a port of their own (the client port takes logins only).
    let setup = SchedulerSetup {
        args: vec!["--config".into(), config.display().to_string()],
        cluster_port: true,
        ..SchedulerSetup::default()
    };
    let lake = tmp.path().join("lake");
    let cluster = Cluster::start_full(tmp.path(), &lake.display().to_string(), Vec::new(), setup);
    let job = repo().join("examples/spotify/job.yaml");
    let job = job.to_str().expect("utf-8");

    // The job service takes the same tokens: no login, no job.
    let refused = cluster.cli(&["submit", job]).expect_failure();
    assert!(
        refused.stderr.contains("Unauthenticated") && !lake.join("spotify").exists(),
        "{}",
        refused.stderr
    );
    let wrong = sluice(
        &["jobs", "--scheduler", &cluster.url, "--user", USER],
        &[("SLUICE_PASSWORD", "not the password")],
    )
    .expect_failure();
    assert!(
        wrong.stderr.contains("invalid user name or password"),
        "{}",
        wrong.stderr
    );
    let submitted = logged_in(&cluster, &["submit", job], &[]).expect_ok();
    assert!(
        submitted.stdout.contains("state   SUCCEEDED"),
        "{}",
        submitted.stdout
    );

    // Queryable at once over Flight SQL (no restart), by Sluice's own client...
    let sql = "SELECT count(*) AS n FROM spotify.tracks";
    let via_flight = logged_in(&cluster, &["query", sql, "--format", "csv"], &[]).expect_ok();
    let via_lake = crate::count_via_cli(&lake);
    assert_eq!(csv_count(&via_flight), via_lake);
    assert!(csv_count(&via_flight) > 0);
    let anonymous = cluster
        .cli(&["query", sql, "--format", "csv"])
        .expect_failure();
    assert!(
        anonymous.stderr.contains("Unauthenticated"),
        "{}",
        anonymous.stderr
    );

    // ...and by ADBC and pyarrow.flight, compared with the Parquet files pyarrow reads.
    let uri = cluster.url.replace("http://", "grpc://");
    let passed = python_clients(&uri, &tracks_location(&lake), &[]);
    for check in [
        "adbc_query_matches_lake",
        "adbc_get_objects",
        "adbc_get_info_and_table_types",
        "adbc_get_table_schema",
        "adbc_prepared_statement_with_parameter",
        "adbc_ddl_refused",
        "adbc_sql_errors",
        "adbc_wrong_password_refused",
        "pyarrow_flight_refuses_without_login",
        "pyarrow_flight_ticket_reused",
        "pyarrow_flight_bearer_token",
    ] {
        assert!(
            passed.contains(&format!("ok {check}\n")),
            "{check} did not pass:\n{passed}"
        );
    }
    // The refused DDL changed nothing.
    assert_eq!(versions(&lake, "spotify", "tracks").len(), 1);
    assert!(catalog_entry(&lake, "spotify", "copy").is_none());
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl starts");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a server certificate it signed for `localhost` and 127.0.0.1:
/// (CA certificate, server certificate, server key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Sluice test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "tls.crt",
        ],
    );
    (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"))
}

#[tokio::test(flavor = "multi_thread")]
async fn flight_sql_over_tls_with_a_query_time_limit() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ca_cert, _cert, _key) = certificates(tmp.path());
    let config = config_with_user(
        tmp.path(),
        "query_timeout_seconds: 4\ntls:\n  cert: tls.crt\n  key: tls.key\n",
    );
    // TLS without a separate executor port is refused with the reason.
    let no_cluster_port = Command::new(binary("sluice-scheduler"))
        .arg("--config")
        .arg(&config)
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("unused"))
        .output()
        .expect("sluice-scheduler starts");
    let stderr = String::from_utf8_lossy(&no_cluster_port.stderr);
    assert!(
        !no_cluster_port.status.success() && stderr.contains("--cluster-bind"),
        "{stderr}"
    );
    // Reachable from other machines without users: refused unless --insecure-no-auth.
    let open = Command::new(binary("sluice-scheduler"))
        .args(["--bind", "0.0.0.0:0", "--data-dir"])
        .arg(tmp.path().join("unused"))
        .output()
        .expect("sluice-scheduler starts");
    let stderr = String::from_utf8_lossy(&open.stderr);
    assert!(
        !open.status.success() && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );

    let setup = SchedulerSetup {
        args: vec!["--config".into(), config.display().to_string()],
        cluster_port: true,
        url: Some("https://localhost:{port}".into()),
    };
    let lake = tmp.path().join("lake");
    let cluster = Cluster::start_full(tmp.path(), &lake.display().to_string(), Vec::new(), setup);
    let ca = ca_cert.display().to_string();
    let job = repo().join("examples/spotify/job.yaml");
    let submitted = logged_in(
        &cluster,
        &["submit", job.to_str().expect("utf-8"), "--tls-ca", &ca],
        &[],
    )
    .expect_ok();
    assert!(
        submitted.stdout.contains("state   SUCCEEDED"),
        "{}",
        submitted.stdout
    );

    let sql = "SELECT count(*) AS n FROM spotify.tracks";
    let over_tls = logged_in(
        &cluster,
        &["query", sql, "--format", "csv", "--tls-ca", &ca],
        &[],
    )
    .expect_ok();
    assert!(csv_count(&over_tls) > 0);
    // A client that does not trust the certificate cannot connect.
    let untrusted = logged_in(&cluster, &["query", sql], &[]).expect_failure();
    assert!(untrusted.stderr.contains("cannot"), "{}", untrusted.stderr);

    let uri = cluster.url.replace("https://", "grpc+tls://");
    let passed = python_clients(
        &uri,
        &tracks_location(&lake),
        &["--tls-ca", &ca, "--only", "pyarrow"],
    );
    assert!(
        passed.contains("ok pyarrow_flight_bearer_token"),
        "{passed}"
    );

    // A query past the limit is cancelled with a clear status, and the service goes on.
    let slow = "SELECT count(*) AS n FROM spotify.tracks a CROSS JOIN spotify.tracks b \
                WHERE a.duration_ms + b.duration_ms < 0";
    let cancelled = logged_in(&cluster, &["query", slow, "--tls-ca", &ca], &[]).expect_failure();
    assert!(
        cancelled
            .stderr
            .contains("longer than the scheduler's limit of 4 s")
            && cancelled.stderr.contains("DeadlineExceeded"),
        "{}",
        cancelled.stderr
    );
    // Tasks already running on pull-mode executors finish their partition (Ballista has no
    // cancel channel to them); no new ones start, so the cluster is free again shortly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let after = logged_in(
            &cluster,
            &["query", sql, "--format", "csv", "--tls-ca", &ca],
            &[],
        );
        if after.ok {
            assert_eq!(csv_count(&after), csv_count(&over_tls));
            break;
        }
        assert!(
            after.stderr.contains("limit") && std::time::Instant::now() < deadline,
            "{}",
            after.stderr
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
