//! Issue #13: one unreadable table does not break queries over the others, `DESCRIBE`,
//! concurrent submissions and cancels, and sources confined to the staging roots (folders
//! and S3 prefixes).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, ONE_CLUSTER_AT_A_TIME, SchedulerSetup};
use crate::support::*;

/// Adds a config file listing the staging roots the e2e tests read from to a scheduler's
/// arguments: the examples, the test's folder, and the buckets of the S3 tests. A config
/// the test gives (`--config`) is copied beside itself with the roots added, unless it
/// lists its own.
pub(crate) fn add_staging_roots(dir: &Path, args: &mut Vec<String>) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let roots = [
        repo().join("examples").display().to_string(),
        dir.display().to_string(),
        "/nonexistent/".into(),
        "s3://staging/".into(),
        "s3://no-such-bucket/".into(),
    ];
    let mut lines = String::from("\nstaging_roots:\n");
    for r in &roots {
        lines.push_str(&format!("  - \"{r}\"\n"));
    }
    match args.iter().position(|a| a == "--config") {
        Some(i) if i + 1 < args.len() => {
            let given = PathBuf::from(&args[i + 1]);
            let text = std::fs::read_to_string(&given).unwrap_or_default();
            if text.contains("staging_roots") {
                return;
            }
            let copy = given.with_extension("roots.yaml");
            std::fs::write(&copy, format!("{text}{lines}")).expect("write config");
            args[i + 1] = copy.display().to_string();
        }
        _ => {
            let config = dir.join("staging-roots.yaml");
            std::fs::write(&config, lines).expect("write config");
            args.extend(["--config".to_string(), config.display().to_string()]);
        }
    }
}

/// A job reading `path` under `staging` through a `sql` step named `q`.
fn job(dir: &Path, name: &str, staging: &str, source: &str, query: &str) -> PathBuf {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!(
            r#"
name: {name}
staging: "{staging}"
sources:
  src: {{ path: "{source}", format: csv }}
transforms:
  - sql: {{ name: q, inputs: [src], query: "{query}" }}
target:
  input: q
  table: {{ database: t, name: {table} }}
"#,
            table = name.replace('-', "_"),
        ),
    )
    .expect("write job");
    file
}

fn spotify_job(dir: &Path, name: &str) -> PathBuf {
    job(
        dir,
        name,
        &spotify_data().display().to_string(),
        "albums.csv",
        "SELECT track_id, album_type FROM src",
    )
}

/// The folder the catalog entry of `t.<table>` points at.
fn version_folder(lake: &Path, table: &str) -> PathBuf {
    let entry = catalog_entry(lake, "t", table).expect("registered");
    let location = entry["location"].as_str().expect("location").to_string();
    PathBuf::from(location.trim_start_matches("file://"))
}

/// Empties the version folder of `t.empty` and deletes that of `t.gone`.
fn break_tables(lake: &Path) {
    let empty = version_folder(lake, "empty");
    for f in std::fs::read_dir(&empty).expect("version folder") {
        let p = f.expect("entry").path();
        if p.is_dir() {
            std::fs::remove_dir_all(p).expect("rm");
        } else {
            std::fs::remove_file(p).expect("rm");
        }
    }
    std::fs::remove_dir_all(version_folder(lake, "gone")).expect("rm version");
}

/// Queries through `query` (embedded or Flight SQL): the good table answers, the broken
/// ones fail naming themselves, `DESCRIBE` works.
fn check_queries(query: impl Fn(&str) -> Run) {
    let good = query("SELECT count(*) AS n FROM t.good").expect_ok();
    assert_eq!(csv_count(&good), 20_000, "{}", good.stdout);
    for broken in ["empty", "gone"] {
        let failed = query(&format!("SELECT count(*) AS n FROM t.{broken}")).expect_failure();
        assert!(
            failed
                .stderr
                .contains(&format!("table t.{broken} cannot be read"))
                && failed.stderr.contains("empty or was deleted"),
            "{}",
            failed.stderr
        );
    }
    let joined =
        query("SELECT count(*) AS n FROM t.good g JOIN t.gone x ON g.track_id = x.track_id")
            .expect_failure();
    assert!(joined.stderr.contains("t.gone"), "{}", joined.stderr);
    let described = query("DESCRIBE t.good").expect_ok();
    assert!(
        described.stdout.contains("track_id") && described.stdout.contains("album_type"),
        "{}",
        described.stdout
    );
    assert!(described.stdout.contains("Utf8"), "{}", described.stdout);
    // The catalog's own listing still works, broken tables included (with their columns).
    let columns =
        query("SELECT count(*) AS n FROM information_schema.columns WHERE table_schema = 't'")
            .expect_ok();
    assert_eq!(csv_count(&columns), 6, "{}", columns.stdout);
}

