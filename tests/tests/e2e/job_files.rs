//! Job files and what the CLI says about them: repeated keys, `validate` against the data,
//! bad rows found while inferring a schema, header-only inputs, and output read by a
//! consumer that stops early (`sluice … | head -1`).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::*;

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Replaces `from` (which must occur) in the job file.
fn edit_job(job: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(job).expect("read job");
    assert!(text.contains(from), "{from:?} is in the job");
    std::fs::write(job, text.replacen(from, to, 1)).expect("write job");
}

/// Writes `dir/job.yaml`: the source `name` (its YAML `source`) written as table `t.name`.
fn one_source_job(dir: &Path, name: &str, source: &str) -> std::path::PathBuf {
    let job = dir.join("job.yaml");
    let text = format!(
        "name: {name}\nsources:\n  {name}: {source}\ntarget:\n  input: {name}\n  table: {{ database: t, name: {name} }}\n"
    );
    std::fs::write(&job, text).expect("job");
    job
}

/// The 1-based line of the job file that contains `needle`.
fn line_of(job: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(job).expect("read job");
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} is in the job"))
}

#[test]
fn a_key_written_twice_is_refused_naming_both_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let job = copy_example(tmp.path());
    let lake = tmp.path().join("lake");
    // A second `artists` source (an empty table) used to replace the good one silently.
    std::fs::write(tmp.path().join("data/no_artists.csv"), "id,name\n").expect("csv");
    edit_job(
        &job,
        "  tracks:\n",
        "  artists:\n    path: no_artists.csv\n  tracks:\n",
    );
    let first = line_of(&job, "  artists:");
    let second = line_of(&job, "path: no_artists.csv") - 1;
    let expected = format!(
        "{}:{second}:3: sources.artists: duplicate key 'artists' (first at line {first})",
        job.display()
    );
    let v = sluice(&["validate", path_arg(&job)], &[]).expect_failure();
    assert!(v.stderr.contains(&expected), "{}", v.stderr);
    let v = sluice(&["validate", "--offline", path_arg(&job)], &[]).expect_failure();
    assert!(v.stderr.contains(&expected), "{}", v.stderr);
    let run = sluice(&["run", path_arg(&job), "--lake", path_arg(&lake)], &[]).expect_failure();
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(catalog_entry(&lake, "spotify", "tracks").is_none());
}

#[test]
fn validate_checks_the_job_against_its_data_unless_offline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let job = copy_example(tmp.path());
    let ok = sluice(&["validate", path_arg(&job)], &[]).expect_ok();
    assert!(
        ok.stdout
            .contains("job 'spotify' is valid (3 sources, 3 transforms; 3 input files found, 20 output columns)"),
        "{}",
        ok.stdout
    );
    let original = std::fs::read_to_string(&job).expect("read job");
    // (edit, the line it breaks, what the error says)
    let cases = [
        (
            ("path: artists.csv", "path: artistz.csv"),
            "path: artistz.csv",
            "sources.artists.path: no file matches",
        ),
        (
            (
                "{ left: artist_id, right: id }",
                "{ left: artist_idd, right: id }",
            ),
            "left: artist_idd",
            "no column 'artist_idd' in 'albums' (did you mean 'artist_id'?)",
        ),
        (
            (
                "  compression: snappy\n",
                "  compression: snappy\n  partition_by: [album_kind]\n",
            ),
            "partition_by: [album_kind]",
            "target.partition_by[0]",
        ),
    ];
    for ((from, to), broken, message) in cases {
        std::fs::write(&job, &original).expect("restore job");
        edit_job(&job, from, to);
        let line = line_of(&job, broken);
        let v = sluice(&["validate", path_arg(&job)], &[]).expect_failure();
        assert!(
            v.stderr.contains(&format!("{}:{line}:", job.display())) && v.stderr.contains(message),
            "{to}: {}",
            v.stderr
        );
        let offline = sluice(&["validate", "--offline", path_arg(&job)], &[]).expect_ok();
        assert!(
            offline.stdout.contains("is well formed") && offline.stdout.contains("--offline"),
            "{}",
            offline.stdout
        );
    }
}

#[test]
fn a_bad_row_found_while_inferring_the_schema_is_named_by_its_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let csv = tmp.path().join("scores.csv");
    let mut text = String::from("id,name,score\n");
    for i in 1..=700 {
        // Line 501 of the file (data row 500) lacks its last field.
        if i == 500 {
            text.push_str(&format!("{i},n{i}\n"));
        } else {
            text.push_str(&format!("{i},n{i},{}\n", i * 2));
        }
    }
    std::fs::write(&csv, text).expect("csv");
    let job = one_source_job(tmp.path(), "scores", "{ path: scores.csv }");
    let lake = tmp.path().join("lake");
    let expected = format!(
        "{}:501: wrong number of fields: expected 3 fields, found 2",
        csv.display()
    );
    assert!(expected.starts_with('/'), "{expected}");
    let v = sluice(&["validate", path_arg(&job)], &[]).expect_failure();
    assert!(
        v.stderr.contains("job.yaml:3:") && v.stderr.contains(&expected),
        "{}",
        v.stderr
    );
    let run = sluice(&["run", path_arg(&job), "--lake", path_arg(&lake)], &[]).expect_failure();
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
}

