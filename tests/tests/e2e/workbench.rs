//! The SQL workbench in a real browser: charts, saved queries, results kept in the lake and downloaded as CSV and Parquet.
//!
//! The real `sluice run` writes the Spotify example into a temporary lake; the real
//! `sluice serve --users` serves it with a results retention of at most three results;
//! `tests/browser_workbench.py` drives Debian's Chromium as an analyst: a grouped query
//! charted as a bar and a line (the ECharts instance's series data equal DuckDB's aggregate
//! over the table's Parquet files), a chart by a series column, a query saved, listed after
//! a reload, opened, another deleted, the result downloaded as CSV and as Parquet (whole
//! rows equal DuckDB's), its files under `<lake>/_sluice/results/`, another analyst refused
//! (403), an admin allowed, a cross-site save refused, and the fourth newer result deleting
//! the oldest. A second server with a retention of one second deletes every kept result.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::dashboard::{browser_available, spotify_lake};
use crate::support::*;

/// A `sluice serve` process, killed when dropped.
pub(crate) struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `sluice serve` over `lake` with `args`; returns it and its URL (also used by the
/// playground's test).
pub(crate) fn serve(lake: &Path, args: &[&str]) -> (Serve, String) {
    let mut child = Command::new(binary("sluice"))
        .arg("serve")
        .args(["--lake", &lake.display().to_string()])
        .args(["--http-bind", "127.0.0.1:0", "--partitions", "2"])
        .args(args)
        .env_remove("SLUICE_LAKE")
        .env_remove("SLUICE_DASHBOARDS")
        .env_remove("SLUICE_RESULTS_RETENTION")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sluice serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let server = Serve(child);
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        let n = stdout
            .read_line(&mut line)
            .expect("read sluice serve's output");
        assert!(n > 0, "sluice serve exited before serving:\n{printed}");
        printed.push_str(&line);
        if let Some(rest) = line.trim().strip_prefix("open ") {
            let url = rest.split_whitespace().next().expect("a URL").to_string();
            // Keep reading its output so the pipe never fills.
            std::thread::spawn(move || for _ in stdout.lines() {});
            return (server, url);
        }
    }
}

/// Runs the browser script with `args`; panics with its output unless it passed.
fn browse(url: &str, lake: &Path, table: &Path, args: &[&str]) -> String {
    let out = Command::new(crate::moto::venv().join("bin/python"))
        .arg(repo().join("tests/browser_workbench.py"))
        .args([
            url,
            &lake.display().to_string(),
            &table.display().to_string(),
        ])
        .args(["--user", "ana", "--password", "s3cret-pw"])
        .args(["--other", "bo", "--other-password", "s3cret-pw"])
        .args(["--admin", "root", "--admin-password", "s3cret-pw"])
        .args(args)
        .output()
        .expect("the browser script starts");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SQL workbench in Chromium failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all workbench checks passed"), "{stdout}");
    stdout
}

#[test]
fn workbench_charts_saves_keeps_results_in_the_lake_and_applies_the_retention() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (lake, table, _run_id) = spotify_lake(dir.path());
    let users = dir.path().join("users.yaml");
    std::fs::write(
        &users,
        format!(
            "users:\n  - name: ana\n    password_hash: \"{h}\"\n    role: analyst\n  - name: bo\n    password_hash: \"{h}\"\n    role: analyst\n  - name: root\n    password_hash: \"{h}\"\n    role: admin\n",
            h = password_hash("s3cret-pw")
        ),
    )
    .expect("write the users file");
    let users = users.display().to_string();
    {
        let (_server, url) = serve(&lake, &["--users", &users, "--results-retention", "7d,3"]);
        let out = browse(&url, &lake, &table, &["--max-count", "3"]);
        assert!(
            out.contains("ok   retention: at most 3 results kept"),
            "{out}"
        );
    }
    let results = lake.join("_sluice/results");
    let kept = std::fs::read_dir(&results)
        .expect("the results folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        })
        .count();
    assert_eq!(kept, 3, "results kept under {}", results.display());

    // A server keeping results one second deletes them all.
    let (_server, url) = serve(&lake, &["--users", &users, "--results-retention", "1s"]);
    let out = browse(&url, &lake, &table, &["--expire"]);
    assert!(out.contains("ok   retention by age"), "{out}");
    let left = std::fs::read_dir(&results)
        .expect("the results folder")
        .count();
    assert_eq!(left, 0, "results left under {}", results.display());
}

/// A retention that does not parse stops `sluice serve` with a message naming the flag's value.
#[test]
fn serve_refuses_a_bad_results_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(binary("sluice"))
        .arg("serve")
        .args(["--lake", &dir.path().display().to_string()])
        .args(["--http-bind", "127.0.0.1:0", "--results-retention", "7x"])
        .env_remove("SLUICE_RESULTS_RETENTION")
        .output()
        .expect("sluice serve starts");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad results retention '7x': unknown unit 'x'"),
        "{stderr}"
    );
}