#[test]
fn an_unreadable_table_fails_alone_in_sluice_query() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let lake_arg = lake.to_str().expect("utf-8");
    for name in ["good", "empty", "gone"] {
        let job = spotify_job(tmp.path(), name);
        sluice(
            &[
                "run",
                job.to_str().expect("utf-8"),
                "--lake",
                lake_arg,
                "--preview",
                "0",
            ],
            &[],
        )
        .expect_ok();
    }
    break_tables(&lake);
    check_queries(|sql| sluice(&["query", sql, "--lake", lake_arg, "--format", "csv"], &[]));
    let tables = sluice(&["tables", "--lake", lake_arg], &[]).expect_ok();
    assert!(tables.stdout.contains("good"), "{}", tables.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_table_fails_alone_over_flight_sql() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let cluster = Cluster::start_full(
        tmp.path(),
        lake.to_str().expect("utf-8"),
        Vec::new(),
        SchedulerSetup::default(),
    );
    for name in ["good", "empty", "gone"] {
        let job = spotify_job(tmp.path(), name);
        cluster
            .cli(&["submit", job.to_str().expect("utf-8")])
            .expect_ok();
    }
    break_tables(&lake);
    check_queries(|sql| cluster.cli(&["query", sql, "--format", "csv"]));
}

fn submitted_id(run: &Run) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("submitted run "))
        .unwrap_or_else(|| panic!("a run id in\n{}\n{}", run.stdout, run.stderr))
        .trim()
        .to_string()
}

fn state(cluster: &Cluster, run_id: &str) -> String {
    let out = cluster.cli(&["status", run_id]).expect_ok().stdout;
    out.lines()
        .find_map(|l| l.strip_prefix("state   "))
        .unwrap_or("?")
        .trim()
        .to_string()
}

fn wait_for_end(cluster: &Cluster, run_id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let s = state(cluster, run_id);
        let ended = ["SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT"].contains(&s.as_str());
        if ended || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Two submissions whose `sql` steps both name their input `src` are planned at the same
/// time (the failpoint holds each planning 1.5 s with its input registered): each sees its
/// own `src` only.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_submissions_do_not_see_each_others_sql_inputs() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let cluster = Cluster::start_full(
        tmp.path(),
        lake.to_str().expect("utf-8"),
        vec![(
            "SLUICE_FAILPOINT".to_string(),
            "slow_sql_transform".to_string(),
        )],
        SchedulerSetup::default(),
    );
    let staging = spotify_data().display().to_string();
    let albums = job(
        tmp.path(),
        "albums",
        &staging,
        "albums.csv",
        "SELECT album_type, track_id FROM src",
    );
    let artists = job(
        tmp.path(),
        "artists",
        &staging,
        "artists.csv",
        "SELECT name, artist_popularity FROM src",
    );
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| cluster.cli(&["submit", albums.to_str().expect("utf-8"), "--detach"]));
        std::thread::sleep(Duration::from_millis(400));
        let b = s.spawn(|| cluster.cli(&["submit", artists.to_str().expect("utf-8"), "--detach"]));
        (a.join().expect("thread"), b.join().expect("thread"))
    });
    let (a, b) = (a.expect_ok(), b.expect_ok());
    for (run, table, column) in [
        (&a, "albums", "album_type"),
        (&b, "artists", "artist_popularity"),
    ] {
        let id = submitted_id(run);
        assert_eq!(wait_for_end(&cluster, &id), "SUCCEEDED", "{table}");
        let entry = catalog_entry(&lake, "t", table).expect("registered");
        let columns = entry["columns"].to_string();
        assert!(columns.contains(column), "{table}: {columns}");
    }
}

