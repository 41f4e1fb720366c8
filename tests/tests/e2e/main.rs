//! End-to-end tests of the embedded pipeline: the real `sluice` binary, real files, and an
//! independent computation of the expected rows by DuckDB over the raw CSVs
//! (`tests/oracle.py`), which shares no code with Sluice.

mod bookmarks;
mod cluster;
mod cluster_auth;
mod commits;
mod concurrency;
mod csv_locator;
mod dashboard;
mod deploy;
mod faults;
mod flight_sql;
mod flight_sql_types;
mod glue;
mod hash_join_patch;
mod job_files;
mod joins;
mod logins;
mod memory;
mod moto;
mod parquet_dictionary_patch;
mod parquet_statistics_patch;
mod playground;
mod process;
mod quality;
mod s3_credentials;
mod schedules;
mod superset;
mod support;
mod trust;
mod workbench;

use std::path::Path;

use support::*;

fn lake_arg(lake: &Path) -> String {
    lake.to_str().expect("utf-8 path").to_string()
}

/// `SELECT count(*) FROM spotify.tracks` through `sluice query`.
fn count_via_cli(lake: &Path) -> u64 {
    let sql = "SELECT count(*) AS n FROM spotify.tracks";
    let q = sluice(
        &["query", sql, "--lake", &lake_arg(lake), "--format", "csv"],
        &[],
    )
    .expect_ok();
    csv_count(&q)
}

