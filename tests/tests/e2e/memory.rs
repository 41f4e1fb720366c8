//! Bounded memory (`--memory-limit`): a job whose join, sort and aggregation state is larger
//! than the limit spills and still answers what DuckDB answers over the raw CSVs; a limit too
//! small even for spilling fails with an error that names the flag; sizes are parsed, and a
//! bad one is refused by name, on every binary.

use std::path::{Path, PathBuf};

use crate::support::*;

/// Spotify-shaped staging CSVs at scale 20 (400,000 album rows, 66 MB; 404,000 tracks,
/// 13 MB), written by the benchmark's generator.
fn staging_x20(dir: &Path) -> PathBuf {
    let out = dir.join("data");
    let status = std::process::Command::new("python3")
        .arg(repo().join("bench/gen_spotify.py"))
        .arg(&out)
        .args(["--scale", "20"])
        .status()
        .expect("python3 runs the generator");
    assert!(status.success(), "gen_spotify.py failed");
    out
}

/// Albums joined with their tracks (the tracks side, 13 MB, is the join's smaller side),
/// then aggregated per artist (26,896 groups).
const QUERY: &str = "SELECT a.artist_id, count(*) AS tracks, max(a.album_name) AS last_album, \
     sum(t.track_popularity) AS popularity \
     FROM albums a JOIN tracks t ON a.track_id = t.id GROUP BY a.artist_id";

fn write_job(dir: &Path, staging: &Path) -> PathBuf {
    let job = dir.join("job.yaml");
    std::fs::write(
        &job,
        format!(
            r#"
name: memory
staging: {staging}
sources:
  albums: {{ path: albums.csv }}
  tracks: {{ path: tracks.csv }}
transforms:
  - join: {{ name: joined, left: albums, right: tracks, type: inner, on: [{{ left: track_id, right: id }}] }}
  - sql:
      name: by_artist
      inputs: [joined]
      query: >
        SELECT artist_id, count(*) AS tracks, max(album_name) AS last_album,
               sum(track_popularity) AS popularity
        FROM joined GROUP BY artist_id
target:
  input: by_artist
  table: {{ database: mem, name: by_artist }}
"#,
            staging = staging.display()
        ),
    )
    .expect("write the job");
    job
}

fn run(job: &Path, lake: &Path, limit: &str, tmpdir: &Path) -> Run {
    std::fs::create_dir_all(tmpdir).expect("spill folder");
    sluice(
        &[
            "run",
            job.to_str().expect("utf-8"),
            "--lake",
            lake.to_str().expect("utf-8"),
            "--memory-limit",
            limit,
            "--preview",
            "0",
        ],
        &[("TMPDIR", tmpdir.to_str().expect("utf-8"))],
    )
}

/// The spill line of `sluice run`: (files, bytes text), or `None` when nothing spilled.
fn spill_files(stdout: &str) -> Option<u64> {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("spill "))?;
    let files = line.split(" in ").nth(1)?.split_whitespace().next()?;
    files.parse().ok()
}

/// 32 MiB for 80 MB of input: the join's smaller side (13 MB) is over a quarter of the limit,
/// so it runs as a sort-merge join whose sorts spill; the result equals DuckDB's. Without a
/// limit nothing spills and the result is the same. With 1 MiB not even one batch per sort
/// fits: the run fails with an error naming the flag, publishes nothing, and does not crash.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_larger_than_its_memory_limit_spills_and_matches_duckdb() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let staging = staging_x20(tmp.path());
    let job = write_job(tmp.path(), &staging);
    let csvs = spotify_csvs(&staging);
    let csvs: Vec<(&str, &Path)> = csvs.iter().map(|(n, p)| (*n, p.as_path())).collect();

    let lake = tmp.path().join("lake");
    let limited = run(&job, &lake, "32MiB", &tmp.path().join("tmp-limited")).expect_ok();
    let files = spill_files(&limited.stdout).unwrap_or_else(|| {
        panic!(
            "a 32 MiB limit over 80 MB of input spills:\n{}",
            limited.stdout
        )
    });
    assert!(files > 0, "{}", limited.stdout);
    assert!(
        limited.stdout.contains("(memory limit 32.0 MiB)"),
        "{}",
        limited.stdout
    );
    let rows = assert_sql_oracle(&table_dir(&lake, "mem", "by_artist"), QUERY, &csvs);
    assert!(rows > 20_000, "{rows} rows");

    let unbounded_lake = tmp.path().join("lake-unbounded");
    let unbounded = run(
        &job,
        &unbounded_lake,
        "0",
        &tmp.path().join("tmp-unbounded"),
    )
    .expect_ok();
    assert_eq!(spill_files(&unbounded.stdout), None, "{}", unbounded.stdout);
    assert_eq!(
        assert_sql_oracle(
            &table_dir(&unbounded_lake, "mem", "by_artist"),
            QUERY,
            &csvs
        ),
        rows
    );

    let starved_lake = tmp.path().join("lake-starved");
    let starved =
        run(&job, &starved_lake, "1MiB", &tmp.path().join("tmp-starved")).expect_failure();
    for expected in [
        "needs more memory than --memory-limit 1.0 MiB allows",
        "raise --memory-limit",
        "nothing was published",
    ] {
        assert!(
            starved.stderr.contains(expected),
            "expected '{expected}' in:\n{}",
            starved.stderr
        );
    }
    assert!(
        !starved.stderr.contains("panicked"),
        "a clean error, not a crash:\n{}",
        starved.stderr
    );
    assert_eq!(catalog_entry(&starved_lake, "mem", "by_artist"), None);
}

