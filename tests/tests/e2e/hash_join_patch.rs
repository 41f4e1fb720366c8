//! The patched hash join (`vendor/datafusion-physical-plan`, see `vendor/README.md`) against
//! a nested-loop join written here: every join type the job format offers, with and without
//! a join filter, on random data shaped to reach each of the patch's three paths (every probe
//! row matched once, some unmatched, some matched more than once), over several batches.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use proptest::prelude::*;

type Row = (Option<i64>, i64);

fn table(rows: &[Row], batch: usize) -> MemTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, false),
    ]));
    let batches: Vec<RecordBatch> = rows
        .chunks(batch.max(1))
        .map(|chunk| {
            let k: Int64Array = chunk.iter().map(|r| r.0).collect();
            let v: Int64Array = chunk.iter().map(|r| Some(r.1)).collect();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(v)]).expect("batch")
        })
        .collect();
    MemTable::try_new(schema, vec![batches]).expect("table")
}

/// One output row as text, `NULL` for nulls.
fn cell(a: &dyn Array, i: usize) -> String {
    let a = a.as_any().downcast_ref::<Int64Array>().expect("int64");
    if a.is_null(i) {
        "NULL".into()
    } else {
        a.value(i).to_string()
    }
}

/// The join by nested loops over the rows of equal keys (an index of each side by key stands
/// in for the inner loop): a multiset of output rows (as text), counted.
fn expected(kind: &str, l: &[Row], r: &[Row], filtered: bool) -> BTreeMap<Vec<String>, usize> {
    let on = |a: &Row, b: &Row| a.0.is_some() && a.0 == b.0 && (!filtered || a.1 < b.1);
    // Row positions by key: a row can only meet rows of its own (non-null) key.
    let index = |rows: &[Row]| {
        let mut by_key: HashMap<i64, Vec<usize>> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            if let Some(k) = row.0 {
                by_key.entry(k).or_default().push(i);
            }
        }
        by_key
    };
    let (l_by_key, r_by_key) = (index(l), index(r));
    let none = Vec::new();
    let same_key = |by_key: &'_ HashMap<i64, Vec<usize>>, row: &Row| -> Vec<usize> {
        row.0.and_then(|k| by_key.get(&k)).unwrap_or(&none).clone()
    };
    let show = |x: Option<&Row>| match x {
        Some((k, v)) => vec![k.map_or("NULL".into(), |k| k.to_string()), v.to_string()],
        None => vec!["NULL".into(), "NULL".into()],
    };
    let mut out = BTreeMap::new();
    let mut add = |row: Vec<String>| *out.entry(row).or_insert(0) += 1;
    match kind {
        "INNER JOIN" | "LEFT JOIN" | "RIGHT JOIN" | "FULL JOIN" => {
            let mut right_matched = vec![false; r.len()];
            for a in l {
                let mut any = false;
                for j in same_key(&r_by_key, a) {
                    let b = &r[j];
                    if on(a, b) {
                        any = true;
                        right_matched[j] = true;
                        add([show(Some(a)), show(Some(b))].concat());
                    }
                }
                if !any && (kind == "LEFT JOIN" || kind == "FULL JOIN") {
                    add([show(Some(a)), show(None)].concat());
                }
            }
            if kind == "RIGHT JOIN" || kind == "FULL JOIN" {
                for (j, b) in r.iter().enumerate() {
                    if !right_matched[j] {
                        add([show(None), show(Some(b))].concat());
                    }
                }
            }
        }
        "LEFT SEMI JOIN" | "LEFT ANTI JOIN" => {
            for a in l {
                let any = same_key(&r_by_key, a).into_iter().any(|j| on(a, &r[j]));
                if any == (kind == "LEFT SEMI JOIN") {
                    add(show(Some(a)));
                }
            }
        }
        "RIGHT SEMI JOIN" | "RIGHT ANTI JOIN" => {
            for b in r {
                let any = same_key(&l_by_key, b).into_iter().any(|i| on(&l[i], b));
                if any == (kind == "RIGHT SEMI JOIN") {
                    add(show(Some(b)));
                }
            }
        }
        other => panic!("unknown join {other}"),
    }
    out
}

/// The join run by DataFusion in batches of `batch` rows; with `collect_left`, as one hash
/// table built from the whole build side (asserted in the plan), however large.
async fn actual(
    kind: &str,
    l: &[Row],
    r: &[Row],
    filtered: bool,
    batch: usize,
) -> BTreeMap<Vec<String>, usize> {
    run_join(kind, l, r, filtered, batch, false).await
}