/// A CSV source whose job declares every column's type is read with those types in the
/// header's order and not sampled: zero-padded codes stay text although they look like
/// integers, and a bad row is still named by its file and line (found while reading now).
#[test]
fn a_source_declaring_every_column_is_read_with_those_types() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let csv = tmp.path().join("codes.csv");
    let mut text = String::from("code,amount,flag\n");
    for i in 1..=700 {
        text.push_str(&format!("{i:04},{}.5,{}\n", i * 2, i % 2 == 0));
    }
    std::fs::write(&csv, &text).expect("csv");
    // Declared in another order than the header's.
    let job = one_source_job(
        tmp.path(),
        "codes",
        "{ path: codes.csv, columns: { flag: boolean, code: string, amount: double } }",
    );
    let lake = tmp.path().join("lake");
    let run = sluice(&["run", path_arg(&job), "--lake", path_arg(&lake)], &[]).expect_ok();
    assert!(run.stdout.contains("wrote  700 rows"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("code string, amount double, flag boolean"),
        "{}",
        run.stdout
    );
    let q = sluice(
        &[
            "query",
            "SELECT code, amount, flag FROM t.codes WHERE code IN ('0007', '0700') ORDER BY code",
            "--lake",
            path_arg(&lake),
            "--format",
            "csv",
        ],
        &[],
    )
    .expect_ok();
    let rows: Vec<&str> = q.stdout.lines().collect();
    assert_eq!(
        rows,
        ["code,amount,flag", "0007,14.5,false", "0700,1400.5,true"],
        "{}",
        q.stdout
    );

    // Line 501 of the file (data row 500) lacks its last field.
    std::fs::write(
        &csv,
        text.replacen("0500,1000.5,true\n", "0500,1000.5\n", 1),
    )
    .expect("csv");
    let bad = sluice(&["run", path_arg(&job), "--lake", path_arg(&lake)], &[]).expect_failure();
    assert!(
        bad.stderr.contains(&format!("{}:501:", csv.display())),
        "{}",
        bad.stderr
    );
    assert_eq!(
        versions(&lake, "t", "codes").len(),
        1,
        "the failed run registered nothing"
    );
}

#[test]
fn a_header_only_csv_is_an_empty_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("albums.csv"),
        "album,artist_id\na1,1\na2,2\n",
    )
    .expect("csv");
    std::fs::write(tmp.path().join("artists.csv"), "id,name\n").expect("csv");
    let job = tmp.path().join("job.yaml");
    std::fs::write(
        &job,
        r#"name: header_only
sources:
  albums: { path: albums.csv }
  artists: { path: artists.csv }
transforms:
  - join: { name: j, left: albums, right: artists, type: left, on: ["artist_id = id"] }
  - drop_duplicate_fields: { name: d, input: j }
target:
  input: d
  table: { database: t, name: albums }
"#,
    )
    .expect("job");
    let lake = tmp.path().join("lake");
    sluice(&["validate", path_arg(&job)], &[]).expect_ok();
    let run = sluice(
        &[
            "run",
            path_arg(&job),
            "--lake",
            path_arg(&lake),
            "--preview",
            "0",
        ],
        &[],
    )
    .expect_ok();
    assert!(run.stdout.contains("wrote  2 rows"), "{}", run.stdout);
    // The empty side's columns are strings, as a crawler registers a column with no values.
    assert!(
        run.stdout
            .contains("album string, artist_id bigint, name string"),
        "{}",
        run.stdout
    );
    let q = sluice(
        &[
            "query",
            "SELECT count(*) AS n FROM t.albums WHERE name IS NULL",
            "--lake",
            path_arg(&lake),
            "--format",
            "csv",
        ],
        &[],
    )
    .expect_ok();
    assert_eq!(csv_count(&q), 2);
}

/// Runs `sluice ARGS` with its standard output closed before it writes anything, as
/// `sluice … | head -1` leaves it once `head` has its line.
fn sluice_into_closed_pipe(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(binary("sluice"))
        .args(args)
        .env_remove("SLUICE_LAKE")
        .env_remove("SLUICE_FAILPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("sluice ends");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let job = copy_example(tmp.path());
    let lake = tmp.path().join("lake");
    let lake = path_arg(&lake);
    let job = path_arg(&job);
    let sql = "SELECT * FROM spotify.tracks";
    let calls: [&[&str]; 6] = [
        &["validate", job],
        &["run", job, "--lake", lake],
        &["query", sql, "--lake", lake],
        &["query", sql, "--lake", lake, "--format", "csv"],
        &["query", sql, "--lake", lake, "--format", "json"],
        &["tables", "--lake", lake],
    ];
    for args in calls {
        let (status, stderr) = sluice_into_closed_pipe(args);
        assert!(
            status.success() && stderr.trim().is_empty(),
            "{args:?}: {status}\n{stderr}"
        );
    }
    // The run finished its work before it found nobody reading.
    assert!(catalog_entry(Path::new(lake), "spotify", "tracks").is_some());
}
