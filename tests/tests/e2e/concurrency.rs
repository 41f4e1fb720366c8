//! Concurrent runs on one scheduler (`--max-concurrent-runs`): several runs at once, the
//! rest WAITING with their place in the queue, a cancel that stops only its own run, and
//! every output equal to DuckDB's over the raw CSVs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cluster::{
    Cluster, ONE_CLUSTER_AT_A_TIME, SchedulerSetup, assert_self_join_oracle, self_join_job, state,
    submitted_id,
};
use crate::support::*;

/// Each run's state as `sluice jobs` lists it, by run id.
fn states(cluster: &Cluster) -> BTreeMap<String, String> {
    let out = cluster.cli(&["jobs"]).expect_ok().stdout;
    out.lines()
        .skip(1)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let id = words.next()?;
            let _job = words.next()?;
            let state = words.next()?;
            Some((id.to_string(), state.to_string()))
        })
        .collect()
}

/// A scheduler started with `args` and two executors, over the lake `<dir>/lake`.
fn cluster_with(dir: &std::path::Path, args: &[&str]) -> (Cluster, std::path::PathBuf) {
    let lake = dir.join("lake");
    let cluster = Cluster::start_full(
        dir,
        &lake.display().to_string(),
        Vec::new(),
        SchedulerSetup {
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        },
    );
    (cluster, lake)
}

fn is_final(state: &str) -> bool {
    matches!(state, "SUCCEEDED" | "FAILED" | "STOPPED" | "TIMEOUT")
}

/// Six runs submitted at once on a scheduler that runs two at a time: a long self-join of
/// the albums (cancelled once it runs), four shorter self-joins into tables of their own,
/// and the Spotify example (albums again, with artists and tracks). At every look no more
/// than two run, two do at some point, the others wait with their place in the queue; the
/// cancel stops only its run; every other run succeeds with DuckDB's rows.
#[tokio::test(flavor = "multi_thread")]
async fn six_runs_at_once_run_two_at_a_time_and_a_cancel_stops_only_its_own() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cluster, lake) = cluster_with(tmp.path(), &["--max-concurrent-runs", "2"]);
    // Long enough to be caught running; not so long that the tasks it leaves running after the
    // cancel (pull-mode executors finish a task they hold) starve the other runs for minutes.
    let long = self_join_job(tmp.path(), "cancel-me", 8);
    // A self-join of the 20,000 albums with `% m` costs about 200 / m CPU seconds in a debug build.
    let short: Vec<(String, u32)> = (50..=53).map(|m| (format!("join-{m}"), m)).collect();
    let mut jobs = vec![long];
    jobs.extend(
        short
            .iter()
            .map(|(name, m)| self_join_job(tmp.path(), name, *m)),
    );
    jobs.push(repo().join("examples/spotify/job.yaml"));
    let ids: Vec<String> = jobs
        .iter()
        .map(|job| {
            submitted_id(
                &cluster
                    .cli(&["submit", job.to_str().expect("utf-8"), "--detach"])
                    .expect_ok(),
            )
        })
        .collect();
    let cancel_id = ids[0].clone();

    let deadline = Instant::now() + Duration::from_secs(300);
    let mut most_running = 0;
    let mut queue_shown = false;
    let mut cancelled_amid_others = false;
    loop {
        let now = states(&cluster);
        let ours: Vec<(&String, &str)> = ids
            .iter()
            .map(|id| (id, now.get(id).map_or("?", String::as_str)))
            .collect();
        let running = ours
            .iter()
            .filter(|(_, s)| matches!(*s, "RUNNING" | "STARTING"))
            .count();
        assert!(running <= 2, "more than two runs at once: {ours:?}");
        most_running = most_running.max(running);
        if !queue_shown && let Some((id, _)) = ours.iter().find(|(_, s)| *s == "WAITING") {
            let status = cluster.cli(&["status", id]).expect_ok().stdout;
            // Read again: the run may have left the queue meanwhile.
            if status.contains("state   WAITING") {
                assert!(status.contains("queue   place "), "{status}");
                queue_shown = true;
            }
        }
        if !cancelled_amid_others && now.get(&cancel_id).map(String::as_str) == Some("RUNNING") {
            let others_live = ours
                .iter()
                .filter(|(id, s)| **id != cancel_id && !is_final(s))
                .count();
            let out = cluster.cli(&["cancel", &cancel_id]).expect_ok();
            assert!(out.stdout.contains("STOPPED"), "{}", out.stdout);
            assert!(
                others_live > 0,
                "the cancel came while other runs were live"
            );
            cancelled_amid_others = true;
        }
        if ours.iter().all(|(_, s)| is_final(s)) {
            break;
        }
        assert!(Instant::now() < deadline, "runs still going: {ours:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(most_running, 2, "two runs ran at once at some point");
    assert!(queue_shown, "a waiting run showed its place in the queue");
    assert!(
        cancelled_amid_others,
        "the long run was cancelled while running"
    );

    assert_eq!(state(&cluster, &cancel_id), "STOPPED");
    assert!(catalog_entry(&lake, "test", "cancel_me").is_none());
    for id in &ids[1..] {
        assert_eq!(
            state(&cluster, id),
            "SUCCEEDED",
            "{}",
            cluster.cli(&["status", id]).stdout
        );
    }
    for (name, modulo) in &short {
        assert_self_join_oracle(&lake, &name.replace('-', "_"), *modulo);
    }
    assert_spotify_oracle(&spotify_data(), &table_dir(&lake, "spotify", "tracks"));
}

/// Whether process `pid` is stopped (state `T` in /proc/<pid>/stat).
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        == Some('T')
}