fn run_job(job: &Path, lake: &Path, env: &[(&str, &str)]) -> Run {
    sluice(
        &[
            "run",
            job.to_str().expect("utf-8"),
            "--lake",
            &lake_arg(lake),
        ],
        env,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn spotify_job_matches_an_independent_join() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let job = support::repo().join("examples/spotify/job.yaml");
    let run = run_job(&job, &lake, &[]).expect_ok();
    assert!(run.stdout.contains("wrote  19,621 rows"), "{}", run.stdout);
    assert!(
        run.stdout.contains("albums") && run.stdout.contains("20,000 rows"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("spotify.tracks registered"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("query \"SELECT"),
        "prints how to query: {}",
        run.stdout
    );

    // The catalog entry points at a sealed version whose files are all listed.
    let entry = catalog_entry(&lake, "spotify", "tracks").expect("table registered");
    let location = entry["location"].as_str().expect("location").to_string();
    assert!(
        location.starts_with("file://") && location.contains("/run-"),
        "{location}"
    );
    let dir = location.trim_start_matches("file://");
    let marker = std::fs::read_to_string(Path::new(dir).join("_SUCCESS")).expect("sealed");
    let manifest: serde_json::Value = serde_json::from_str(&marker).expect("manifest");
    assert_eq!(manifest["rows"], 19621);
    assert_eq!(entry["parameters"]["recordCount"], "19621");
    assert_eq!(entry["parameters"]["classification"], "parquet");
    let columns: Vec<&str> = entry["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        columns.len(),
        20,
        "14 album + 4 artist + 2 track columns: {columns:?}"
    );
    assert_eq!(
        columns.iter().filter(|c| **c == "id").count(),
        0,
        "id copies dropped"
    );

    // Independent: DuckDB joins the raw CSVs itself; whole rows compared, both ways.
    assert_eq!(
        assert_spotify_oracle(&spotify_data(), Path::new(dir)),
        19621
    );

    // The CLI's own query path answers over the catalog.
    assert_eq!(count_via_cli(&lake), 19621);
    let t = sluice(
        &["tables", "--lake", &lake_arg(&lake), "--format", "json"],
        &[],
    )
    .expect_ok();
    assert!(
        t.stdout.contains("\"database\":\"spotify\"") && t.stdout.contains(&location),
        "{}",
        t.stdout
    );
}

/// The embedded engine runs the plan in its own process, with the small sides of the
/// Spotify joins broadcast (read once, shared by every partition; albums never
/// repartitioned). Session options come from the environment (`BALLISTA_*`,
/// `DATAFUSION_*`), and a bad value names its variable.
#[tokio::test(flavor = "multi_thread")]
async fn small_join_sides_are_broadcast_and_settings_come_from_the_environment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let job = support::repo().join("examples/spotify/job.yaml");
    let broadcast = run_job(&job, &tmp.path().join("broadcast"), &[]).expect_ok();
    assert!(
        broadcast.stdout.contains("(in this process: ")
            && broadcast
                .stdout
                .contains("; joins: 2 broadcast, 0 partitioned)"),
        "reports how the plan ran: {}",
        broadcast.stdout
    );

    // Broadcasts off: both joins repartition both sides; the same rows.
    let off = [
        (
            "DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD",
            "0",
        ),
        (
            "DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD_ROWS",
            "0",
        ),
    ];
    let shuffled = run_job(&job, &tmp.path().join("shuffled"), &off).expect_ok();
    assert!(
        shuffled
            .stdout
            .contains("; joins: 0 broadcast, 2 partitioned)")
            && shuffled.stdout.contains("wrote  19,621 rows"),
        "{}",
        shuffled.stdout
    );
    let shuffled_dir = table_dir(&tmp.path().join("shuffled"), "spotify", "tracks");
    assert_eq!(assert_spotify_oracle(&spotify_data(), &shuffled_dir), 19621);

    let bad = [("DATAFUSION_EXECUTION_BATCH_SIZE", "many")];
    let failed = run_job(&job, &tmp.path().join("bad"), &bad).expect_failure();
    assert!(
        failed.stderr.contains("DATAFUSION_EXECUTION_BATCH_SIZE"),
        "{}",
        failed.stderr
    );
    assert!(!tmp.path().join("bad").join("spotify").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_runs_publish_nothing_and_old_versions_keep_answering() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let job = copy_example(tmp.path());
    run_job(&job, &lake, &[]).expect_ok();
    let first = catalog_entry(&lake, "spotify", "tracks").expect("registered");
    let first_versions = versions(&lake, "spotify", "tracks");
    assert_eq!(first_versions.len(), 1, "{first_versions:?}");

    // 1. Fail after every file is written and sealed, just before the catalog moves.
    let failed = run_job(&job, &lake, &[("SLUICE_FAILPOINT", "before_commit")]).expect_failure();
    assert!(
        failed.stderr.contains("nothing was published"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        catalog_entry(&lake, "spotify", "tracks"),
        Some(first.clone())
    );
    assert_eq!(
        versions(&lake, "spotify", "tracks"),
        first_versions,
        "the failed version is removed"
    );

    // 2. Fail midway through reading: a broken row deep in albums.csv.
    let albums = tmp.path().join("data/albums.csv");
    let original = std::fs::read_to_string(&albums).expect("read");
    let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
    let broken = lines[15000]
        .rsplit_once(',')
        .expect("has fields")
        .0
        .to_string();
    lines[15000] = broken;
    std::fs::write(&albums, lines.join("\n") + "\n").expect("write");
    let failed = run_job(&job, &lake, &[]).expect_failure();
    assert!(
        failed
            .stderr
            .contains("albums.csv:15001: wrong number of fields: expected 14 fields, found 13"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        catalog_entry(&lake, "spotify", "tracks"),
        Some(first.clone())
    );
    assert_eq!(versions(&lake, "spotify", "tracks"), first_versions);

    // The previous version still answers queries.
    assert_eq!(count_via_cli(&lake), 19621);

    // Later successful runs move the table on, keeping only the version before them.
    std::fs::write(&albums, original).expect("restore");
    run_job(&job, &lake, &[]).expect_ok();
    let second = catalog_entry(&lake, "spotify", "tracks").expect("registered");
    assert_eq!(second["version"], 2);
    assert_eq!(versions(&lake, "spotify", "tracks").len(), 2);
    run_job(&job, &lake, &[]).expect_ok();
    let kept = versions(&lake, "spotify", "tracks");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        !kept.contains(&first_versions[0]),
        "the oldest version is pruned: {kept:?}"
    );
}

/// Each case edits a copy of the example and expects a failure whose message names the place.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_reported_with_file_and_line_and_publishes_nothing() {
    struct Case {
        what: &'static str,
        edit: fn(&Path),
        expect: &'static [&'static str],
    }
    let cases = [
        Case {
            what: "missing file",
            edit: |d| std::fs::remove_file(d.join("data/artists.csv")).expect("rm"),
            expect: &[
                "job.yaml:16:",
                "sources.artists.path",
                "no file matches",
                "artists.csv",
            ],
        },
        Case {
            what: "empty file",
            edit: |d| std::fs::write(d.join("data/tracks.csv"), "").expect("truncate"),
            expect: &["sources.tracks.path", "tracks.csv", "the file is empty"],
        },
        Case {
            what: "unparseable number in a typed column",
            edit: |d| {
                let p = d.join("data/tracks.csv");
                let mut lines: Vec<String> = std::fs::read_to_string(&p)
                    .expect("read")
                    .lines()
                    .map(str::to_string)
                    .collect();
                let parts: Vec<&str> = lines[499].split(',').collect();
                lines[499] = format!("{},lots,{}", parts[0], parts[2]);
                std::fs::write(&p, lines.join("\n") + "\n").expect("write");
                let job = d.join("job.yaml");
                let text = std::fs::read_to_string(&job).expect("read");
                std::fs::write(
                    &job,
                    text.replace(
                        "explicit: boolean",
                        "explicit: boolean\n      track_popularity: bigint",
                    ),
                )
                .expect("write");
            },
            expect: &[
                "tracks.csv:500:",
                "column 'track_popularity'",
                "'lots'",
                "Int64",
            ],
        },
        Case {
            what: "misspelt join column",
            edit: |d| {
                let job = d.join("job.yaml");
                let text = std::fs::read_to_string(&job).expect("read");
                std::fs::write(&job, text.replace("left: track_id", "left: track_idd"))
                    .expect("write");
            },
            expect: &[
                "job.yaml:36:",
                "transforms[1].join.on[0].left: no column 'track_idd' in 'albums_artists' (did you mean 'track_id'?)",
            ],
        },
    ];
    for case in cases {
        let tmp = tempfile::tempdir().expect("tempdir");
        let lake = tmp.path().join("lake");
        let job = copy_example(tmp.path());
        (case.edit)(tmp.path());
        let failed = run_job(&job, &lake, &[]).expect_failure();
        for fragment in case.expect {
            assert!(
                failed.stderr.contains(fragment),
                "{}: expected '{fragment}' in:\n{}",
                case.what,
                failed.stderr
            );
        }
        assert_eq!(
            catalog_entry(&lake, "spotify", "tracks"),
            None,
            "{}",
            case.what
        );
        assert!(
            versions(&lake, "spotify", "tracks").is_empty(),
            "{}",
            case.what
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_transform_kind_and_partitioned_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let job = tmp.path().join("job.yaml");
    let staging = spotify_data();
    std::fs::write(
        &job,
        format!(
            r#"
name: spotify-transforms
staging: {staging}
sources:
  albums: {{ path: albums.csv }}
  artists: {{ path: "artist*.csv" }}
  tracks: {{ path: tracks.csv }}
transforms:
  - join: {{ name: with_artists, left: albums, right: artists, type: left, on: ["artist_id = id"] }}
  - drop_duplicate_fields: {{ name: deduped, input: with_artists }}
  - filter: {{ name: popular, input: deduped, predicate: "album_popularity >= 20" }}
  - rename: {{ name: renamed, input: popular, fields: {{ name: artist_name }} }}
  - cast: {{ name: casted, input: renamed, fields: {{ duration_ms: int, followers: double }} }}
  - drop_fields: {{ name: slim, input: casted, fields: [artists, artist_genres] }}
  - join: {{ name: with_tracks, left: slim, right: tracks, type: semi, on: [{{ left: track_id, right: id }}] }}
  - select: {{ name: picked, input: with_tracks, fields: [track_id, album_type, artist_name, duration_ms, followers] }}
  - sql:
      name: final
      inputs: [picked]
      query: SELECT track_id, album_type, coalesce(artist_name, 'unknown') AS artist_name, duration_ms, followers FROM picked
target:
  input: final
  compression: zstd
  partition_by: [album_type]
  table: {{ database: spotify, name: popular_tracks }}
"#,
            staging = staging.display()
        ),
    )
    .expect("write job");
    let run = run_job(&job, &lake, &[]).expect_ok();

    // Whole rows against DuckDB over the raw CSVs (the partition key read back from the
    // Hive folders, as every reader of the table does).
    let csvs = spotify_csvs(&staging);
    let csvs: Vec<(&str, &Path)> = csvs.iter().map(|(n, p)| (*n, p.as_path())).collect();
    let rows = assert_sql_oracle(
        &table_dir(&lake, "spotify", "popular_tracks"),
        "SELECT a.track_id, a.album_type, coalesce(ar.name, 'unknown') AS artist_name, \
         CAST(a.duration_ms AS INT) AS duration_ms, CAST(ar.followers AS DOUBLE) AS followers \
         FROM albums a LEFT JOIN artists ar ON a.artist_id = ar.id \
         WHERE a.album_popularity >= 20 AND a.track_id IN (SELECT id FROM tracks)",
        &csvs,
    );
    assert!(rows > 1000, "{rows} rows; run output:\n{}", run.stdout);

    let entry = catalog_entry(&lake, "spotify", "popular_tracks").expect("registered");
    let keys: Vec<&str> = entry["partition_keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["name"].as_str().expect("name"))
        .collect();
    assert_eq!(keys, ["album_type"]);
    let mut values: Vec<String> = entry["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["values"][0].as_str().expect("value").to_string())
        .collect();
    values.sort();
    assert_eq!(values, ["album", "compilation", "single"]);
    let types: Vec<(String, String)> = entry["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("n").into(),
                c["type"].as_str().expect("t").into(),
            )
        })
        .collect();
    assert!(
        types.contains(&("duration_ms".into(), "int".into())),
        "{types:?}"
    );
    assert!(
        types.contains(&("followers".into(), "double".into())),
        "{types:?}"
    );
    assert!(
        !types.iter().any(|(n, _)| n == "album_type"),
        "partition key is not a data column"
    );
}

/// The Parquet files' layout: row groups of at most 122,880 rows (DuckDB's size; a writer
/// holds one row group in memory), and no dictionary for a column whose values barely repeat
/// (the writer would build one and give up on it in every row group) while a repetitive
/// column keeps its dictionary. The rows are DuckDB's over the same CSV.
#[tokio::test(flavor = "multi_thread")]
async fn parquet_row_groups_are_bounded_and_unique_columns_skip_the_dictionary() {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let rows = 300_000u64;
    let mut csv = String::from("id,kind,n,note\n");
    for i in 0..rows {
        let kind = ["album", "single", "compilation"][(i % 3) as usize];
        // `note`: mostly empty, a value now and then (too few values to judge: default).
        let note = if i % 1000 == 0 { "x" } else { "" };
        csv.push_str(&format!("track-{i:08},{kind},{},{note}\n", i * 7));
    }
    std::fs::write(data.join("t.csv"), &csv).expect("write csv");
    let job = tmp.path().join("job.yaml");
    std::fs::write(
        &job,
        "name: layout\nstaging: data\nsources:\n  t: { path: t.csv }\ntarget:\n  input: t\n  table: { database: test, name: layout }\n",
    )
    .expect("write job");
    let lake = tmp.path().join("lake");
    let run = run_job(&job, &lake, &[]).expect_ok();
    assert!(run.stdout.contains("wrote  300,000 rows"), "{}", run.stdout);

    let dir = table_dir(&lake, "test", "layout");
    let mut seen_rows = 0;
    let mut groups = 0;
    for entry in std::fs::read_dir(&dir).expect("table folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let reader = SerializedFileReader::new(std::fs::File::open(&path).expect("open"))
            .expect("a Parquet file");
        for group in reader.metadata().row_groups() {
            groups += 1;
            seen_rows += group.num_rows() as u64;
            assert!(
                group.num_rows() <= 122_880,
                "{path:?}: {} rows in a row group",
                group.num_rows()
            );
            let dictionary = |name: &str| {
                let column = group
                    .columns()
                    .iter()
                    .find(|c| c.column_path().string() == name)
                    .unwrap_or_else(|| panic!("no column {name}"));
                column.dictionary_page_offset().is_some()
            };
            assert!(!dictionary("id"), "{path:?}: unique strings written plain");
            assert!(!dictionary("n"), "{path:?}: unique integers written plain");
            assert!(
                dictionary("kind"),
                "{path:?}: three values keep their dictionary"
            );
            assert!(
                dictionary("note"),
                "{path:?}: too few values to judge: the default"
            );
        }
    }
    assert_eq!(seen_rows, rows);
    assert!(
        groups >= 3,
        "300,000 rows make at least three row groups, not {groups}"
    );
    let csvs = [("t", data.join("t.csv"))];
    let csvs: Vec<(&str, &Path)> = csvs.iter().map(|(n, p)| (*n, p.as_path())).collect();
    assert_eq!(assert_sql_oracle(&dir, "SELECT * FROM t", &csvs), rows);
}

/// A `sluice run` that outlives its `timeout_seconds` stops the plan running in its process
/// while its write tasks hold files open (the `slow_write` failpoint holds each task after
/// its rows are written, before its files are closed), fails with the timeout, and leaves
/// nothing: no catalog entry, no file under the table's folder. The tasks are proven to have
/// held their files when the run ended.
#[tokio::test(flavor = "multi_thread")]
async fn an_embedded_run_past_its_timeout_stops_and_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let job = copy_example(tmp.path());
    let text = std::fs::read_to_string(&job).expect("read job");
    std::fs::write(
        &job,
        text.replace("staging: data", "staging: data\ntimeout_seconds: 1"),
    )
    .expect("write job");
    let lake = tmp.path().join("lake");
    let failed = run_job(&job, &lake, &[("SLUICE_FAILPOINT", "slow_write")]).expect_failure();
    assert!(
        failed.stderr.contains("failpoint slow_write: pid"),
        "a write task held its files when the timeout struck: {}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("ran longer than its timeout of 1 s"),
        "{}",
        failed.stderr
    );
    assert!(catalog_entry(&lake, "spotify", "tracks").is_none());
    let table = lake.join("spotify").join("tracks");
    let left = faults::files_under(&table);
    assert!(
        left.is_empty(),
        "files left under {}: {left:?}",
        table.display()
    );
}
