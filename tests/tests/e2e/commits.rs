//! What a commit publishes: an empty result is a readable table, and partition values are
//! the values themselves with per-partition counts. Checked with DuckDB (`tests/oracle.py`)
//! and pyarrow, not with Sluice. (That a cancelled run's late writes never reach a reader,
//! and what a cancel or crash during the commit leaves, is checked in `faults.rs`.)

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::moto::venv;
use crate::support::*;

fn python(code: &str) -> String {
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", code])
        .output()
        .expect("python starts");
    assert!(
        out.status.success(),
        "{code}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn location(lake: &Path, database: &str, table: &str) -> PathBuf {
    let entry = catalog_entry(lake, database, table).expect("registered");
    PathBuf::from(
        entry["location"]
            .as_str()
            .expect("location")
            .trim_start_matches("file://"),
    )
}

fn write_job(dir: &Path, name: &str, body: &str) -> PathBuf {
    let job = dir.join(format!("{name}.yaml"));
    std::fs::write(&job, body).expect("write job");
    job
}

/// Runs (embedded, into `lake`) a job writing `spotify.<name>` from a filter that matches no
/// album, partitioned by `partition_by` if given, and checks it reports 0 rows written.
fn run_empty_job(dir: &Path, lake: &str, staging: &Path, name: &str, partition_by: Option<&str>) {
    let partitioned = partition_by
        .map(|c| format!("  partition_by: [{c}]\n"))
        .unwrap_or_default();
    let job = write_job(
        dir,
        name,
        &format!(
            r#"
name: {name}
staging: {}
sources:
  albums: {{ path: albums.csv }}
transforms:
  - filter: {{ name: none, input: albums, predicate: "album_popularity > 1000" }}
target:
  input: none
{partitioned}  table: {{ database: spotify, name: {name} }}
"#,
            staging.display()
        ),
    );
    let run = sluice(&["run", job.to_str().expect("utf-8"), "--lake", lake], &[]).expect_ok();
    assert!(run.stdout.contains("wrote  0 rows"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_result_is_a_table_and_breaks_no_query() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let lake_arg = lake.display().to_string();
    let staging = spotify_data();
    sluice(
        &[
            "run",
            repo()
                .join("examples/spotify/job.yaml")
                .to_str()
                .expect("utf-8"),
            "--lake",
            &lake_arg,
        ],
        &[],
    )
    .expect_ok();
    run_empty_job(tmp.path(), &lake_arg, &staging, "nothing", None);

    // Readers that do not share our code see a table with the columns and no rows.
    let dir = location(&lake, "spotify", "nothing");
    let seen = python(&format!(
        "import pyarrow.dataset as ds; t = ds.dataset('{}', format='parquet').to_table(); \
         print(t.num_rows, t.column_names[:3])",
        dir.display()
    ));
    assert_eq!(seen, "0 ['track_name', 'track_id', 'track_number']");

    // Every query still works: on the empty table and on the others.
    let q = |sql: &str| {
        sluice(&["query", sql, "--lake", &lake_arg, "--format", "csv"], &[]).expect_ok()
    };
    assert_eq!(
        q("SELECT count(*) AS n FROM spotify.nothing").stdout.trim(),
        "n\n0"
    );
    assert_eq!(
        q("SELECT count(*) AS n FROM spotify.tracks").stdout.trim(),
        "n\n19621"
    );

    // Partitioned, an empty result is a table with no partitions that still reads as empty,
    // for us and for pyarrow, and breaks no other query.
    run_empty_job(
        tmp.path(),
        &lake_arg,
        &staging,
        "nothing_by_type",
        Some("album_type"),
    );
    let entry = catalog_entry(&lake, "spotify", "nothing_by_type").expect("registered");
    assert_eq!(entry["partition_keys"][0]["name"], "album_type", "{entry}");
    assert_eq!(
        entry["partitions"].as_array().map_or(0, Vec::len),
        0,
        "{entry}"
    );
    let dir = location(&lake, "spotify", "nothing_by_type");
    let seen = python(&format!(
        "import pyarrow.dataset as ds; print(ds.dataset('{}', format='parquet', \
         partitioning='hive').count_rows())",
        dir.display()
    ));
    assert_eq!(seen, "0");
    assert_eq!(
        q("SELECT count(*) AS n FROM spotify.nothing_by_type")
            .stdout
            .trim(),
        "n\n0"
    );
    assert_eq!(
        q("SELECT count(*) AS n FROM spotify.nothing").stdout.trim(),
        "n\n0"
    );
    assert_eq!(
        q("SELECT count(*) AS n FROM spotify.tracks").stdout.trim(),
        "n\n19621"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn partition_values_are_stored_as_values_with_their_own_counts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let staging = tmp.path().join("staging");
    std::fs::create_dir_all(&staging).expect("mkdir");
    let mut csv = String::from("id,kind,amount\n");
    let kinds = ["a/b", "c d", "x=y", "100%", "plain"];
    for i in 0..500 {
        csv.push_str(&format!("{i},{},{}\n", kinds[i % kinds.len()], i * 3));
    }
    csv.push_str("500,,7\n");
    std::fs::write(staging.join("items.csv"), &csv).expect("write csv");
    let job = write_job(
        tmp.path(),
        "parts",
        &format!(
            r#"
name: parts
staging: {}
sources:
  items: {{ path: items.csv }}
target:
  input: items
  partition_by: [kind]
  table: {{ database: test, name: parts }}
"#,
            staging.display()
        ),
    );
    let lake = tmp.path().join("lake");
    sluice(
        &[
            "run",
            job.to_str().expect("utf-8"),
            "--lake",
            &lake.display().to_string(),
        ],
        &[],
    )
    .expect_ok();
    let entry = catalog_entry(&lake, "test", "parts").expect("registered");
    let mut partitions: Vec<(String, u64)> = entry["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["values"][0].as_str().expect("value").to_string(),
                p["rows"].as_u64().expect("the partition's own row count"),
            )
        })
        .collect();
    partitions.sort();
    assert_eq!(
        partitions,
        [
            ("100%".to_string(), 100),
            ("__HIVE_DEFAULT_PARTITION__".to_string(), 1),
            ("a/b".to_string(), 100),
            ("c d".to_string(), 100),
            ("plain".to_string(), 100),
            ("x=y".to_string(), 100),
        ]
    );
    // Each partition's folder holds exactly its rows (pyarrow reads them; the key is in the
    // registered partition, not in the files).
    let dir = location(&lake, "test", "parts");
    for p in entry["partitions"].as_array().expect("partitions") {
        let folder = p["location"]
            .as_str()
            .expect("location")
            .trim_start_matches("file://")
            .to_string();
        assert!(folder.starts_with(&dir.display().to_string()), "{folder}");
        let n = python(&format!(
            "import pyarrow.dataset as ds; print(ds.dataset('{folder}', format='parquet').count_rows())"
        ));
        assert_eq!(n, p["rows"].to_string(), "{folder}");
    }
}