/// A cancel that arrives while the run plans stops it for good, however long the cancel
/// then takes: the run never commits, so no published version is deleted under the catalog.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_never_commits() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let cluster = Cluster::start_full(
        tmp.path(),
        lake.to_str().expect("utf-8"),
        vec![(
            "SLUICE_FAILPOINT".to_string(),
            "slow_sql_transform,slow_cancel".to_string(),
        )],
        SchedulerSetup::default(),
    );
    let job = spotify_job(tmp.path(), "cancelled");
    let submitted = cluster
        .cli(&["submit", job.to_str().expect("utf-8"), "--detach"])
        .expect_ok();
    let id = submitted_id(&submitted);
    // The run now plans for 1.5 s; the cancel pauses 5 s once it has been accepted, long
    // enough for an unstopped run to finish and commit.
    let cancelled = cluster.cli(&["cancel", &id]).expect_ok();
    assert!(cancelled.stdout.contains("STOPPED"), "{}", cancelled.stdout);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(state(&cluster, &id), "STOPPED");
    assert!(
        catalog_entry(&lake, "t", "cancelled").is_none(),
        "a cancelled run published its table"
    );
    assert!(
        versions(&lake, "t", "cancelled").is_empty(),
        "no version left"
    );
}

/// Sources must lie under the scheduler's `staging_roots`, targets in the lake.
#[tokio::test(flavor = "multi_thread")]
async fn sources_outside_the_staging_roots_are_refused() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical");
    let staging = dir.join("staging");
    let sibling = dir.join("stagingX");
    for d in [&staging, &sibling] {
        std::fs::create_dir_all(d).expect("mkdir");
        std::fs::copy(spotify_data().join("albums.csv"), d.join("albums.csv")).expect("copy");
    }
    std::os::unix::fs::symlink("/etc", staging.join("etc")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", staging.join("pw.csv")).expect("symlink");
    let config = dir.join("scheduler.yaml");
    std::fs::write(
        &config,
        format!("staging_roots:\n  - \"{}\"\n", staging.display()),
    )
    .expect("config");
    let lake = dir.join("lake");
    let cluster = Cluster::start_full(
        &dir,
        lake.to_str().expect("utf-8"),
        Vec::new(),
        SchedulerSetup {
            args: vec!["--config".into(), config.display().to_string()],
            ..SchedulerSetup::default()
        },
    );
    let select = "SELECT * FROM src";
    let staging_text = staging.display().to_string();
    let refused = [
        ("abs", staging_text.clone(), "/etc/passwd".to_string()),
        ("shadow", staging_text.clone(), "/etc/shadow".into()),
        ("url", staging_text.clone(), "file:///etc/hostname".into()),
        (
            "dots",
            staging_text.clone(),
            "../../../../etc/passwd".into(),
        ),
        ("staging-etc", "/etc".into(), "passwd".into()),
        (
            "sibling",
            sibling.display().to_string(),
            "albums.csv".into(),
        ),
        ("link-dir", staging_text.clone(), "etc/passwd".into()),
        ("link-file", staging_text.clone(), "pw.csv".into()),
        ("link-glob", staging_text.clone(), "e*/passw?".into()),
    ];
    for (name, staging, path) in refused {
        let job = job(&dir, name, &staging, &path, select);
        let run = cluster
            .cli(&["submit", job.to_str().expect("utf-8")])
            .expect_failure();
        let outside = run.stderr.contains("sources.src.path")
            && run.stderr.contains("outside the allowed staging roots");
        // A glob through a link may not even list the file; either way nothing is read.
        let unlisted = name == "link-glob" && run.stderr.contains("no file matches");
        assert!(
            outside || unlisted,
            "{name}: {path} under {staging}:\n{}",
            run.stderr
        );
        assert!(!run.stderr.contains("root:x:0"), "{}", run.stderr);
    }
    let listed = cluster.cli(&["jobs"]).expect_ok().stdout;
    assert_eq!(listed.lines().count(), 1, "no run was queued:\n{listed}");

    // A target outside the lake is refused too.
    let outside = dir.join("elsewhere");
    let job_file = job(&dir, "located", &staging_text, "albums.csv", select);
    let text = std::fs::read_to_string(&job_file).expect("read");
    std::fs::write(
        &job_file,
        text.replace(
            "  table: {",
            &format!("  location: \"file://{}/\"\n  table: {{", outside.display()),
        ),
    )
    .expect("write");
    let run = cluster
        .cli(&["submit", job_file.to_str().expect("utf-8")])
        .expect_failure();
    assert!(
        run.stderr.contains("target.location") && run.stderr.contains("outside the lake"),
        "{}",
        run.stderr
    );
    assert!(!outside.exists(), "nothing written outside the lake");

    // Inside the root works.
    let good = job(
        &dir,
        "inside",
        &staging_text,
        "albums.csv",
        "SELECT track_id FROM src",
    );
    let run = cluster
        .cli(&["submit", good.to_str().expect("utf-8")])
        .expect_ok();
    assert!(run.stdout.contains("state   SUCCEEDED"), "{}", run.stdout);
}

