//! Job bookmarks and append targets: each run processes exactly the new files, on a folder and on S3 (moto).

use std::path::{Path, PathBuf};

use crate::cluster::{Cluster, SchedulerSetup, submitted_id, wait_for_state};
use crate::moto::Moto;
use crate::support::*;

/// The job's output, as DuckDB computes it from the raw CSVs (`tracks` and `artists`).
const ORACLE_SQL: &str = "SELECT t.id AS track_id, t.title, t.duration_ms, a.name AS artist_name \
     FROM tracks t JOIN artists a ON t.artist_id = a.id";

/// A bookmarked append job over `staging` (a folder or an S3 URL): tracks from
/// `tracks/*.csv` (tracked), joined with the lookup `artists.csv` (read whole every run).
fn job_text(staging: &str, mode: &str, catalog: &str) -> String {
    format!(
        r#"name: incremental
staging: {staging}
bookmark: {mode}
sources:
  tracks: {{ path: "tracks/*.csv" }}
  artists: {{ path: artists.csv, bookmark: false }}
transforms:
  - sql:
      name: out
      inputs: [tracks, artists]
      query: "SELECT t.id AS track_id, t.title, t.duration_ms, a.name AS artist_name FROM tracks t JOIN artists a ON t.artist_id = a.id"
target:
  input: out
  mode: append
  table: {{ database: inc, name: plays }}
{catalog}"#
    )
}

/// A tracks CSV of `n` rows whose ids start at `first` (artist ids cycle over 1..=3;
/// artist 4 matches nothing, so the join drops some rows).
fn tracks_csv(first: u64, n: u64, tag: &str) -> String {
    let mut s = String::from("id,artist_id,title,duration_ms\n");
    for i in first..first + n {
        s.push_str(&format!("{i},{},{tag} song {i},{}\n", i % 4 + 1, 1000 + i));
    }
    s
}

const ARTISTS: &str = "id,name\n1,Ann\n2,Bob\n3,Cid\n";

