//! Data-quality rules (DQDL) on a run's output: each rule kind passes and fails on crafted data; a failing `fail` rule publishes nothing.
//!
//! The rules run through the real `sluice run`; the metrics it reports are checked against
//! DuckDB computing the same measure over the raw CSV (tests/oracle.py), not against Sluice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::*;

/// Five rows: a duplicate id (4), a missing name, a missing score, old timestamps.
const ITEMS: &str = "id,name,score,kind,ts
1,alpha,10,album,2020-01-01T00:00:00
2,beta,20,single,2020-01-02T00:00:00
3,,30,album,2020-01-03T00:00:00
4,delta,,compilation,2020-01-04T00:00:00
4,eps,50,album,2020-01-05T00:00:00
";

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    lake: String,
    csv: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let csv = data.join("items.csv");
    std::fs::write(&csv, ITEMS).expect("write csv");
    let lake = dir.join("lake").display().to_string();
    Fixture {
        _tmp: tmp,
        dir,
        lake,
        csv,
    }
}

/// A job over items.csv into q.items with `rules` (one per line) and `on_failure`.
fn job(f: &Fixture, name: &str, on_failure: &str, rules: &[&str]) -> PathBuf {
    let body = format!(
        "name: {name}\nstaging: data\nsources:\n  items: {{ path: items.csv }}\ntarget:\n  input: items\n  table: {{ database: q, name: items }}\nquality:\n  on_failure: {on_failure}\n  rules: |\n    Rules = [\n{}\n    ]\n",
        rules
            .iter()
            .map(|r| format!("      {r}"))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let path = f.dir.join(format!("{name}.yaml"));
    std::fs::write(&path, body).expect("write job");
    path
}

fn run(f: &Fixture, job: &Path) -> Run {
    sluice(
        &["run", job.to_str().expect("utf-8"), "--lake", &f.lake],
        &[],
    )
}

/// Each `rule` line `sluice run` printed: (outcome, rule text, metrics).
fn printed_rules(out: &str) -> Vec<(String, String, BTreeMap<String, f64>)> {
    out.lines()
        .filter_map(|l| l.trim_start().strip_prefix("rule "))
        .map(|l| {
            let l = l.trim_start();
            let (outcome, rest) = l.split_once(' ').expect("outcome and rule");
            let rest = rest.trim_start();
            let rest = rest.split("  -- ").next().unwrap_or(rest);
            let (rule, metrics) = match rest.split_once("  [") {
                Some((r, m)) => (r, m.trim_end_matches(']')),
                None => (rest, ""),
            };
            let metrics = metrics
                .split(", ")
                .filter(|m| !m.is_empty())
                .map(|m| {
                    let (k, v) = m.rsplit_once('=').expect("name=value");
                    (k.to_string(), v.parse().expect("a number"))
                })
                .collect();
            (outcome.to_string(), rule.trim().to_string(), metrics)
        })
        .collect()
}

/// DuckDB's one number for `sql` over the CSV (as table `items`).
fn duck(f: &Fixture, sql: &str) -> f64 {
    let rows = oracle_query(sql, &[("items", f.csv.as_path())]);
    rows[0][0]
        .as_deref()
        .unwrap_or_else(|| panic!("DuckDB gave NULL for {sql}"))
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn assert_close(what: &str, ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() < 1e-9,
        "{what}: sluice reported {ours}, DuckDB computes {theirs}"
    );
}

/// Metrics Sluice reported, checked against DuckDB's measure over the raw CSV.
fn check_metrics(f: &Fixture, printed: &[(String, String, BTreeMap<String, f64>)]) -> usize {
    let oracle: BTreeMap<&str, &str> = BTreeMap::from([
        ("Dataset.*.RowCount", "SELECT count(*) FROM items"),
        (
            "Column.name.Completeness",
            "SELECT count(name) / count(*) FROM items",
        ),
        (
            "Column.score.Completeness",
            "SELECT count(score) / count(*) FROM items",
        ),
        (
            "Column.id.Uniqueness",
            "SELECT (SELECT count(*) FROM (SELECT id FROM items WHERE id IS NOT NULL GROUP BY id HAVING count(*) = 1)) / (SELECT count(*) FROM items)",
        ),
        ("Column.score.Mean", "SELECT avg(score) FROM items"),
        ("Column.score.Sum", "SELECT sum(score) FROM items"),
        (
            "Column.score.StandardDeviation",
            "SELECT stddev_pop(score) FROM items",
        ),
        (
            "Column.kind.DistinctValuesCount",
            "SELECT count(DISTINCT kind) FROM items",
        ),
        (
            "Column.kind.MaximumLength",
            "SELECT max(length(kind)) FROM items",
        ),
        (
            "Column.kind.MinimumLength",
            "SELECT min(length(kind)) FROM items",
        ),
    ]);
    let mut checked = 0;
    for (_, rule, metrics) in printed {
        for (name, value) in metrics {
            if let Some(sql) = oracle.get(name.as_str()) {
                assert_close(&format!("{rule}: {name}"), *value, duck(f, sql));
                checked += 1;
            }
        }
    }
    checked
}

#[test]
fn every_rule_type_passes_on_data_that_meets_it() {
    let f = fixture();
    let rules = [
        "RowCount = 5",
        "RowCount between 4 and 6",
        "ColumnCount = 5",
        "IsComplete \"id\"",
        "Completeness \"name\" >= 0.8",
        "Uniqueness \"id\" > 0.5",
        "IsUnique \"ts\"",
        "IsPrimaryKey \"id\" \"ts\"",
        "ColumnValues \"kind\" in [\"album\", \"single\", \"compilation\"]",
        "ColumnValues \"score\" between 5 and 55 with threshold >= 0.8",
        "ColumnValues \"name\" matches \"^[a-z]+$\" with threshold >= 0.8",
        "ColumnValues \"id\" <= 4",
        "ColumnLength \"kind\" between 4 and 12",
        "Mean \"score\" = 27.5",
        "Sum \"score\" = 110",
        "StandardDeviation \"score\" < 20",
        "DistinctValuesCount \"kind\" = 3",
        "ColumnExists \"ts\"",
        "CustomSql \"select count(*) from primary where score > 15\" = 3",
        "DataFreshness \"ts\" > 24 hours",
        "(IsComplete \"id\") and (ColumnExists \"name\")",
        "(IsComplete \"name\") or (RowCount > 1)",
    ];
    assert_every_rule_passes(&f, "passing", &rules, 8);
}

/// Runs `rules` as the job `name` with `on_failure: fail` and checks that each is printed
/// PASSED, in order, that at least `min_checked` metrics agree with DuckDB's, and that the
/// table was published.
fn assert_every_rule_passes(f: &Fixture, name: &str, rules: &[&str], min_checked: usize) {
    let job = job(f, name, "fail", rules);
    let out = run(f, &job).expect_ok();
    let printed = printed_rules(&out.stdout);
    assert_eq!(printed.len(), rules.len(), "{}", out.stdout);
    for ((outcome, rule, _), expected) in printed.iter().zip(rules) {
        assert_eq!(outcome, "PASSED", "{rule}\n{}", out.stdout);
        assert_eq!(rule, expected);
    }
    assert!(check_metrics(f, &printed) >= min_checked, "{}", out.stdout);
    assert!(catalog_entry(Path::new(&f.lake), "q", "items").is_some());
}

/// An empty input (the header alone): the aggregate pass, whose distinct counts are
/// subqueries of their own, still measures one row of metrics, and they agree with DuckDB's
/// over the same file.
#[test]
fn rules_with_distinct_counts_measure_an_empty_output() {
    let f = fixture();
    std::fs::write(&f.csv, "id,name,score,kind,ts\n").expect("write header-only csv");
    let rules = [
        "RowCount = 0",
        "DistinctValuesCount \"kind\" = 0",
        "DistinctValuesCount \"id\" = 0",
        "ColumnExists \"ts\"",
    ];
    assert_every_rule_passes(&f, "empty", &rules, 2);
}

#[test]
fn every_rule_type_fails_on_data_that_does_not_meet_it_and_warn_publishes() {
    let f = fixture();
    let rules = [
        "RowCount > 5",
        "ColumnCount = 4",
        "IsComplete \"name\"",
        "Completeness \"score\" > 0.9",
        "IsUnique \"id\"",
        "Uniqueness \"id\" > 0.9",
        "IsPrimaryKey \"id\"",
        "ColumnValues \"kind\" in [\"album\", \"single\"]",
        "ColumnValues \"score\" between 5 and 55",
        "ColumnValues \"name\" matches \"^[a-c]\" with threshold > 0.5",
        "ColumnLength \"kind\" < 6",
        "Mean \"score\" > 30",
        "Sum \"score\" < 100",
        "StandardDeviation \"score\" < 10",
        "DistinctValuesCount \"kind\" > 3",
        "ColumnExists \"nope\"",
        "CustomSql \"select count(*) from primary\" = 4",
        "DataFreshness \"ts\" <= 24 hours",
        "(IsComplete \"id\") and (IsComplete \"name\")",
        "(RowCount = 0) or (IsUnique \"id\")",
    ];
    let job = job(&f, "failing", "warn", &rules);
    let out = run(&f, &job).expect_ok();
    let printed = printed_rules(&out.stdout);
    assert_eq!(printed.len(), rules.len(), "{}", out.stdout);
    for ((outcome, rule, _), expected) in printed.iter().zip(rules) {
        assert_eq!(outcome, "FAILED", "{rule}\n{}", out.stdout);
        assert_eq!(rule, expected);
    }
    assert!(check_metrics(&f, &printed) >= 8, "{}", out.stdout);
    // warn: the table is published all the same.
    let entry = catalog_entry(Path::new(&f.lake), "q", "items").expect("published");
    assert_eq!(entry["parameters"]["recordCount"], "5", "{entry}");
}

#[test]
fn a_failing_fail_rule_publishes_nothing_and_names_the_rule() {
    let f = fixture();
    let lake = PathBuf::from(&f.lake);
    let first = job(&f, "first", "warn", &["RowCount > 0"]);
    run(&f, &first).expect_ok();
    let entry = catalog_entry(&lake, "q", "items").expect("published");
    let versions_before = versions(&lake, "q", "items");

    let strict = job(
        &f,
        "strict",
        "fail",
        &["RowCount > 0", "IsComplete \"name\""],
    );
    let out = run(&f, &strict).expect_failure();
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("IsComplete \"name\""), "{all}");
    assert!(all.contains("Column.name.Completeness"), "{all}");
    assert!(all.contains("nothing was published"), "{all}");
    assert_eq!(catalog_entry(&lake, "q", "items"), Some(entry));
    assert_eq!(versions(&lake, "q", "items"), versions_before);
}

