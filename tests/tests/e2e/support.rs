//! Helpers: run the real `sluice` binary, copy staging data, read the lake and catalog.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;

/// The repository root.
///
/// `cargo test` sets `CARGO_MANIFEST_DIR` when it runs the tests, and that is read first: a
/// build cache shared by two checkouts (`.ci/run` keeps one outside the clone) can hand one
/// checkout a test binary compiled in the other, with the other's path baked in.
pub fn repo() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The example's staging folder.
pub fn spotify_data() -> PathBuf {
    repo().join("examples/spotify/data")
}

/// Path of a built binary of the workspace (`cargo build --bins` puts them beside `deps/`).
pub fn binary(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!(
        "SLUICE_BIN_{}",
        name.replace('-', "_").to_uppercase()
    )) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build the binaries first (cargo build --bins)",
        bin.display()
    );
    bin
}

/// The result of one CLI call.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Self {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the call succeeded.
    pub fn expect_ok(self) -> Self {
        assert!(
            self.ok,
            "sluice failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics with both streams unless the call failed.
    pub fn expect_failure(self) -> Self {
        assert!(
            !self.ok,
            "sluice should have failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `sluice ARGS` with extra environment variables.
pub fn sluice(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(binary("sluice"));
    cmd.args(args)
        .env_remove("SLUICE_LAKE")
        .env_remove("SLUICE_FAILPOINT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().expect("sluice starts"))
}

/// The number in a one-column CSV answer `n\n<count>` from `sluice query --format csv`.
pub fn csv_count(run: &Run) -> u64 {
    run.stdout
        .trim()
        .strip_prefix("n\n")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a CSV count, got:\n{}\n{}", run.stdout, run.stderr))
}

/// Copies the example's staging CSVs and job into `dir`; returns the job file path.
pub fn copy_example(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    for f in ["albums.csv", "artists.csv", "tracks.csv"] {
        std::fs::copy(spotify_data().join(f), data.join(f)).expect("copy csv");
    }
    let job = dir.join("job.yaml");
    std::fs::copy(repo().join("examples/spotify/job.yaml"), &job).expect("copy job");
    job
}

/// The embedded catalog's entry for a table, as JSON.
pub fn catalog_entry(lake: &Path, database: &str, table: &str) -> Option<serde_json::Value> {
    let p = lake
        .join("_sluice_catalog")
        .join(database)
        .join(format!("{table}.json"));
    let text = std::fs::read_to_string(p).ok()?;
    Some(serde_json::from_str(&text).expect("catalog entry is JSON"))
}

/// Names of what readers can see under a table's root: its version folders (and anything
/// else but the runs' staging folder, `_attempts`, which no reader lists and which the next
/// commit empties).
pub fn versions(lake: &Path, database: &str, table: &str) -> Vec<String> {
    let dir = lake.join(database).join(table);
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name != "_attempts")
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Runs SQL and renders the result as text, for comparisons.
pub async fn sql_text(ctx: &SessionContext, sql: &str) -> String {
    let batches: Vec<RecordBatch> = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pretty_format_batches(&batches).expect("format").to_string()
}

/// A per-column fingerprint of `table`: count, distinct count, min and max of every column
/// (as text), and the sum of numeric columns (floats rounded, as summation order varies).
pub async fn fingerprint(
    ctx: &SessionContext,
    table: &str,
    columns: &[(String, DataType)],
) -> String {
    let mut parts = vec!["count(*) AS n".to_string()];
    for (i, (c, ty)) in columns.iter().enumerate() {
        parts.push(format!("count(\"{c}\") AS c{i}"));
        parts.push(format!("count(DISTINCT \"{c}\") AS d{i}"));
        parts.push(format!("min(CAST(\"{c}\" AS VARCHAR)) AS lo{i}"));
        parts.push(format!("max(CAST(\"{c}\" AS VARCHAR)) AS hi{i}"));
        if ty.is_integer() {
            parts.push(format!("sum(\"{c}\") AS s{i}"));
        } else if ty.is_floating() {
            parts.push(format!("round(sum(\"{c}\"), 2) AS s{i}"));
        }
    }
    sql_text(ctx, &format!("SELECT {} FROM {table}", parts.join(", "))).await
}

/// Checks a table's Parquet files against DuckDB's own join of the raw Spotify CSVs in
/// `staging` (`tests/oracle.py`: whole rows, EXCEPT ALL both ways); returns the row count.
pub fn assert_spotify_oracle(staging: &Path, table_dir: &Path) -> u64 {
    let out = std::process::Command::new(crate::moto::venv().join("bin/python"))
        .arg(repo().join("tests/oracle.py"))
        .arg("spotify")
        .arg(staging)
        .arg(table_dir)
        .output()
        .expect("the oracle starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the table differs from DuckDB's join of the raw CSVs:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("rows "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("the oracle printed no row count:\n{stdout}"))
}

/// Runs `tests/oracle.py ARGS` in the test virtualenv; returns (success, stdout, stderr).
fn oracle(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = std::process::Command::new(crate::moto::venv().join("bin/python"))
        .arg(repo().join("tests/oracle.py"))
        .args(args)
        .output()
        .expect("the oracle starts");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn csv_args(csvs: &[(&str, &Path)]) -> Vec<std::ffi::OsString> {
    csvs.iter()
        .map(|(name, path)| {
            let mut arg = std::ffi::OsString::from(format!("{name}="));
            arg.push(path.as_os_str());
            arg
        })
        .collect()
}

/// Checks a table's Parquet files (Hive partition folders included) against DuckDB running
/// `sql` over the raw CSV files `csvs` (name, path): whole rows, EXCEPT ALL both ways.
/// Returns the row count.
pub fn assert_sql_oracle(table_dir: &Path, sql: &str, csvs: &[(&str, &Path)]) -> u64 {
    let mut args: Vec<std::ffi::OsString> =
        vec!["sql".into(), table_dir.as_os_str().to_owned(), sql.into()];
    args.extend(csv_args(csvs));
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (ok, stdout, stderr) = oracle(&refs);
    assert!(
        ok,
        "the table at {} differs from DuckDB's `{sql}` over the raw CSVs:\n{stdout}\n{stderr}",
        table_dir.display()
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("rows "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("the oracle printed no row count:\n{stdout}"))
}

/// DuckDB's answer to `sql` over the raw CSV files `csvs` (with the view `spotify`, the
/// Spotify join, when albums, artists and tracks are named), every value as text.
pub fn oracle_query(sql: &str, csvs: &[(&str, &Path)]) -> Vec<Vec<Option<String>>> {
    let mut args: Vec<std::ffi::OsString> = vec!["query".into(), sql.into()];
    args.extend(csv_args(csvs));
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (ok, stdout, stderr) = oracle(&refs);
    assert!(ok, "DuckDB failed on `{sql}`:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).expect("rows as JSON")
}

/// The Spotify CSVs of `staging` as (name, path) pairs for the oracle.
pub fn spotify_csvs(staging: &Path) -> Vec<(&'static str, PathBuf)> {
    ["albums", "artists", "tracks"]
        .into_iter()
        .map(|t| (t, staging.join(format!("{t}.csv"))))
        .collect()
}

/// The folder of a table's current version, from the embedded catalog.
pub fn table_dir(lake: &Path, database: &str, table: &str) -> PathBuf {
    let entry = catalog_entry(lake, database, table).expect("the table is registered");
    let location = entry["location"].as_str().expect("a location");
    PathBuf::from(location.strip_prefix("file://").unwrap_or(location))
}

/// Copies the Parquet files under the S3 `location` (a table's registered version folder)
/// into `dest`, keeping their `key=value` folders, for the oracle to read.
pub fn download_table(moto: &crate::moto::Moto, location: &str, dest: &std::path::Path) {
    let (bucket, prefix) = location
        .trim_start_matches("s3://")
        .split_once('/')
        .expect("s3://bucket/prefix");
    let prefix = format!("{}/", prefix.trim_end_matches('/'));
    moto.python(&format!(
        r#"
import os
for page in s3.get_paginator('list_objects_v2').paginate(Bucket='{bucket}', Prefix='{prefix}'):
    for o in page.get('Contents', []):
        if o['Key'].endswith('.parquet'):
            local = os.path.join('{dest}', o['Key'][len('{prefix}'):])
            os.makedirs(os.path.dirname(local), exist_ok=True)
            s3.download_file('{bucket}', o['Key'], local)
"#,
        dest = dest.display()
    ));
}

/// The hash `sluice-scheduler hash-password` prints for `password`.
pub fn password_hash(password: &str) -> String {
    let out = Command::new(binary("sluice-scheduler"))
        .arg("hash-password")
        .env("SLUICE_PASSWORD", password)
        .output()
        .expect("sluice-scheduler starts");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    hash
}
