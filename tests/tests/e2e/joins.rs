//! Every join type a job file offers, run embedded and checked row by row against DuckDB
//! computing the same join over the same CSV files (`tests/oracle.py sql`).
//!
//! The inputs are made so that each type's semantics show: keys matched once, keys repeated
//! on both sides (2 x 2 rows), NULL keys on both sides (never equal), keys only on the left,
//! keys only on the right, and a left row present twice (results are multisets).

use std::path::Path;

use crate::support::*;

const LEFT: &str = "id,k,lv\n1,a,10\n2,b,20\n3,b,21\n3,b,21\n4,,40\n5,c,50\n";
const RIGHT: &str = "rid,k,rv\n11,b,200\n12,b,201\n13,a,100\n14,,400\n15,d,500\n";

/// (job file type, DuckDB query giving the rows the table must hold). After
/// `drop_duplicate_fields` the key `k` is kept once: the left copy, or for right and full
/// joins the first non-NULL of both (README, "Job files").
const CASES: &[(&str, &str)] = &[
    (
        "inner",
        "SELECT l.id, l.k, l.lv, r.rid, r.rv FROM l JOIN r ON l.k = r.k",
    ),
    (
        "left",
        "SELECT l.id, l.k, l.lv, r.rid, r.rv FROM l LEFT JOIN r ON l.k = r.k",
    ),
    (
        "right",
        "SELECT l.id, coalesce(l.k, r.k) AS k, l.lv, r.rid, r.rv FROM l RIGHT JOIN r ON l.k = r.k",
    ),
    (
        "full",
        "SELECT l.id, coalesce(l.k, r.k) AS k, l.lv, r.rid, r.rv FROM l FULL JOIN r ON l.k = r.k",
    ),
    (
        "semi",
        "SELECT * FROM l WHERE EXISTS (SELECT 1 FROM r WHERE r.k = l.k)",
    ),
    (
        "anti",
        "SELECT * FROM l WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.k = l.k)",
    ),
];

/// Rows DuckDB finds for each type: a check that the inputs make the types differ.
const EXPECTED_ROWS: &[(&str, u64)] = &[
    ("inner", 7),
    ("left", 9),
    ("right", 9),
    ("full", 11),
    ("semi", 4),
    ("anti", 2),
];

fn write_job(dir: &Path, join_type: &str) -> std::path::PathBuf {
    let job = dir.join(format!("join-{join_type}.yaml"));
    std::fs::write(
        &job,
        format!(
            r#"
name: join-{join_type}
staging: {staging}
sources:
  l: {{ path: left.csv }}
  r: {{ path: right.csv }}
transforms:
  - join: {{ name: joined, left: l, right: r, type: {join_type}, on: [{{ left: k, right: k }}] }}
  - drop_duplicate_fields: {{ name: out, input: joined }}
target:
  input: out
  table: {{ database: joins, name: j_{join_type} }}
"#,
            staging = dir.display()
        ),
    )
    .expect("write job");
    job
}

#[test]
fn every_join_type_matches_duckdb_row_for_row() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::write(dir.join("left.csv"), LEFT).expect("write");
    std::fs::write(dir.join("right.csv"), RIGHT).expect("write");
    let lake = dir.join("lake");
    let (left, right) = (dir.join("left.csv"), dir.join("right.csv"));
    let csvs = [("l", left.as_path()), ("r", right.as_path())];
    // The runs are small and independent: run them side by side.
    std::thread::scope(|s| {
        for (join_type, _) in CASES {
            let job = write_job(dir, join_type);
            let lake = lake.clone();
            s.spawn(move || {
                let lake = lake.join(join_type);
                sluice(
                    &[
                        "run",
                        job.to_str().expect("utf-8"),
                        "--lake",
                        lake.to_str().expect("utf-8"),
                    ],
                    &[],
                )
                .expect_ok();
            });
        }
    });
    for (join_type, sql) in CASES {
        let table = format!("j_{join_type}");
        let rows = assert_sql_oracle(
            &table_dir(&lake.join(join_type), "joins", &table),
            sql,
            &csvs,
        );
        let expected = EXPECTED_ROWS
            .iter()
            .find(|(t, _)| t == join_type)
            .map(|(_, n)| *n);
        assert_eq!(Some(rows), expected, "{join_type} join rows");
    }
}