async fn run_join(
    kind: &str,
    l: &[Row],
    r: &[Row],
    filtered: bool,
    batch: usize,
    collect_left: bool,
) -> BTreeMap<Vec<String>, usize> {
    let mut config = SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(batch.max(1));
    config.options_mut().optimizer.prefer_hash_join = true;
    if collect_left {
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.hash_join_single_partition_threshold = usize::MAX;
        optimizer.hash_join_single_partition_threshold_rows = usize::MAX;
    }
    let ctx = SessionContext::new_with_config(config);
    ctx.register_table("l", Arc::new(table(l, batch)))
        .expect("l");
    ctx.register_table("r", Arc::new(table(r, batch)))
        .expect("r");
    let filter = if filtered { " AND l.v < r.v" } else { "" };
    let columns = match kind {
        "LEFT SEMI JOIN" | "LEFT ANTI JOIN" => "l.k, l.v",
        "RIGHT SEMI JOIN" | "RIGHT ANTI JOIN" => "r.k, r.v",
        _ => "l.k, l.v, r.k, r.v",
    };
    let sql = format!("SELECT {columns} FROM l {kind} r ON l.k = r.k{filter}");
    let df = ctx.sql(&sql).await.expect("plan");
    let plan = format!(
        "{}",
        datafusion::physical_plan::displayable(
            df.clone()
                .create_physical_plan()
                .await
                .expect("physical")
                .as_ref()
        )
        .indent(false)
    );
    assert!(
        plan.contains("HashJoinExec"),
        "{sql} is not a hash join:\n{plan}"
    );
    assert!(
        !collect_left || plan.contains("mode=CollectLeft"),
        "{sql} does not build one hash table:\n{plan}"
    );
    let mut out = BTreeMap::new();
    for b in df.collect().await.expect("run") {
        for i in 0..b.num_rows() {
            let row = (0..b.num_columns()).map(|c| cell(b.column(c), i)).collect();
            *out.entry(row).or_insert(0) += 1;
        }
    }
    out
}

/// Rows whose keys come from `0..keys` (or NULL one time in `nulls`).
fn rows(max: usize, keys: i64) -> impl Strategy<Value = Vec<Row>> {
    proptest::collection::vec(
        (proptest::option::weighted(0.9, 0..keys), -50i64..50),
        0..max,
    )
}

const KINDS: [&str; 8] = [
    "INNER JOIN",
    "LEFT JOIN",
    "RIGHT JOIN",
    "FULL JOIN",
    "LEFT SEMI JOIN",
    "LEFT ANTI JOIN",
    "RIGHT SEMI JOIN",
    "RIGHT ANTI JOIN",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_join_type_equals_a_nested_loop_join(
        l in rows(40, 30),
        r in rows(60, 30),
        filtered in any::<bool>(),
        batch in 1usize..16,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        for kind in KINDS {
            let got = runtime.block_on(actual(kind, &l, &r, filtered, batch));
            prop_assert_eq!(got, expected(kind, &l, &r, filtered), "{} filtered={}", kind, filtered);
        }
    }
}

/// A 1:1 lookup (each probe row matches exactly one build row: the patch's no-copy path) and
/// a sparse one (a filter path), checked the same way.
#[tokio::test(flavor = "multi_thread")]
async fn lookups_take_the_patched_paths_and_stay_exact() {
    let build: Vec<Row> = (0..100).map(|k| (Some(k), k % 7)).collect();
    let all: Vec<Row> = (0..300).map(|i| (Some(i % 100), i)).collect();
    let sparse: Vec<Row> = (0..300).map(|i| (Some(i % 250), i)).collect();
    for probe in [&all, &sparse] {
        for kind in KINDS {
            for filtered in [false, true] {
                assert_eq!(
                    actual(kind, &build, probe, filtered, 64).await,
                    expected(kind, &build, probe, filtered),
                    "{kind} filtered={filtered}"
                );
            }
        }
    }
}

/// Build sides of 65,536 rows or more fill the hash table while a second thread merges their
/// batches (the patch's `PARALLEL_BUILD_MIN_ROWS`): 80,000 rows on each side, in batches of
/// 1,000, with duplicate and NULL keys, one hash table for the whole build side, every join
/// type with and without a filter.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_build_side_builds_on_two_threads_and_stays_exact() {
    // A fixed pseudo-random sequence (xorshift): keys from 0..60,000, one in 50 NULL.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut side = |n: usize| -> Vec<Row> {
        (0..n)
            .map(|_| {
                let r = next();
                let key = (r % 50 != 0).then_some(((r >> 8) % 60_000) as i64);
                (key, ((r >> 40) % 100) as i64 - 50)
            })
            .collect()
    };
    let (l, r) = (side(80_000), side(80_000));
    for kind in KINDS {
        for filtered in [false, true] {
            assert_eq!(
                run_join(kind, &l, &r, filtered, 1_000, true).await,
                expected(kind, &l, &r, filtered),
                "{kind} filtered={filtered}"
            );
        }
    }
}