#[test]
fn a_bad_ruleset_is_refused_at_its_line_in_the_job_file() {
    let f = fixture();
    let job = job(&f, "bad", "fail", &["RowCount > 0", "IsComplet \"id\""]);
    let out = run(&f, &job).expect_failure();
    // Line 13 of the job file holds the misspelt rule, indented by 6.
    assert!(out.stderr.contains("bad.yaml:13:7"), "{}", out.stderr);
    assert!(
        out.stderr.contains("did you mean IsComplete?"),
        "{}",
        out.stderr
    );
    assert!(catalog_entry(Path::new(&f.lake), "q", "items").is_none());
}

/// On the cluster (scheduler + executors): `sluice status` shows each rule's outcome from
/// the run record the job service keeps (GetJob), and a failed rule fails the run.
#[test]
fn cluster_runs_report_rule_outcomes_in_status() {
    use crate::cluster::{Cluster, SchedulerSetup, submitted_id, wait_for_state};
    let f = fixture();
    let cluster = Cluster::start_full(&f.dir, &f.lake, Vec::new(), SchedulerSetup::default());
    let warn = job(
        &f,
        "warned",
        "warn",
        &["RowCount = 5", "IsComplete \"name\""],
    );
    let id = submitted_id(
        &cluster
            .cli(&["submit", warn.to_str().expect("utf-8"), "--detach"])
            .expect_ok(),
    );
    assert_eq!(
        wait_for_state(&cluster, &id, &["SUCCEEDED", "FAILED"], 120),
        "SUCCEEDED"
    );
    let status = cluster.cli(&["status", &id]).expect_ok().stdout;
    assert!(
        status.contains("PASSED RowCount = 5  [Dataset.*.RowCount=5]"),
        "{status}"
    );
    assert!(status.contains("FAILED IsComplete \"name\""), "{status}");

    let strict = job(&f, "strict", "fail", &["IsComplete \"name\""]);
    let id = submitted_id(
        &cluster
            .cli(&["submit", strict.to_str().expect("utf-8"), "--detach"])
            .expect_ok(),
    );
    assert_eq!(
        wait_for_state(&cluster, &id, &["SUCCEEDED", "FAILED"], 120),
        "FAILED"
    );
    let status = cluster.cli(&["status", &id]).stdout;
    assert!(status.contains("FAILED IsComplete \"name\""), "{status}");
    assert!(status.contains("Column.name.Completeness"), "{status}");
}

