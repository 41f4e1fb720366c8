//! Fault injection: executors paused (not killed) while they provably hold a task of each
//! stage, the scheduler killed at each step of the commit, cancels during writes and during
//! the commit, and a run failing on bad input again and again. After each, the table is
//! either the old version or the new one, row for row equal to DuckDB's reading of the raw
//! CSVs, and no stray file survives the next run.

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
pub(crate) fn files_under(dir: &Path) -> Vec<String> {
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
    let (cluster, job, id) = start_and_submit(tmp.path(), &lake, failpoint);
    (tmp, lake, cluster, job, id)
}

/// [`submit_with_failpoint`] over a lake that already holds a version of spotify.tracks
/// (written by the embedded `sluice run` from fewer tracks, so that its rows differ from
/// the new run's).
fn submit_over_old_version(
    failpoint: &str,
) -> (
    tempfile::TempDir,
    PathBuf,
    Cluster,
    PathBuf,
    String,
    OldVersion,
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let old = OldVersion::write(tmp.path(), &lake);
    let (cluster, job, id) = start_and_submit(tmp.path(), &lake, failpoint);
    (tmp, lake, cluster, job, id, old)
}

/// The version of spotify.tracks a lake held before the run under test.
struct OldVersion {
    /// Its staging CSVs (the oracle's input).
    staging: PathBuf,
    /// Its catalog entry.
    entry: serde_json::Value,
    /// Its folder and the files in it.
    dir: PathBuf,
    files: Vec<String>,
    /// Its rows, as DuckDB counts them.
    rows: u64,
}

impl OldVersion {
    /// Writes spotify.tracks into `lake` with `sluice run` (embedded) from the example's
    /// CSVs with only the first 3,000 tracks.
    fn write(dir: &Path, lake: &Path) -> Self {
        let staging = dir.join("old-staging");
        std::fs::create_dir_all(&staging).expect("mkdir");
        for f in ["albums.csv", "artists.csv"] {
            std::fs::copy(spotify_data().join(f), staging.join(f)).expect("copy csv");
        }
        let tracks = std::fs::read_to_string(spotify_data().join("tracks.csv")).expect("read");
        let fewer: String = tracks
            .lines()
            .take(3_001)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(staging.join("tracks.csv"), fewer).expect("write tracks");
        let text = std::fs::read_to_string(repo().join("examples/spotify/job.yaml")).expect("read");
        let job = dir.join("spotify-old.yaml");
        std::fs::write(
            &job,
            text.replace("staging: data", &format!("staging: {}", staging.display())),
        )
        .expect("write job");
        sluice(
            &[
                "run",
                job.to_str().expect("utf-8"),
                "--lake",
                lake.to_str().expect("utf-8"),
                "--preview",
                "0",
            ],
            &[],
        )
        .expect_ok();
        let entry = catalog_entry(lake, "spotify", "tracks").expect("registered");
        let dir = table_dir(lake, "spotify", "tracks");
        let files = files_under(&dir);
        let rows = assert_spotify_oracle(&staging, &dir);
        assert!(
            rows > 0 && rows < 19_621,
            "the old version's rows must differ from the new run's: {rows}"
        );
        Self {
            staging,
            entry,
            dir,
            files,
            rows,
        }
    }

    /// Readers see this version: the catalog still names it, and it holds its own files
    /// and rows, row for row.
    fn assert_is_the_table(&self, lake: &Path, when: &str) {
        assert_eq!(
            catalog_entry(lake, "spotify", "tracks").as_ref(),
            Some(&self.entry),
            "{when}: the catalog moved"
        );
        self.assert_untouched(when);
    }

    /// Its folder is as it was, and its rows are still DuckDB's over its CSVs.
    fn assert_untouched(&self, when: &str) {
        assert_eq!(
            files_under(&self.dir),
            self.files,
            "{when}: the old version {} changed",
            self.dir.display()
        );
        assert_eq!(
            assert_spotify_oracle(&self.staging, &self.dir),
            self.rows,
            "{when}"
        );
    }
}

