//! Fault injection: executors paused (not killed) while they provably hold a write task,
//! cancels during writes. After each, the table is exactly one run's output, row for row
//! equal to DuckDB's join of the raw CSVs, and no stray file survives the next run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, ONE_CLUSTER_AT_A_TIME, SchedulerSetup};
use crate::support::*;

/// The Spotify job over the shared sample, retried once if a run fails.
fn spotify_job(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("examples/spotify/job.yaml")).expect("read");
    let text = text.replace(
        "staging: data",
        &format!("staging: {}\nmax_retries: 1", spotify_data().display()),
    );
    let job = dir.join("spotify.yaml");
    std::fs::write(&job, text).expect("write job");
    job
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn wait_until(seconds: u64, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_executor_never_writes_into_the_committed_version() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let cluster = Cluster::start_full(
        tmp.path(),
        &lake.display().to_string(),
        vec![("SLUICE_FAILPOINT".into(), "slow_write".into())],
        SchedulerSetup::default(),
    );
    let job = spotify_job(tmp.path());
    let submit = {
        let job = job.display().to_string();
        let cli = cluster.cli_command(&["submit", &job]);
        std::thread::spawn(cli)
    };

    // Wait until an executor says it holds a write task, then pause it there.
    let mut paused = None;
    wait_until(60, "an executor holding a write task", || {
        let logs = cluster.executor_logs();
        paused = logs
            .iter()
            .position(|l| l.contains("failpoint slow_write: pid"));
        paused.is_some()
    });
    let paused = paused.expect("an executor");
    let pid = cluster.executor_pid(paused);
    signal(pid, "-STOP");
    let run = submit.join().expect("submit thread");
    // Resume it whatever happened, before asserting.
    signal(pid, "-CONT");
    let run = run.expect_ok();
    assert!(run.stdout.contains("state   SUCCEEDED"), "{}", run.stdout);

    // The resumed executor finishes its superseded write: it lands in the staging folder,
    // which proves the late write happened.
    let table_root = lake.join("spotify/tracks");
    let marker = format!("-p{pid}-");
    wait_until(30, "the paused executor's late write", || {
        files_under(&table_root)
            .iter()
            .any(|f| f.contains(&marker) && f.ends_with(".parquet"))
    });
    let entry = catalog_entry(&lake, "spotify", "tracks").expect("registered");
    let location = entry["location"].as_str().expect("location");
    let version = PathBuf::from(location.trim_start_matches("file://"));
    let in_version = files_under(&version);
    assert!(
        !in_version.iter().any(|f| f.contains(&marker)),
        "a superseded attempt's file is in the committed version: {in_version:?}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(version.join("_SUCCESS")).expect("sealed"))
            .expect("manifest");
    let mut listed: Vec<String> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path").to_string())
        .collect();
    listed.push("_SUCCESS".into());
    listed.sort();
    assert_eq!(in_version, listed, "the version holds exactly its manifest");
    assert_eq!(assert_spotify_oracle(&spotify_data(), &version), 19_621);

    // The next run leaves no staging files behind, late ones included.
    let again = cluster
        .cli(&["submit", &job.display().to_string()])
        .expect_ok();
    assert!(
        again.stdout.contains("state   SUCCEEDED"),
        "{}",
        again.stdout
    );
    let staged = files_under(&table_root.join("_attempts"));
    assert!(staged.is_empty(), "stray staging files: {staged:?}");
}