/// `ReferentialIntegrity` reads another catalog table: a lookup job registers `q.kinds`
/// (album, single), then 4 of the 5 items' kinds are found there (DuckDB computes the same
/// share over the two CSVs).
#[test]
fn referential_integrity_reads_another_catalog_table() {
    let f = fixture();
    let kinds = f.dir.join("data/kinds.csv");
    std::fs::write(&kinds, "kind\nalbum\nsingle\n").expect("write kinds");
    let lookup = f.dir.join("kinds.yaml");
    std::fs::write(
        &lookup,
        "name: kinds\nstaging: data\nsources:\n  kinds: { path: kinds.csv }\ntarget:\n  input: kinds\n  table: { database: q, name: kinds }\n",
    )
    .expect("write lookup job");
    run(&f, &lookup).expect_ok();
    let share = oracle_query(
        "SELECT avg(CASE WHEN k.kind IS NOT NULL THEN 1.0 ELSE 0.0 END) FROM items i \
         LEFT JOIN (SELECT DISTINCT kind FROM kinds) k ON i.kind = k.kind",
        &[("items", f.csv.as_path()), ("kinds", kinds.as_path())],
    )[0][0]
        .clone()
        .expect("a share");
    let share: f64 = share.parse().expect("a number");
    assert!((share - 0.8).abs() < 1e-9, "{share}");
    let rules = [
        "ReferentialIntegrity \"kind\" \"q.kinds.kind\" >= 0.8",
        "ReferentialIntegrity \"kind\" \"q.kinds.kind\" = 1.0",
    ];
    let job = job(&f, "referencing", "warn", &rules);
    let out = run(&f, &job).expect_ok();
    let printed = printed_rules(&out.stdout);
    assert_eq!(printed.len(), 2, "{}", out.stdout);
    assert_eq!(printed[0].0, "PASSED", "{}", out.stdout);
    assert_eq!(printed[1].0, "FAILED", "{}", out.stdout);
    let measured: Vec<f64> = printed[1].2.values().copied().collect();
    assert!(
        measured.iter().any(|v| (v - share).abs() < 1e-9),
        "the measured share {measured:?} is DuckDB's {share}: {}",
        out.stdout
    );
}