/// Starts a cluster over `lake` whose processes run with `SLUICE_FAILPOINT=failpoint` and
/// submits the Spotify job without waiting: (cluster, job file, run id).
fn start_and_submit(dir: &Path, lake: &Path, failpoint: &str) -> (Cluster, PathBuf, String) {
    let cluster = Cluster::start_full(
        dir,
        &lake.display().to_string(),
        vec![("SLUICE_FAILPOINT".into(), failpoint.into())],
        SchedulerSetup::default(),
    );
    let job = spotify_job(dir);
    let submitted = cluster
        .cli(&["submit", &job.display().to_string(), "--detach"])
        .expect_ok();
    let id = submitted_id(&submitted);
    (cluster, job, id)
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

    // The resumed executor finishes its superseded write after the commit cleared the
    // run's staging folder: it deletes its late files itself, and says so.
    let table_root = lake.join("spotify/tracks");
    let marker = format!("-p{pid}-");
    let late = format!("wrote late (pid {pid})");
    wait_until(30, "the paused executor's late write", || {
        cluster.executor_logs().iter().any(|l| l.contains(&late))
    });
    let left: Vec<String> = files_under(&table_root)
        .into_iter()
        .filter(|f| f.contains(&marker))
        .collect();
    assert!(
        left.is_empty(),
        "the superseded attempt's files stayed: {left:?}"
    );
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

/// The scheduler dies (abort) at each step of a commit over a table that already holds a
/// version. Until the catalog moves (after publishing, after sealing), readers see the old
/// version, row for row; once it has moved, the new one, whole. Restarted, the run ends
/// SUCCEEDED with the new version, the old one is kept as it was (readers may still use
/// it), and the next run leaves nothing stray.
#[tokio::test(flavor = "multi_thread")]
async fn a_scheduler_crash_at_any_commit_step_leaves_one_whole_version() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    for step in ["after_publish", "after_seal", "after_catalog"] {
        let failpoint = format!("crash_{step}");
        let (_tmp, lake, mut cluster, job, id, old) = submit_over_old_version(&failpoint);
        // Proof that the crash happened at that step.
        wait_until(60, "the scheduler to crash", || {
            cluster
                .scheduler_log()
                .contains(&format!("failpoint {failpoint}: aborting"))
        });
        // What readers see while the scheduler is down.
        let at_crash = format!("{step}, before the restart");
        let committed = if step == "after_catalog" {
            let entry = catalog_entry(&lake, "spotify", "tracks").expect("registered");
            assert_eq!(entry["run_id"].as_str(), Some(id.as_str()), "{at_crash}");
            assert_table_is_one_clean_version(&lake);
            let dir = table_dir(&lake, "spotify", "tracks");
            let files = files_under(&dir);
            Some((dir, files))
        } else {
            old.assert_is_the_table(&lake, &at_crash);
            None
        };
        old.assert_untouched(&at_crash);

        cluster.restart_dead_scheduler_without("SLUICE_FAILPOINT");
        assert_eq!(
            wait_for_state(&cluster, &id, &["SUCCEEDED", "FAILED"], 90),
            "SUCCEEDED",
            "{step}: {}",
            cluster.cli(&["status", &id]).stdout
        );
        let entry = catalog_entry(&lake, "spotify", "tracks").expect("registered");
        assert_eq!(entry["run_id"].as_str(), Some(id.as_str()), "{step}");
        assert_table_is_one_clean_version(&lake);
        old.assert_untouched(&format!("{step}, after the recovered commit"));
        if let Some((dir, files)) = committed {
            // A committed version is never deleted or rewritten by the recovered run.
            assert_eq!(
                files_under(&dir),
                files,
                "{step}: {} was rewritten",
                dir.display()
            );
        }

        assert_next_run_is_clean(&cluster, &job, &lake);
        let runs = versions(&lake, "spotify", "tracks");
        assert!(runs.len() <= 2, "{step}: versions left: {runs:?}");
    }
}