/// Sizes take units (2GiB, 512MiB, 0.5GB); a bad value, as a flag or as its environment
/// variable, is refused with the flag's name and the accepted forms, by `sluice run`,
/// `sluice-scheduler` and `sluice-executor` alike.
#[test]
fn a_bad_memory_limit_is_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let job = copy_example(tmp.path());
    let lake = tmp.path().join("lake");
    let lake = lake.to_str().expect("utf-8");
    let job = job.to_str().expect("utf-8");

    let flag =
        sluice(&["run", job, "--lake", lake, "--memory-limit", "lots"], &[]).expect_failure();
    assert!(
        flag.stderr.contains("--memory-limit") && flag.stderr.contains("2GiB"),
        "{}",
        flag.stderr
    );
    let env = sluice(
        &["run", job, "--lake", lake],
        &[("SLUICE_MEMORY_LIMIT", "12 parsecs")],
    )
    .expect_failure();
    assert!(
        env.stderr.contains("--memory-limit") && env.stderr.contains("unknown unit 'parsecs'"),
        "{}",
        env.stderr
    );

    for binary_name in ["sluice-scheduler", "sluice-executor"] {
        let out = std::process::Command::new(binary(binary_name))
            .args(["--memory-limit", "2XB"])
            .output()
            .expect("the binary starts");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{binary_name} took a bad size");
        assert!(
            stderr.contains("--memory-limit") && stderr.contains("unknown unit 'xb'"),
            "{binary_name}: {stderr}"
        );
    }

    // A good size in every accepted form runs the job (the example is small: no spill).
    for size in ["2GiB", "512MiB", "0.5GB", "268435456"] {
        let ok = sluice(&["run", job, "--lake", lake, "--memory-limit", size], &[]).expect_ok();
        assert_eq!(spill_files(&ok.stdout), None, "{size}: {}", ok.stdout);
    }
}

/// The sum of `name` over the executors' `/metrics` (their HTTP addresses from their logs).
fn executor_metric(logs: &[String], name: &str) -> f64 {
    use std::io::{Read, Write};
    logs.iter()
        .map(|log| {
            let address = log
                .lines()
                .find_map(|l| l.split("health and metrics on http://").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_else(|| panic!("an executor named its HTTP address:\n{log}"))
                .to_string();
            let mut stream = std::net::TcpStream::connect(&address).expect("metrics port");
            write!(
                stream,
                "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
            )
            .expect("request");
            let mut answer = String::new();
            stream.read_to_string(&mut answer).expect("answer");
            answer
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no {name} in:\n{answer}"))
        })
        .sum()
}

/// On a cluster each executor enforces its own `--memory-limit` (here SLUICE_MEMORY_LIMIT,
/// 32 MiB for two slots, which the scheduler also plans with): the same job spills on the
/// executors, as their `/metrics` count, and its table equals DuckDB's.
#[tokio::test(flavor = "multi_thread")]
async fn executors_spill_under_their_memory_limit() {
    let _one = crate::cluster::ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let staging = staging_x20(tmp.path());
    let job = write_job(tmp.path(), &staging);
    let lake = tmp.path().join("lake");
    let cluster = crate::cluster::Cluster::start_full(
        tmp.path(),
        &lake.display().to_string(),
        vec![("SLUICE_MEMORY_LIMIT".to_string(), "32MiB".to_string())],
        Default::default(),
    );
    let logs = cluster.executor_logs();
    assert!(
        logs.iter()
            .all(|l| l.contains("memory limit 32.0 MiB (--memory-limit)")),
        "{logs:?}"
    );
    assert_eq!(
        executor_metric(&logs, "sluice_executor_spill_files_total"),
        0.0
    );
    let submitted = cluster.cli(&["submit", job.to_str().expect("utf-8")]);
    assert!(
        submitted.ok,
        "{}\n{}\n{}",
        submitted.stdout,
        submitted.stderr,
        cluster.executor_logs().join("\n")
    );
    let files = executor_metric(&logs, "sluice_executor_spill_files_total");
    let bytes = executor_metric(&logs, "sluice_executor_spill_bytes_total");
    assert!(files > 0.0 && bytes > 0.0, "files {files}, bytes {bytes}");
    let csvs = spotify_csvs(&staging);
    let csvs: Vec<(&str, &Path)> = csvs.iter().map(|(n, p)| (*n, p.as_path())).collect();
    let rows = assert_sql_oracle(&table_dir(&lake, "mem", "by_artist"), QUERY, &csvs);
    assert!(rows > 20_000, "{rows} rows");
}
