//! Apache Superset's Flight SQL dialect (flightsql-dbapi) against the scheduler: schemas, tables, columns and a grouped query equal to the lake.
//!
//! `tests/superset_flightsql.py` runs in the Superset virtualenv (`.venv-superset`, made by
//! `tests/run` from `tests/requirements-superset.txt`): through the
//! `datafusion+flightsql://user:password@host:port` SQLAlchemy URL, and through Superset's
//! own `Database` model and engine spec, it logs in, lists schemas, tables and columns, and
//! runs a grouped query whose rows must equal DuckDB's over the table's Parquet files
//! (computed here in the main venv, which has DuckDB). A wrong password is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cluster::{Cluster, ONE_CLUSTER_AT_A_TIME, SchedulerSetup};
use crate::flight_sql::{PASSWORD, USER, config_with_user};
use crate::moto::venv;
use crate::support::*;

/// The Superset virtualenv, if it exists.
fn superset_venv() -> Option<PathBuf> {
    let venv = std::env::var_os("SLUICE_SUPERSET_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv-superset"));
    venv.join("bin/python").exists().then_some(venv)
}

/// DuckDB's `album_type, count(*)` over the Parquet files under `table_dir`, written to
/// `out` as JSON rows of text.
fn duckdb_grouped_rows(table_dir: &Path, out: &Path) {
    let script = r#"
import duckdb, json, sys
rows = duckdb.sql(
    "SELECT album_type, CAST(count(*) AS VARCHAR) FROM read_parquet(?, hive_partitioning = true) GROUP BY album_type",
    params=[sys.argv[1] + "/**/*.parquet"],
).fetchall()
json.dump([list(r) for r in rows], open(sys.argv[2], "w"))
"#;
    let run = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(table_dir)
        .arg(out)
        .output()
        .expect("python starts");
    assert!(
        run.status.success(),
        "DuckDB failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn superset_and_its_dialect_list_and_query_the_lake_after_login() {
    let Some(superset) = superset_venv() else {
        assert_ne!(
            std::env::var("SLUICE_REQUIRE_SUPERSET").as_deref(),
            Ok("1"),
            "SLUICE_REQUIRE_SUPERSET=1 but there is no Superset virtualenv \
             (SLUICE_SUPERSET_VENV or .venv-superset; tests/run makes it)"
        );
        eprintln!("skipped: no Superset virtualenv (tests/run makes .venv-superset)");
        return;
    };
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
    let submitted = cluster
        .cli_env(
            &["submit", job.to_str().expect("utf-8"), "--user", USER],
            &[("SLUICE_PASSWORD", PASSWORD)],
        )
        .expect_ok();
    assert!(
        submitted.stdout.contains("state   SUCCEEDED"),
        "{}",
        submitted.stdout
    );

    let tracks = table_dir(&cluster.lake(), "spotify", "tracks");
    let expected = tmp.path().join("expected.json");
    duckdb_grouped_rows(&tracks, &expected);

    let out = Command::new(superset.join("bin/python"))
        .args(["-W", "ignore"])
        .arg(repo().join("tests/superset_flightsql.py"))
        .args(["--host", "127.0.0.1", "--port", &cluster.port().to_string()])
        .args(["--user", USER, "--password", PASSWORD])
        .arg("--parquet")
        .arg(&tracks)
        .arg("--expected")
        .arg(&expected)
        .output()
        .expect("the Superset venv's python starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the Superset checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "dialect_lists_schemas_tables_and_columns",
        "dialect_grouped_query_matches_duckdb",
        "dialect_binds_values_as_literals_safely",
        "dialect_wrong_password_refused",
        "superset_database_model",
    ] {
        assert!(
            stdout.contains(&format!("ok {check}\n")),
            "{check} did not pass:\n{stdout}"
        );
    }
}