/// A cancel that arrives while the run commits (`slow_commit` holds the commit 10 s once
/// the new version is sealed, before the catalog moves) is refused: until the commit ends,
/// readers see the old version row for row, then the new one, whole; nothing is deleted
/// under the catalog, and the next run leaves nothing stray.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_during_the_commit_is_refused_and_the_table_moves_whole() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (_tmp, lake, cluster, job, id, old) = submit_over_old_version("slow_commit");
    wait_until(120, "the run to hold its commit", || {
        cluster
            .scheduler_log()
            .contains("failpoint slow_commit: holding the commit")
    });
    let held = Instant::now();
    let cancel = cluster.cli(&["cancel", &id]).expect_failure();
    assert!(
        cancel.stderr.contains("committing its output"),
        "{}",
        cancel.stderr
    );
    // While the commit is held, readers see the old version, whole.
    old.assert_is_the_table(&lake, "during the commit");
    assert!(
        held.elapsed() < Duration::from_secs(9),
        "the checks took {:?}: the commit may have ended before them",
        held.elapsed()
    );

    let end = wait_for_state(&cluster, &id, &["SUCCEEDED", "FAILED", "STOPPED"], 60);
    assert_eq!(end, "SUCCEEDED", "{}", cluster.cli(&["status", &id]).stdout);
    let entry = catalog_entry(&lake, "spotify", "tracks").expect("registered");
    assert_eq!(entry["run_id"].as_str(), Some(id.as_str()));
    assert_table_is_one_clean_version(&lake);
    old.assert_untouched("after the commit");

    assert_next_run_is_clean(&cluster, &job, &lake);
    let runs = versions(&lake, "spotify", "tracks");
    assert!(runs.len() <= 2, "versions left: {runs:?}");
}

