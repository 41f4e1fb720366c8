//! Fault injection: executors paused (not killed) while they provably hold a write task,
//! cancels during writes. After each, the table is exactly one run's output, row for row
//! equal to DuckDB's join of the raw CSVs, and no stray file survives the next run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::{
    Cluster, ONE_CLUSTER_AT_A_TIME, SchedulerSetup, submitted_id, wait_for_state,
};
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

/// A process stopped with SIGSTOP until this is dropped (SIGCONT), whatever happens.
pub(crate) struct Paused(u32);

impl Paused {
    /// Stops `pid` (SIGSTOP) until the guard is dropped.
    pub(crate) fn new(pid: u32) -> Self {
        signal(pid, "-STOP");
        Self(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
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

/// A cluster whose processes run with `SLUICE_FAILPOINT=failpoint`, and the Spotify job
/// submitted to it without waiting: (its folder, lake, cluster, job file, run id).
fn submit_with_failpoint(
    failpoint: &str,
) -> (tempfile::TempDir, PathBuf, Cluster, PathBuf, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let cluster = Cluster::start_full(
        tmp.path(),
        &lake.display().to_string(),
        vec![("SLUICE_FAILPOINT".into(), failpoint.into())],
        SchedulerSetup::default(),
    );
    let job = spotify_job(tmp.path());
    let submitted = cluster
        .cli(&["submit", &job.display().to_string(), "--detach"])
        .expect_ok();
    let id = submitted_id(&submitted);
    (tmp, lake, cluster, job, id)
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
    let (_tmp, lake, cluster, job, id) = submit_with_failpoint("slow_write");

    // Wait until an executor says it holds a write task, then pause it there.
    let mut paused = None;
    wait_until(60, "an executor holding a write task", || {
        let logs = cluster.executor_logs();
        paused = logs
            .iter()
            .position(|l| l.contains("failpoint slow_write: pid"));
        paused.is_some()
    });
    let pid = cluster.executor_pid(paused.expect("an executor"));
    let paused = Paused::new(pid);
    let end = wait_for_state(&cluster, &id, &["SUCCEEDED", "FAILED"], 180);
    drop(paused);
    assert_eq!(end, "SUCCEEDED", "{}", cluster.cli(&["status", &id]).stdout);

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
    assert_next_run_is_clean(&cluster, &job, &lake);
}

/// The committed version of spotify.tracks holds exactly its manifest's files and DuckDB's
/// join of the raw CSVs; at most this version and the previous one are left, and no staging.
fn assert_table_is_one_clean_version(lake: &Path) {
    let entry = catalog_entry(lake, "spotify", "tracks").expect("registered");
    let version = PathBuf::from(
        entry["location"]
            .as_str()
            .expect("location")
            .trim_start_matches("file://"),
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(version.join("_SUCCESS")).expect("the version is sealed"),
    )
    .expect("manifest");
    let mut listed: Vec<String> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path").to_string())
        .collect();
    listed.push("_SUCCESS".into());
    listed.sort();
    assert_eq!(
        files_under(&version),
        listed,
        "the version holds exactly its manifest"
    );
    assert_eq!(assert_spotify_oracle(&spotify_data(), &version), 19_621);
}

/// The next run succeeds and leaves one whole version and no staging file behind (late
/// writes of earlier runs included).
fn assert_next_run_is_clean(cluster: &Cluster, job: &Path, lake: &Path) {
    let again = cluster
        .cli(&["submit", &job.display().to_string()])
        .expect_ok();
    assert!(
        again.stdout.contains("state   SUCCEEDED"),
        "{}",
        again.stdout
    );
    assert_table_is_one_clean_version(lake);
    let staged = files_under(&lake.join("spotify/tracks/_attempts"));
    assert!(staged.is_empty(), "stray staging files: {staged:?}");
}

/// The scheduler dies (abort) at each step of a commit; restarted, the run ends SUCCEEDED
/// with a table that is one whole version, and the next run leaves nothing stray.
#[tokio::test(flavor = "multi_thread")]
async fn a_scheduler_crash_at_any_commit_step_leaves_one_whole_version() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    for step in ["after_publish", "after_seal", "after_catalog"] {
        let failpoint = format!("crash_{step}");
        let (_tmp, lake, mut cluster, job, id) = submit_with_failpoint(&failpoint);
        // Proof that the crash happened at that step.
        wait_until(60, "the scheduler to crash", || {
            cluster
                .scheduler_log()
                .contains(&format!("failpoint {failpoint}: aborting"))
        });
        // What the catalog points at when the scheduler died (after_catalog: the new version).
        let committed = catalog_entry(&lake, "spotify", "tracks").map(|e| {
            let dir = e["location"]
                .as_str()
                .expect("location")
                .trim_start_matches("file://")
                .to_string();
            (dir.clone(), files_under(Path::new(&dir)))
        });
        assert_eq!(committed.is_some(), step == "after_catalog", "{step}");
        cluster.restart_dead_scheduler_without("SLUICE_FAILPOINT");
        assert_eq!(
            wait_for_state(&cluster, &id, &["SUCCEEDED", "FAILED"], 90),
            "SUCCEEDED",
            "{step}: {}",
            cluster.cli(&["status", &id]).stdout
        );
        assert_table_is_one_clean_version(&lake);
        if let Some((dir, files)) = committed {
            // A committed version is never deleted or rewritten by the recovered run.
            assert_eq!(
                files_under(Path::new(&dir)),
                files,
                "{step}: {dir} was rewritten"
            );
        }

        assert_next_run_is_clean(&cluster, &job, &lake);
        let runs = versions(&lake, "spotify", "tracks");
        assert!(runs.len() <= 2, "{step}: versions left: {runs:?}");
    }
}

/// A run cancelled while an executor provably holds its write task: the task's late write
/// never becomes visible, nothing is registered, and the next run clears it.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_publishes_nothing_even_from_late_tasks() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (_tmp, lake, cluster, job, id) = submit_with_failpoint("slow_write");
    wait_until(60, "an executor holding a write task", || {
        cluster
            .executor_logs()
            .iter()
            .any(|l| l.contains("failpoint slow_write: pid"))
    });
    let cancelled = cluster.cli(&["cancel", &id]).expect_ok();
    assert!(cancelled.stdout.contains("STOPPED"), "{}", cancelled.stdout);
    // The writes in flight finish after the cancel (pull-mode executors cannot be told to
    // stop a task): they land in the run's staging folder only.
    let root = lake.join("spotify/tracks");
    wait_until(30, "the cancelled run's late write", || {
        files_under(&root).iter().any(|f| f.ends_with(".parquet"))
    });
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(
        catalog_entry(&lake, "spotify", "tracks").is_none(),
        "nothing registered"
    );
    let visible = versions(&lake, "spotify", "tracks");
    assert!(visible.is_empty(), "a reader sees {visible:?}");
    assert!(
        files_under(&root)
            .iter()
            .all(|f| f.starts_with("_attempts/")),
        "{:?}",
        files_under(&root)
    );

    assert_next_run_is_clean(&cluster, &job, &lake);
}

/// An executor paused (SIGSTOP) while it provably holds a task of each earlier stage (the
/// broadcast builds): the run still ends SUCCEEDED with one whole version equal to DuckDB's
/// rows, and the next run leaves nothing stray. (The write stage: see above.)
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_executor_at_any_stage_leaves_one_whole_version() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    for stage in [1, 2] {
        let (_tmp, lake, cluster, job, id) = submit_with_failpoint("slow_tasks");
        let holds = " of stage ";
        let mut holder = None;
        wait_until(60, "an executor holding a task of the stage", || {
            holder = cluster.executor_logs().iter().position(|log| {
                log.lines().any(|l| {
                    l.starts_with("failpoint slow_tasks:") && l.ends_with(&format!("/{stage}"))
                })
            });
            holder.is_some()
        });
        let holder = holder.expect("an executor");
        let paused = Paused::new(cluster.executor_pid(holder));
        // Proof: at the pause it had started a task of the stage and finished none of its.
        let log = &cluster.executor_logs()[holder];
        let job_stage = log
            .lines()
            .filter_map(|l| l.strip_prefix("failpoint slow_tasks:"))
            .filter_map(|l| l.split(holds).nth(1))
            .find(|js| js.ends_with(&format!("/{stage}")))
            .expect("the held task's job and stage")
            .to_string();
        let finished = format!("Finished task : [TID {job_stage}.");
        assert!(
            !log.contains(&finished),
            "stage {stage}: the task ended before the pause"
        );
        let end = wait_for_state(&cluster, &id, &["SUCCEEDED", "FAILED"], 240);
        drop(paused);
        assert_eq!(
            end,
            "SUCCEEDED",
            "stage {stage}: {}",
            cluster.cli(&["status", &id]).stdout
        );
        assert_table_is_one_clean_version(&lake);
        assert_next_run_is_clean(&cluster, &job, &lake);
    }
}