/// The rows `sluice run` reports written ("wrote  N rows …").
fn rows_written(run: &Run) -> u64 {
    run.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("wrote "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'wrote N rows' line:\n{}\n{}", run.stdout, run.stderr))
}

/// DuckDB's count of the job's output over just `tracks` (a file or a glob).
fn oracle_count(tracks: &Path, artists: &Path) -> u64 {
    let rows = oracle_query(
        &format!("SELECT count(*) FROM ({ORACLE_SQL})"),
        &[("tracks", tracks), ("artists", artists)],
    );
    rows[0][0]
        .as_deref()
        .and_then(|n| n.parse().ok())
        .expect("a count")
}

/// The run id the catalog points at.
fn current_run(lake: &Path) -> String {
    catalog_entry(lake, "inc", "plays").expect("registered")["run_id"]
        .as_str()
        .expect("a run id")
        .to_string()
}

struct Folder {
    dir: PathBuf,
    staging: PathBuf,
    lake: PathBuf,
    /// Every tracks file a committed run appended, once per append (the oracle's union).
    appended: PathBuf,
    n: usize,
}

impl Folder {
    fn new(dir: &Path) -> Self {
        let staging = dir.join("staging");
        std::fs::create_dir_all(staging.join("tracks")).expect("mkdir");
        std::fs::write(staging.join("artists.csv"), ARTISTS).expect("write");
        let appended = dir.join("appended");
        std::fs::create_dir_all(&appended).expect("mkdir");
        Self {
            dir: dir.to_path_buf(),
            lake: dir.join("lake"),
            staging,
            appended,
            n: 0,
        }
    }

    fn job(&self, mode: &str) -> String {
        let path = self.dir.join(format!("job-{mode}.yaml"));
        let staging = format!("{}/", self.staging.display());
        std::fs::write(&path, job_text(&staging, mode, "")).expect("write job");
        path.display().to_string()
    }

    fn drop_file(&self, name: &str, text: &str) {
        std::fs::write(self.staging.join("tracks").join(name), text).expect("write");
    }

    /// Records that a committed run appended the current content of these staging files.
    fn appended(&mut self, names: &[&str]) {
        for name in names {
            self.n += 1;
            std::fs::copy(
                self.staging.join("tracks").join(name),
                self.appended.join(format!("{:03}-{name}", self.n)),
            )
            .expect("copy");
        }
    }

    /// DuckDB's count of the output over these staging files alone.
    fn count_of(&self, names: &[&str]) -> u64 {
        let only = self.dir.join("only");
        let _ = std::fs::remove_dir_all(&only);
        std::fs::create_dir_all(&only).expect("mkdir");
        for name in names {
            std::fs::copy(self.staging.join("tracks").join(name), only.join(name)).expect("copy");
        }
        oracle_count(&only.join("*.csv"), &self.staging.join("artists.csv"))
    }

    fn run(&self, job: &str, env: &[(&str, &str)]) -> Run {
        let lake = self.lake.display().to_string();
        sluice(&["run", job, "--lake", &lake, "--preview", "0"], env)
    }

    fn bookmark(&self, args: &[&str]) -> Run {
        let lake = self.lake.display().to_string();
        let mut all = vec!["bookmark"];
        all.extend_from_slice(args);
        all.extend(["--lake", &lake]);
        sluice(&all, &[]).expect_ok()
    }

    /// The table (its current version folder alone) equals the union of every appended
    /// input, whole rows, EXCEPT ALL both ways.
    fn assert_union(&self) {
        let dir = table_dir(&self.lake, "inc", "plays");
        let tracks = self.appended.join("*.csv");
        let artists = self.staging.join("artists.csv");
        assert_sql_oracle(
            &dir,
            ORACLE_SQL,
            &[("tracks", tracks.as_path()), ("artists", artists.as_path())],
        );
    }
}

/// On a folder: every run appends exactly the new files' rows, the table is the union of
/// all inputs, and the bookmark moves only with a committed `enable` run.
#[test]
fn bookmarked_appends_process_exactly_the_new_files_on_a_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut f = Folder::new(tmp.path());
    let enable = f.job("enable");

    // Run 1: the first file; the first append creates the table.
    f.drop_file("a.csv", &tracks_csv(1, 40, "a"));
    let run = f.run(&enable, &[]).expect_ok();
    assert_eq!(rows_written(&run), f.count_of(&["a.csv"]));
    f.appended(&["a.csv"]);
    f.assert_union();
    let run1 = current_run(&f.lake);

    // Run 2: a new file; only its rows are read and appended.
    f.drop_file("b.csv", &tracks_csv(100, 25, "b"));
    let run = f.run(&enable, &[]).expect_ok();
    assert_eq!(rows_written(&run), f.count_of(&["b.csv"]));
    f.appended(&["b.csv"]);
    f.assert_union();
    let run2 = current_run(&f.lake);
    assert_ne!(run1, run2);

    // Run 3: nothing new: nothing committed, and it says so.
    let run = f.run(&enable, &[]).expect_ok();
    assert!(
        run.stdout.contains("no new input") && run.stdout.contains("nothing was committed"),
        "{}",
        run.stdout
    );
    assert_eq!(current_run(&f.lake), run2);

    // A run failing just before the catalog moves leaves the bookmark; the next run
    // processes the same file again.
    f.drop_file("c.csv", &tracks_csv(200, 30, "c"));
    f.run(&enable, &[("SLUICE_FAILPOINT", "before_commit")])
        .expect_failure();
    assert_eq!(current_run(&f.lake), run2);
    let shown = f.bookmark(&["show", &enable]).stdout;
    assert!(!shown.contains("c.csv"), "{shown}");
    assert!(
        shown.contains("a.csv") && shown.contains("b.csv"),
        "{shown}"
    );
    let run = f.run(&enable, &[]).expect_ok();
    assert_eq!(rows_written(&run), f.count_of(&["c.csv"]));
    f.appended(&["c.csv"]);
    f.assert_union();
    let run3 = current_run(&f.lake);

    // pause: reads what is new without recording it; the next enable run reads it again.
    let pause = f.job("pause");
    f.drop_file("d.csv", &tracks_csv(300, 20, "d"));
    let run = f.run(&pause, &[]).expect_ok();
    assert_eq!(rows_written(&run), f.count_of(&["d.csv"]));
    f.appended(&["d.csv"]);
    f.assert_union();
    let shown = f.bookmark(&["show", &enable]).stdout;
    assert!(!shown.contains("d.csv"), "{shown}");
    let run = f.run(&enable, &[]).expect_ok();
    assert_eq!(rows_written(&run), f.count_of(&["d.csv"]));
    f.appended(&["d.csv"]);
    f.assert_union();

    // A changed file (same name, new content) is read again.
    f.drop_file("a.csv", &tracks_csv(400, 33, "a2"));
    let run = f.run(&enable, &[]).expect_ok();
    assert_eq!(rows_written(&run), f.count_of(&["a.csv"]));
    f.appended(&["a.csv"]);
    f.assert_union();

    // show: every file with the run that processed it, and the runs to rewind to.
    let shown = f.bookmark(&["show", &enable]).stdout;
    let line_of = |name: &str| {
        shown
            .lines()
            .find(|l| l.contains(&format!("/tracks/{name}")))
            .unwrap_or_else(|| panic!("{name} in:\n{shown}"))
            .to_string()
    };
    assert!(line_of("b.csv").contains(&run2), "{shown}");
    assert!(line_of("c.csv").contains(&run3), "{shown}");
    assert!(
        !shown.contains("artists.csv"),
        "an untracked source: {shown}"
    );
    assert!(shown.contains(&run1) && shown.contains(&run2), "{shown}");

    // reset --to run2: the next run reads what run2 had not processed (c, d and the
    // changed a).
    f.bookmark(&["reset", &enable, "--to", &run2]);
    let run = f.run(&enable, &[]).expect_ok();
    assert_eq!(rows_written(&run), f.count_of(&["a.csv", "c.csv", "d.csv"]));
    f.appended(&["a.csv", "c.csv", "d.csv"]);
    f.assert_union();
    // The reset was honoured once: nothing is new now.
    let run = f.run(&enable, &[]).expect_ok();
    assert!(run.stdout.contains("no new input"), "{}", run.stdout);

    // A rewind to a run without a snapshot is refused.
    let lake = f.lake.display().to_string();
    let refused = sluice(
        &[
            "bookmark", "reset", &enable, "--to", "nope", "--lake", &lake,
        ],
        &[],
    )
    .expect_failure();
    assert!(
        refused
            .stderr
            .contains("no bookmark snapshot of run 'nope'"),
        "{}",
        refused.stderr
    );

    // reset: the next run reads every file again.
    f.bookmark(&["reset", &enable]);
    let run = f.run(&enable, &[]).expect_ok();
    assert_eq!(
        rows_written(&run),
        f.count_of(&["a.csv", "b.csv", "c.csv", "d.csv"])
    );
    f.appended(&["a.csv", "b.csv", "c.csv", "d.csv"]);
    f.assert_union();
}