/// The same with the AWS Glue Data Catalog (moto) and an S3 lake: the version of `t.gone`
/// is deleted from the bucket.
#[test]
fn an_unreadable_table_fails_alone_with_glue() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let moto = crate::moto::Moto::start();
    moto.python("s3.create_bucket(Bucket='lake')");
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lake = "s3://lake/warehouse";
    for name in ["good", "gone"] {
        let job = spotify_job(tmp.path(), name);
        let text = std::fs::read_to_string(&job).expect("read");
        std::fs::write(
            &job,
            text.replace("target:\n", "target:\n  catalog: glue\n"),
        )
        .expect("write");
        sluice(
            &[
                "run",
                job.to_str().expect("utf-8"),
                "--lake",
                lake,
                "--preview",
                "0",
            ],
            &env,
        )
        .expect_ok();
    }
    moto.python(
        "for o in s3.list_objects_v2(Bucket='lake', Prefix='warehouse/t/gone/').get('Contents', []):\n    s3.delete_object(Bucket='lake', Key=o['Key'])",
    );
    let query = |sql: &str| {
        sluice(
            &[
                "query",
                sql,
                "--lake",
                lake,
                "--catalog",
                "glue",
                "--format",
                "csv",
            ],
            &env,
        )
    };
    let good = query("SELECT count(*) AS n FROM t.good").expect_ok();
    assert_eq!(csv_count(&good), 20_000, "{}", good.stdout);
    let gone = query("SELECT count(*) AS n FROM t.gone").expect_failure();
    assert!(
        gone.stderr.contains("table t.gone cannot be read"),
        "{}",
        gone.stderr
    );
}

/// With no `staging_roots` configured, only the lake may be read.
#[tokio::test(flavor = "multi_thread")]
async fn without_staging_roots_only_the_lake_is_read() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical");
    let config = dir.join("scheduler.yaml");
    // Mentions staging_roots so that the test harness adds none.
    std::fs::write(&config, "# no staging_roots: the lake only\n").expect("config");
    let lake = dir.join("lake");
    let incoming = lake.join("incoming");
    std::fs::create_dir_all(&incoming).expect("mkdir");
    std::fs::copy(
        spotify_data().join("albums.csv"),
        incoming.join("albums.csv"),
    )
    .expect("copy");
    let cluster = Cluster::start_full(
        &dir,
        lake.to_str().expect("utf-8"),
        Vec::new(),
        SchedulerSetup {
            args: vec!["--config".into(), config.display().to_string()],
            ..SchedulerSetup::default()
        },
    );
    let outside = spotify_job(&dir, "outside");
    let run = cluster
        .cli(&["submit", outside.to_str().expect("utf-8")])
        .expect_failure();
    assert!(
        run.stderr.contains("outside the allowed staging roots")
            && run.stderr.contains("lists no staging_roots"),
        "{}",
        run.stderr
    );
    let inside = job(
        &dir,
        "inside",
        &incoming.display().to_string(),
        "albums.csv",
        "SELECT track_id FROM src",
    );
    let run = cluster
        .cli(&["submit", inside.to_str().expect("utf-8")])
        .expect_ok();
    assert!(run.stdout.contains("state   SUCCEEDED"), "{}", run.stdout);
}