/// A run cancelled while an executor provably holds its write task: the task's late write
/// never becomes visible and is deleted by the task itself, nothing is registered, and the
/// next run leaves nothing stray.
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
    // The writes in flight finish after the cancel: the executors stop the run's tasks,
    // but a write's files are closed on a task of their own, which goes on; the cancel
    // cleared the run's staging folder, so those closings delete their files themselves.
    let root = lake.join("spotify/tracks");
    wait_until(30, "the cancelled run's late write", || {
        cluster
            .executor_logs()
            .iter()
            .any(|l| l.contains("wrote late"))
    });
    // Every task still writing ends within seconds, each deleting what it wrote.
    let cleared = Instant::now();
    let mut left = Vec::new();
    while cleared.elapsed() < Duration::from_secs(30) {
        let visible = versions(&lake, "spotify", "tracks");
        assert!(visible.is_empty(), "a reader sees {visible:?}");
        left = files_under(&root);
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(left.is_empty(), "the cancelled run left {left:?}");
    eprintln!(
        "the cancelled run's files were gone after {:?}",
        cleared.elapsed()
    );
    assert!(
        catalog_entry(&lake, "spotify", "tracks").is_none(),
        "nothing registered"
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

/// `rows` rows `id,name,score` with a header, ids from `first`; the name of data row
/// `multiline` (counted from 0), if any, is quoted and holds a line break.
fn numbered_csv(first: usize, rows: usize, multiline: Option<usize>) -> String {
    let mut out = String::from("id,name,score\n");
    for r in 0..rows {
        let id = first + r;
        let name = if multiline == Some(r) {
            format!("\"name {id}\nnext line\"")
        } else {
            format!("name {id}")
        };
        out.push_str(&format!("{id},{name},{}\n", id % 97));
    }
    out
}

/// Issue 13, item 7: a run failing on an unterminated quote, again and again (it once left
/// a Parquet file in its version folder in 6 of 12 tries). Eight files are read and written
/// by eight tasks at once, and the quote is in the last file, past what schema inference
/// reads, so that the other tasks write their files while the run fails. Each time the run
/// fails naming the file and the line the bad record starts on (after a record that spans
/// two lines), nothing of it is visible in the table's location, its staging folder is
/// gone, and the catalog is as it was; the old version still holds DuckDB's rows.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_failing_on_an_unterminated_quote_leaves_nothing_every_time() {
    const FILES: usize = 8;
    const ROWS: usize = 2_500;
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical");
    let staging = dir.join("parts");
    std::fs::create_dir_all(&staging).expect("mkdir");
    let part = |i: usize| staging.join(format!("part-{i}.csv"));
    for i in 1..=FILES {
        let multiline = (i == FILES).then_some(100);
        std::fs::write(part(i), numbered_csv((i - 1) * ROWS, ROWS, multiline)).expect("write");
    }
    let job = dir.join("parts.yaml");
    std::fs::write(
        &job,
        format!(
            r#"name: parts
staging: "{}"
sources:
  parts: {{ path: "part-*.csv", format: csv, newlines_in_values: true }}
target:
  input: parts
  table: {{ database: t, name: parts }}
"#,
            staging.display()
        ),
    )
    .expect("write job");
    let job = job.to_str().expect("utf-8");
    let lake = dir.join("lake");
    let cluster = Cluster::start_full(
        &dir,
        lake.to_str().expect("utf-8"),
        Vec::new(),
        SchedulerSetup::default(),
    );
    let oracle_csvs: Vec<(String, PathBuf)> =
        (1..=FILES).map(|i| (format!("p{i}"), part(i))).collect();
    let oracle_csvs: Vec<(&str, &Path)> = oracle_csvs
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_path()))
        .collect();
    let every_part = (1..=FILES)
        .map(|i| format!("SELECT * FROM p{i}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");

    let first = cluster.cli(&["submit", job]).expect_ok();
    assert!(
        first.stdout.contains("state   SUCCEEDED"),
        "{}",
        first.stdout
    );
    let entry = catalog_entry(&lake, "t", "parts").expect("registered");
    let old_dir = table_dir(&lake, "t", "parts");
    let old_files = files_under(&old_dir);
    let visible = versions(&lake, "t", "parts");
    assert_eq!(visible.len(), 1, "{visible:?}");
    let staged_root = lake.join("t/parts/_attempts");
    assert_eq!(files_under(&staged_root), Vec::<String>::new());
    assert_eq!(
        assert_sql_oracle(&old_dir, &every_part, &oracle_csvs),
        (FILES * ROWS) as u64
    );

    // An unterminated quote in the last file's data row 2,200: its record runs to the end
    // of the file. It starts on line 2,203 (the header, 2,200 rows, one of them two lines).
    let good = std::fs::read_to_string(part(FILES)).expect("read");
    let bad_id = (FILES - 1) * ROWS + 2_200;
    let bad_line = good
        .lines()
        .position(|l| l.starts_with(&format!("{bad_id},")))
        .expect("the row")
        + 1;
    assert_eq!(bad_line, 2_203);
    std::fs::write(
        part(FILES),
        good.replace(
            &format!("\n{bad_id},name {bad_id},"),
            &format!("\n{bad_id},\"name {bad_id},"),
        ),
    )
    .expect("write");
    let located = format!(
        "{}:{bad_line}: wrong number of fields: expected 3 fields, found 2",
        part(FILES).display()
    );

    for attempt in 1..=12 {
        let failed = cluster.cli(&["submit", job]).expect_failure();
        assert!(
            failed.stderr.contains(&located),
            "attempt {attempt}: expected `{located}` in:\n{}",
            failed.stderr
        );
        let id = submitted_id(&failed);
        assert_eq!(crate::cluster::state(&cluster, &id), "FAILED");
        assert_eq!(
            catalog_entry(&lake, "t", "parts").as_ref(),
            Some(&entry),
            "attempt {attempt}: the catalog changed"
        );
        assert_eq!(
            versions(&lake, "t", "parts"),
            visible,
            "attempt {attempt}: a reader listing the table sees more"
        );
        assert_eq!(files_under(&old_dir), old_files, "attempt {attempt}");
        // Its staging folder is cleared, and tasks that were still writing delete what
        // they close afterwards: within seconds nothing of the run is left anywhere.
        let cleared = Instant::now();
        let left = loop {
            let left: Vec<String> = files_under(&lake.join("t/parts"))
                .into_iter()
                .filter(|f| f.contains(&id) || f.starts_with("_attempts/"))
                .collect();
            if left.is_empty() || cleared.elapsed() > Duration::from_secs(30) {
                break left;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(left.is_empty(), "attempt {attempt}: run {id} left {left:?}");
    }
    // Nothing of the failed runs arrived later either.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(files_under(&staged_root), Vec::<String>::new());
    assert_eq!(versions(&lake, "t", "parts"), visible);
    assert_eq!(files_under(&old_dir), old_files);
    std::fs::write(part(FILES), good).expect("restore");
    assert_eq!(
        assert_sql_oracle(&old_dir, &every_part, &oracle_csvs),
        (FILES * ROWS) as u64
    );

    // Fixed, the next run commits a whole version and leaves nothing staged.
    let fixed = cluster.cli(&["submit", job]).expect_ok();
    assert!(
        fixed.stdout.contains("state   SUCCEEDED"),
        "{}",
        fixed.stdout
    );
    let new_dir = table_dir(&lake, "t", "parts");
    assert_ne!(new_dir, old_dir);
    assert_eq!(
        assert_sql_oracle(&new_dir, &every_part, &oracle_csvs),
        (FILES * ROWS) as u64
    );
    assert_eq!(files_under(&staged_root), Vec::<String>::new());
    assert_eq!(versions(&lake, "t", "parts").len(), 2);
}