/// An append whose output columns differ from the table's is refused, naming both.
#[test]
fn an_append_with_other_columns_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let f = Folder::new(tmp.path());
    let job = f.job("disable");
    f.drop_file("a.csv", &tracks_csv(1, 10, "a"));
    f.run(&job, &[]).expect_ok();
    let text = std::fs::read_to_string(&job)
        .expect("read")
        .replace("t.duration_ms,", "t.duration_ms, 1 AS extra,");
    std::fs::write(&job, text).expect("write");
    let before = current_run(&f.lake);
    let run = f.run(&job, &[]).expect_failure();
    assert!(
        run.stderr.contains("append") && run.stderr.contains("extra"),
        "{}",
        run.stderr
    );
    assert_eq!(current_run(&f.lake), before);
}

/// On S3 (moto): a bookmarked append run pair; the second reads only the new object and
/// the version (a server-side copy of the first's files plus its own) equals the union.
#[test]
fn bookmarked_appends_on_s3() {
    let tmp = tempfile::tempdir().expect("tmp");
    let moto = Moto::start();
    moto.python("s3.create_bucket(Bucket='lake')\ns3.create_bucket(Bucket='staging')");
    let put = |name: &str, text: &str| {
        let local = tmp.path().join(name);
        std::fs::write(&local, text).expect("write");
        moto.python(&format!(
            "s3.upload_file('{}', 'staging', 'inc/tracks/{name}')",
            local.display()
        ));
    };
    let job = tmp.path().join("job.yaml");
    std::fs::write(&job, job_text("s3://staging/inc/", "enable", "")).expect("write");
    let job = job.display().to_string();
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = |job: &str| {
        sluice(
            &[
                "run",
                job,
                "--lake",
                "s3://lake/warehouse",
                "--preview",
                "0",
            ],
            &env,
        )
        .expect_ok()
    };
    let local = tmp.path().join("local");
    std::fs::create_dir_all(local.join("tracks")).expect("mkdir");
    std::fs::write(local.join("artists.csv"), ARTISTS).expect("write");
    moto.python(&format!(
        "s3.upload_file('{}', 'staging', 'inc/artists.csv')",
        local.join("artists.csv").display()
    ));
    let a = tracks_csv(1, 40, "a");
    let b = tracks_csv(100, 25, "b");
    put("a.csv", &a);
    let first = run(&job);
    std::fs::write(local.join("tracks/a.csv"), &a).expect("write");
    assert_eq!(
        rows_written(&first),
        oracle_count(&local.join("tracks/a.csv"), &local.join("artists.csv"))
    );
    put("b.csv", &b);
    let second = run(&job);
    std::fs::write(local.join("tracks/b.csv"), &b).expect("write");
    assert_eq!(
        rows_written(&second),
        oracle_count(&local.join("tracks/b.csv"), &local.join("artists.csv"))
    );
    // The registered version, downloaded, equals DuckDB over both files.
    let entry = moto.python(
        "import json\nprint(s3.get_object(Bucket='lake', Key='warehouse/_sluice_catalog/inc/plays.json')['Body'].read().decode())",
    );
    let entry: serde_json::Value = serde_json::from_str(entry.trim()).expect("catalog JSON");
    let location = entry["location"].as_str().expect("location");
    let dest = tmp.path().join("table");
    download_table(&moto, location, &dest);
    assert_sql_oracle(
        &dest,
        ORACLE_SQL,
        &[
            ("tracks", local.join("tracks/*.csv").as_path()),
            ("artists", local.join("artists.csv").as_path()),
        ],
    );
    let third = run(&job);
    assert!(third.stdout.contains("no new input"), "{}", third.stdout);
}

