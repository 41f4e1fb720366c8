//! What a Flight SQL client receives is plain Arrow `Utf8` for every string column, checked
//! on the wire by pyarrow.flight and ADBC with no cast in between
//! (`tests/flight_sql_types.py`).

use std::process::Command;

use crate::cluster::{Cluster, ONE_CLUSTER_AT_A_TIME, SchedulerSetup};
use crate::flight_sql::{PASSWORD, USER, config_with_user};
use crate::moto::venv;
use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn flight_sql_sends_plain_utf8_strings() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = config_with_user(tmp.path(), "");
    let setup = SchedulerSetup {
        args: vec!["--config".into(), config.display().to_string()],
        cluster_port: true,
        ..SchedulerSetup::default()
    };
    let lake = tmp.path().join("lake");
    let cluster = Cluster::start_full(tmp.path(), &lake.display().to_string(), Vec::new(), setup);
    let job = repo().join("examples/spotify/job.yaml");
    sluice(
        &[
            "submit",
            job.to_str().expect("utf-8"),
            "--scheduler",
            &cluster.url,
            "--user",
            USER,
        ],
        &[("SLUICE_PASSWORD", PASSWORD)],
    )
    .expect_ok();
    let location = table_dir(&lake, "spotify", "tracks");

    let out = Command::new(venv().join("bin/python"))
        .arg("-W")
        .arg("ignore")
        .arg(repo().join("tests/flight_sql_types.py"))
        .args(["--uri", &cluster.url.replace("http://", "grpc://")])
        .args(["--user", USER, "--password", PASSWORD])
        .arg("--location")
        .arg(&location)
        .output()
        .expect("python starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Flight SQL type checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "pyarrow_flight_sends_plain_strings",
        "adbc_receives_plain_strings",
        "rows_match_the_lake_without_a_cast",
    ] {
        assert!(
            stdout.contains(&format!("ok {check}\n")),
            "{check} did not pass:\n{stdout}"
        );
    }
}