/// A source swapped for a link to `/etc/passwd` after its job was accepted is refused when
/// the run starts (the run lists its sources anew).
#[tokio::test(flavor = "multi_thread")]
async fn a_source_swapped_for_a_link_after_submit_is_refused_when_the_run_starts() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical");
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).expect("mkdir");
    for f in ["albums.csv", "swap.csv"] {
        std::fs::copy(spotify_data().join("albums.csv"), staging.join(f)).expect("copy");
    }
    let config = dir.join("scheduler.yaml");
    std::fs::write(
        &config,
        format!("staging_roots:\n  - \"{}\"\n", staging.display()),
    )
    .expect("config");
    let lake = dir.join("lake");
    let cluster = Cluster::start_full(
        &dir,
        lake.to_str().expect("utf-8"),
        Vec::new(),
        SchedulerSetup {
            // One run at a time: the second run waits in the queue while its file is swapped.
            args: vec![
                "--config".into(),
                config.display().to_string(),
                "--max-concurrent-runs".into(),
                "1".into(),
            ],
            ..SchedulerSetup::default()
        },
    );
    let staging_text = staging.display().to_string();
    // Holds the one run slot until cancelled.
    let long = job(
        &dir,
        "long",
        &staging_text,
        "albums.csv",
        "SELECT a.album_type, count(*) AS pairs FROM src a JOIN src b ON a.album_type = b.album_type GROUP BY a.album_type",
    );
    let long_id = submitted_id(
        &cluster
            .cli(&["submit", long.to_str().expect("utf-8"), "--detach"])
            .expect_ok(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while state(&cluster, &long_id) != "RUNNING" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let swapped = job(
        &dir,
        "swapped",
        &staging_text,
        "swap.csv",
        "SELECT * FROM src",
    );
    let swapped_id = submitted_id(
        &cluster
            .cli(&["submit", swapped.to_str().expect("utf-8"), "--detach"])
            .expect_ok(),
    );
    std::fs::remove_file(staging.join("swap.csv")).expect("rm");
    std::os::unix::fs::symlink("/etc/passwd", staging.join("swap.csv")).expect("symlink");
    cluster.cli(&["cancel", &long_id]).expect_ok();
    assert_eq!(wait_for_end(&cluster, &swapped_id), "FAILED");
    let status = cluster.cli(&["status", &swapped_id]).expect_ok().stdout;
    assert!(
        status.contains("outside the allowed staging roots"),
        "{status}"
    );
    assert!(
        catalog_entry(&lake, "t", "swapped").is_none(),
        "nothing published"
    );
}

/// A run whose commit failed and that is being retried can be cancelled again: the
/// attempt that failed committing does not leave the run marked as committing.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_retried_after_a_failed_commit_can_be_cancelled() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let cluster = Cluster::start_full(
        tmp.path(),
        lake.to_str().expect("utf-8"),
        vec![("SLUICE_FAILPOINT".to_string(), "before_commit".to_string())],
        SchedulerSetup::default(),
    );
    let job_file = spotify_job(tmp.path(), "retried");
    let text = std::fs::read_to_string(&job_file).expect("read");
    std::fs::write(&job_file, format!("max_retries: 50\n{text}")).expect("write");
    let id = submitted_id(
        &cluster
            .cli(&["submit", job_file.to_str().expect("utf-8"), "--detach"])
            .expect_ok(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cluster.cli(&["status", &id]).expect_ok().stdout;
        if !status.contains("attempt 1") && status.contains("attempt") {
            break;
        }
        assert!(Instant::now() < deadline, "no second attempt:\n{status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A cancel landing in an attempt's own commit is refused; the next one gets through.
    let mut last = String::new();
    for _ in 0..10 {
        let cancelled = cluster.cli(&["cancel", &id]);
        if cancelled.ok && cancelled.stdout.contains("STOPPED") {
            last.clear();
            break;
        }
        last = cancelled.stderr;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(last.is_empty(), "cancel refused: {last}");
    assert_eq!(state(&cluster, &id), "STOPPED");
    assert!(catalog_entry(&lake, "t", "retried").is_none());
}

/// A `sql` step is a query: DDL (which could register any file) and `COPY`/`INSERT`
/// (which would write outside the target) are refused before anything runs.
#[test]
fn sql_steps_may_not_write_or_register_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical");
    let lake = dir.join("lake");
    let written = dir.join("copied.csv");
    let staging = spotify_data().display().to_string();
    let statements = [
        format!(
            "COPY (SELECT track_id FROM src) TO '{}' STORED AS CSV",
            written.display()
        ),
        "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "INSERT INTO src SELECT * FROM src".to_string(),
    ];
    for (i, statement) in statements.iter().enumerate() {
        let job = job(
            &dir,
            &format!("writes{i}"),
            &staging,
            "albums.csv",
            statement,
        );
        let run = sluice(
            &[
                "run",
                job.to_str().expect("utf-8"),
                "--lake",
                lake.to_str().expect("utf-8"),
            ],
            &[],
        )
        .expect_failure();
        assert!(
            run.stderr.contains("transforms[0].sql.query") && run.stderr.contains("not supported"),
            "{statement}:\n{}",
            run.stderr
        );
    }
    assert!(!written.exists(), "COPY wrote {}", written.display());
}

/// `staging_roots` may list S3 prefixes: a source is read only under one of them, whole
/// path segment by whole path segment (moto's S3 holds the objects). Everything else is
/// refused at submit, before anything is read.
#[tokio::test(flavor = "multi_thread")]
async fn s3_sources_outside_the_staging_prefixes_are_refused() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical");
    let moto = crate::moto::Moto::start();
    moto.python(&format!(
        "for b in ['staging', 'other']:\n    s3.create_bucket(Bucket=b)\n\
         for key in ['in/albums.csv', 'inX/albums.csv', 'secret/albums.csv']:\n    \
         s3.upload_file('{albums}', 'staging', key)\n\
         s3.upload_file('{albums}', 'other', 'in/albums.csv')",
        albums = spotify_data().join("albums.csv").display()
    ));
    let config = dir.join("scheduler.yaml");
    std::fs::write(&config, "staging_roots:\n  - \"s3://staging/in\"\n").expect("config");
    let lake = dir.join("lake");
    let cluster = Cluster::start_full(
        &dir,
        lake.to_str().expect("utf-8"),
        moto.env(),
        SchedulerSetup {
            args: vec!["--config".into(), config.display().to_string()],
            ..SchedulerSetup::default()
        },
    );
    let select = "SELECT track_id, album_type FROM src";
    let refused = [
        ("bucket-root", "s3://staging/", "secret/albums.csv"),
        ("sibling-prefix", "s3://staging/inX/", "albums.csv"),
        ("prefix-as-name", "s3://staging/", "inX/albums.csv"),
        ("other-bucket", "s3://other/in/", "albums.csv"),
        (
            "absolute-url",
            "s3://staging/in/",
            "s3://staging/secret/albums.csv",
        ),
        ("dots", "s3://staging/in/", "../secret/albums.csv"),
        (
            "encoded-dots",
            "s3://staging/in/",
            "%2e%2e/secret/albums.csv",
        ),
        ("glob-over-prefixes", "s3://staging/", "*/albums.csv"),
        ("local-file", "s3://staging/in/", "/etc/passwd"),
        ("file-url", "s3://staging/in/", "file:///etc/hostname"),
    ];
    for (name, staging, path) in refused {
        let job = job(&dir, name, staging, path, select);
        let run = cluster
            .cli(&["submit", job.to_str().expect("utf-8")])
            .expect_failure();
        assert!(
            run.stderr.contains("sources.src.path")
                && run.stderr.contains("outside the allowed staging roots")
                && run.stderr.contains("s3://staging/in/"),
            "{name}: {path} under {staging}:\n{}",
            run.stderr
        );
        assert!(!run.stderr.contains("root:x:0"), "{}", run.stderr);
    }
    let listed = cluster.cli(&["jobs"]).expect_ok().stdout;
    assert_eq!(listed.lines().count(), 1, "no run was queued:\n{listed}");
    assert!(!lake.join("t").exists(), "nothing was written");

    // Under the prefix, the same file is read.
    let inside = job(&dir, "inside", "s3://staging/in/", "albums.csv", select);
    let run = cluster
        .cli(&["submit", inside.to_str().expect("utf-8")])
        .expect_ok();
    assert!(run.stdout.contains("state   SUCCEEDED"), "{}", run.stdout);
    assert_eq!(
        assert_sql_oracle(
            &table_dir(&lake, "t", "inside"),
            "SELECT track_id, album_type FROM albums",
            &[("albums", &spotify_data().join("albums.csv"))],
        ),
        20_000
    );
}