/// Through the job service: a bookmarked run's bookmark via `sluice bookmark show
/// --scheduler` (GetBookmark), by job name.
#[test]
fn bookmark_show_through_the_scheduler() {
    let tmp = tempfile::tempdir().expect("tmp");
    let f = Folder::new(tmp.path());
    let lake = f.lake.display().to_string();
    let cluster = Cluster::start_full(tmp.path(), &lake, Vec::new(), SchedulerSetup::default());
    let job = f.job("enable");
    f.drop_file("a.csv", &tracks_csv(1, 40, "a"));
    let id = submitted_id(&cluster.cli(&["submit", &job, "--detach"]).expect_ok());
    assert_eq!(
        wait_for_state(&cluster, &id, &["SUCCEEDED", "FAILED"], 120),
        "SUCCEEDED"
    );
    let shown = cluster
        .cli(&["bookmark", "show", "incremental"])
        .expect_ok()
        .stdout;
    assert!(shown.contains(&format!("as of run {id}")), "{shown}");
    assert!(
        shown.contains("/tracks/a.csv") && shown.contains(&id),
        "{shown}"
    );
    // Nothing new: the run succeeds, commits nothing and says so.
    let id2 = submitted_id(&cluster.cli(&["submit", &job, "--detach"]).expect_ok());
    assert_eq!(
        wait_for_state(&cluster, &id2, &["SUCCEEDED", "FAILED"], 120),
        "SUCCEEDED"
    );
    let status = cluster.cli(&["status", &id2]).expect_ok().stdout;
    assert!(status.contains("no new input"), "{status}");
    assert_eq!(current_run(&f.lake), id);
}