/// Every evaluated rule becomes a row of the catalog table `sluice_quality.results`: a `warn`
/// run (published) and a failing `fail` run (not published) both append, into the day's
/// partition. DuckDB reads the registered version's Parquet files (Hive partitioning) and
/// must find exactly those rows; `sluice query` answers over the same table.
#[test]
fn rule_outcomes_are_appended_to_the_quality_results_table() {
    let f = fixture();
    let lake = PathBuf::from(&f.lake);
    assert!(catalog_entry(&lake, "sluice_quality", "results").is_none());
    let warned = job(
        &f,
        "warned",
        "warn",
        &["RowCount = 5", "IsComplete \"name\""],
    );
    let out = run(&f, &warned).expect_ok();
    assert!(
        out.stdout
            .contains("outcomes appended to sluice_quality.results"),
        "{}",
        out.stdout
    );
    let strict = job(&f, "strict", "fail", &["IsUnique \"id\""]);
    let out = run(&f, &strict).expect_failure();
    assert!(
        out.stderr
            .contains("the outcomes are in sluice_quality.results"),
        "{}",
        out.stderr
    );

    let entry = catalog_entry(&lake, "sluice_quality", "results").expect("registered");
    assert_eq!(entry["partition_keys"][0]["name"], "day", "{entry}");
    let day = chrono_free_utc_day();
    assert_eq!(
        entry["partitions"][0]["values"][0].as_str(),
        Some(day.as_str()),
        "{entry}"
    );
    assert_eq!(entry["parameters"]["recordCount"], "3", "{entry}");
    let dir = table_dir(&lake, "sluice_quality", "results");
    let rows = oracle_query(
        &format!(
            "SELECT job, target_database || '.' || target_table, rule, outcome, \
             failure_reason IS NOT NULL, metrics, published, day \
             FROM read_parquet('{}/**/*.parquet', hive_partitioning = true) \
             ORDER BY job DESC, rule",
            dir.display()
        ),
        &[],
    );
    let text = |row: &[Option<String>]| -> Vec<String> {
        row.iter().map(|v| v.clone().unwrap_or_default()).collect()
    };
    let rows: Vec<Vec<String>> = rows.iter().map(|r| text(r)).collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        rows[0][..5],
        ["warned", "q.items", "IsComplete \"name\"", "FAILED", "True"],
        "{rows:?}"
    );
    assert_eq!(
        rows[1],
        [
            "warned",
            "q.items",
            "RowCount = 5",
            "PASSED",
            "False",
            "{\"Dataset.*.RowCount\":5.0}",
            "True",
            day.as_str()
        ],
        "{rows:?}"
    );
    assert_eq!(
        rows[2][..5],
        ["strict", "q.items", "IsUnique \"id\"", "FAILED", "True"],
        "{rows:?}"
    );
    assert_eq!(rows[2][6], "False", "the failing run published nothing");
    // The run ids recorded are the runs' own.
    let run_ids = oracle_query(
        &format!(
            "SELECT count(DISTINCT run_id) FROM read_parquet('{}/**/*.parquet')",
            dir.display()
        ),
        &[],
    );
    assert_eq!(run_ids[0][0].as_deref(), Some("2"));

    // Queryable like any catalog table.
    let out = sluice(
        &[
            "query",
            "--lake",
            &f.lake,
            "SELECT outcome, count(*) AS n FROM sluice_quality.results GROUP BY outcome ORDER BY outcome",
            "--format",
            "csv",
        ],
        &[],
    )
    .expect_ok();
    assert!(out.stdout.contains("FAILED,2"), "{}", out.stdout);
    assert!(out.stdout.contains("PASSED,1"), "{}", out.stdout);
}

/// Today's date in UTC as `YYYY-MM-DD`, from DuckDB (the test does not link chrono).
fn chrono_free_utc_day() -> String {
    let rows = oracle_query(
        "SELECT strftime(current_timestamp AT TIME ZONE 'UTC', '%Y-%m-%d')",
        &[],
    );
    rows[0][0].clone().expect("a date")
}