/// A query over small tables runs in the scheduler's own session: it answers, with DuckDB's
/// rows, while both executors are paused (SIGSTOP, checked in /proc). A query over a table
/// above `--local-query-max-bytes` needs the executors: paused, it runs into the query time
/// limit; resumed, it answers with DuckDB's count.
#[tokio::test(flavor = "multi_thread")]
async fn small_queries_answer_in_the_scheduler_while_every_executor_is_paused() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cluster, lake) = cluster_with(
        tmp.path(),
        &[
            "--local-query-max-bytes",
            "64KiB",
            "--query-timeout-seconds",
            "5",
        ],
    );
    let spotify = repo().join("examples/spotify/job.yaml");
    cluster
        .cli(&["submit", spotify.to_str().expect("utf-8")])
        .expect_ok();
    let small = self_join_job(tmp.path(), "small", 60);
    cluster
        .cli(&["submit", small.to_str().expect("utf-8")])
        .expect_ok();
    let tracks = catalog_entry(&lake, "spotify", "tracks").expect("registered");
    let tracks_bytes: u64 = tracks["parameters"]["sizeKey"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("sizeKey");
    assert!(
        tracks_bytes > 64 * 1024,
        "spotify.tracks is above the limit"
    );

    let paused: Vec<crate::faults::Paused> = (0..2)
        .map(|i| crate::faults::Paused::new(cluster.executor_pid(i)))
        .collect();
    // SIGSTOP is delivered asynchronously: wait until both show it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(0..2).all(|i| is_stopped(cluster.executor_pid(i))) {
        assert!(Instant::now() < deadline, "both executors are stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sql = "SELECT album_type, pairs, diff FROM test.small ORDER BY album_type";
    let out = cluster
        .cli(&["query", sql, "--format", "csv"])
        .expect_ok()
        .stdout;
    let ours: Vec<&str> = out.lines().skip(1).collect();
    let albums = spotify_data().join("albums.csv");
    let expected = oracle_query(
        &format!(
            "SELECT album_type, pairs, diff FROM ({}) ORDER BY album_type",
            crate::cluster::self_join_sql(60)
        ),
        &[("albums", albums.as_path())],
    );
    let expected: Vec<String> = expected
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    assert_eq!(ours, expected, "{out}");

    // A filter, so that no statistic of the files can answer the count without a scan.
    let big = "SELECT count(*) AS n FROM spotify.tracks WHERE track_popularity >= 0";
    let refused = cluster.cli(&["query", big, "--format", "csv"]);
    assert!(
        !refused.ok
            && (refused.stderr.to_lowercase().contains("time limit")
                || refused.stderr.to_lowercase().contains("deadline")),
        "the large query should have hit the time limit\nstdout:\n{}\nstderr:\n{}\n{}",
        refused.stdout,
        refused.stderr,
        cluster.log_tails(40)
    );
    drop(paused);
    assert_count_as_duckdb(
        &cluster,
        big,
        "SELECT count(*) FROM spotify WHERE track_popularity >= 0",
    );

    // test.small is now held in the scheduler's memory (it was queried above); a query that
    // also scans the large table goes to the cluster, which must be sent its files.
    assert_count_as_duckdb(
        &cluster,
        "SELECT count(*) AS n FROM spotify.tracks t \
         JOIN test.small s ON t.album_type = s.album_type WHERE s.pairs > 0",
        &format!(
            "SELECT count(*) FROM spotify t JOIN ({}) s ON t.album_type = s.album_type \
             WHERE s.pairs > 0",
            crate::cluster::self_join_sql(60)
        ),
    );
}

/// Runs the count query `sql` on the cluster and checks its count equals DuckDB's `oracle`
/// over the sample's raw CSVs (albums, artists, tracks and the view `spotify`).
fn assert_count_as_duckdb(cluster: &Cluster, sql: &str, oracle: &str) {
    let counted = cluster.cli(&["query", sql, "--format", "csv"]).expect_ok();
    let csvs = spotify_csvs(&spotify_data());
    let expected = oracle_query(
        oracle,
        &csvs
            .iter()
            .map(|(n, p)| (*n, p.as_path()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        Some(csv_count(&counted).to_string()),
        expected[0][0].clone(),
        "{sql}: {}",
        counted.stdout
    );
}

/// Every answer comes from one committed version, never a mix: while runs replace a table in
/// turn (run k writes k*100 rows, all with v = k), two clients query it without
/// pause on the cluster path (`--local-query-max-bytes 0`). Each answer must be exactly one
/// version: a single v = k with k*100 rows. A query may fail when the version it read was
/// removed under it (the commit keeps the previous version only), never answer a mixture.
#[tokio::test(flavor = "multi_thread")]
async fn queries_under_commits_answer_from_one_version() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let staging = tmp.path().join("staging");
    std::fs::create_dir_all(&staging).expect("mkdir");
    // The test's folder is a staging root already (trust::add_staging_roots).
    let (cluster, _lake) = cluster_with(tmp.path(), &["--local-query-max-bytes", "0"]);
    let cluster = std::sync::Arc::new(cluster);
    let job = tmp.path().join("versions.yaml.job");
    std::fs::write(
        &job,
        format!(
            "name: versions\nstaging: {}\nsources:\n  data: {{ path: data.csv }}\ntarget:\n  input: data\n  table: {{ database: honest, name: versions }}\n",
            staging.display()
        ),
    )
    .expect("write job");
    let write_version = |k: u32| {
        let mut text = String::from("id,v\n");
        for i in 0..k * 100 {
            text.push_str(&format!("{i},{k}\n"));
        }
        std::fs::write(staging.join("data.csv"), text).expect("write csv");
    };
    write_version(1);
    cluster
        .cli(&["submit", job.to_str().expect("utf-8")])
        .expect_ok();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let cluster = std::sync::Arc::clone(&cluster);
            let stop = std::sync::Arc::clone(&stop);
            let count = std::sync::Arc::clone(&count);
            std::thread::spawn(move || {
                let (mut answers, mut failures) = (Vec::new(), 0);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let out = cluster.cli(&[
                        "query",
                        "SELECT v, count(*) AS n FROM honest.versions GROUP BY v",
                        "--format",
                        "csv",
                    ]);
                    if out.ok {
                        let rows: Vec<String> =
                            out.stdout.lines().skip(1).map(str::to_string).collect();
                        answers.push(rows);
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    } else {
                        failures += 1;
                    }
                }
                (answers, failures)
            })
        })
        .collect();
    // New versions until the clients have answered often enough (at least four commits).
    for k in 2..=60 {
        write_version(k);
        cluster
            .cli(&["submit", job.to_str().expect("utf-8")])
            .expect_ok();
        if k >= 5 && count.load(std::sync::atomic::Ordering::SeqCst) >= 40 {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut answered = 0;
    let mut seen = std::collections::BTreeSet::new();
    for client in clients {
        let (answers, failures) = client.join().expect("client thread");
        for rows in answers {
            assert_eq!(rows.len(), 1, "one version per answer: {rows:?}");
            let (v, n) = rows[0].split_once(',').expect("v,n");
            let v: u32 = v.parse().expect("v");
            assert_eq!(n, (v * 100).to_string(), "version {v} whole: {rows:?}");
            seen.insert(v);
            answered += 1;
        }
        assert!(failures <= answered + 10, "{failures} failures");
    }
    assert!(answered >= 40, "{answered} answers");
    assert!(seen.len() >= 3, "answers from several versions: {seen:?}");
}