/// On the embedded default, `sluice bookmark show|reset` take a bare job name: the job's
/// table is the one of the lake's embedded catalog whose current version holds its
/// bookmark. A commit keeps only the last 20 bookmark snapshots (rewind points), and show
/// lists only those. A name no table's bookmark records, or that two tables' do, is an
/// error naming what it found.
#[test]
fn bookmark_by_job_name_and_bounded_rewind_points_on_the_embedded_default() {
    const KEPT: usize = 20;
    let tmp = tempfile::tempdir().expect("tmp");
    let f = Folder::new(tmp.path());
    let lake = f.lake.display().to_string();
    let enable = f.job("enable");
    f.drop_file("a.csv", &tracks_csv(1, 40, "a"));
    f.run(&enable, &[]).expect_ok();
    let run1 = current_run(&f.lake);

    // Older rewind points than the table keeps: copies of run 1's snapshot under older
    // run ids (ids sort by time), as if 25 earlier runs had left them.
    let snapshots = f.lake.join("inc/plays/_bookmarks");
    let first = std::fs::read(snapshots.join(format!("{run1}.json"))).expect("run 1's snapshot");
    let old: Vec<String> = (0..25)
        .map(|n| format!("20000101T0000{n:05}-0000abcd"))
        .collect();
    for id in &old {
        std::fs::write(snapshots.join(format!("{id}.json")), &first).expect("write");
    }

    // Run 2 commits: the bookmark's snapshots are pruned to the newest 20 (run 2's, run
    // 1's and the 18 newest planted ones).
    f.drop_file("b.csv", &tracks_csv(100, 25, "b"));
    f.run(&enable, &[]).expect_ok();
    let run2 = current_run(&f.lake);
    let mut left: Vec<String> = std::fs::read_dir(&snapshots)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    left.sort();
    let mut expected: Vec<String> = old[old.len() - (KEPT - 2)..].to_vec();
    expected.extend([run1.clone(), run2.clone()]);
    assert_eq!(left, expected, "the newest {KEPT} snapshots are kept");

    // show by name: the files and exactly the runs that can be rewound to.
    let shown = f.bookmark(&["show", "incremental"]).stdout;
    assert!(shown.contains(&format!("as of run {run2}")), "{shown}");
    assert!(
        shown.contains("/tracks/a.csv") && shown.contains("/tracks/b.csv"),
        "{shown}"
    );
    let listed: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.contains("earlier runs"))
        .skip(1)
        .map(str::trim)
        .collect();
    let mut rewindable: Vec<&str> = expected[..KEPT - 1].iter().map(String::as_str).collect();
    rewindable.reverse();
    assert_eq!(listed, rewindable, "{shown}");
    // A pruned run cannot be rewound to; a kept one can, by name too.
    let refused = sluice(
        &[
            "bookmark",
            "reset",
            "incremental",
            "--to",
            &old[0],
            "--lake",
            &lake,
        ],
        &[],
    )
    .expect_failure();
    assert!(
        refused
            .stderr
            .contains(&format!("no bookmark snapshot of run '{}'", old[0])),
        "{}",
        refused.stderr
    );
    f.bookmark(&["reset", "incremental", "--to", &run1]);
    let run = f.run(&enable, &[]).expect_ok();
    assert_eq!(rows_written(&run), f.count_of(&["b.csv"]));

    // A name no table's bookmark records.
    let missing = sluice(&["bookmark", "show", "nosuchjob", "--lake", &lake], &[]).expect_failure();
    assert!(
        missing.stderr.contains("no table of the embedded catalog")
            && missing
                .stderr
                .contains("holds a bookmark of job 'nosuchjob'"),
        "{}",
        missing.stderr
    );
    let nofile = sluice(&["bookmark", "show", "nope.yaml", "--lake", &lake], &[]).expect_failure();
    assert!(
        nofile.stderr.contains("nope.yaml: no such job file"),
        "{}",
        nofile.stderr
    );

    // The same job name writing a second table: the name is ambiguous, both are named,
    // and the job file still says which.
    let other = tmp.path().join("job-other.yaml");
    let text = std::fs::read_to_string(&enable)
        .expect("read")
        .replace("name: plays }", "name: plays_copy }");
    assert!(text.contains("plays_copy"), "{text}");
    std::fs::write(&other, text).expect("write");
    let other = other.display().to_string();
    f.run(&other, &[]).expect_ok();
    let ambiguous =
        sluice(&["bookmark", "show", "incremental", "--lake", &lake], &[]).expect_failure();
    assert!(
        ambiguous
            .stderr
            .contains("2 tables of the embedded catalog hold a bookmark of job 'incremental': inc.plays, inc.plays_copy"),
        "{}",
        ambiguous.stderr
    );
    let shown = f.bookmark(&["show", &other]).stdout;
    assert!(shown.contains("/tracks/a.csv"), "{shown}");
}
