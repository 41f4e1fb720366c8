//! The patched hash join (`vendor/datafusion-physical-plan`, see `vendor/README.md`) against
//! a nested-loop join written here: every join type the job format offers, with and without
//! a join filter, on random data shaped to reach each of the patch's three paths (every probe
//! row matched once, some unmatched, some matched more than once), over several batches.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::physical_plan::joins::compact_join_hash_map::CompactJoinHashMap;
use datafusion::physical_plan::joins::join_hash_map::{JoinHashMapType, JoinHashMapU32};
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

/// The physical plan of `df`, as text.
async fn plan_text(df: &DataFrame) -> String {
    let plan = df.clone().create_physical_plan().await.expect("physical");
    format!(
        "{}",
        datafusion::physical_plan::displayable(plan.as_ref()).indent(false)
    )
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
    let plan = plan_text(&df).await;
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

/// The build side's value of column `column` for key `k` in
/// `a_large_build_side_of_many_types_merges_column_by_column`: NULLs and empty strings on
/// some keys, so validity and empty values cross the merged batches.
fn build_value(column: &str, k: i64) -> String {
    match column {
        "s" if k % 7 == 0 => "NULL".into(),
        "s" if k % 11 == 0 => String::new(),
        "s" => format!("s{k}é"),
        "b" if k % 13 == 0 => "NULL".into(),
        "b" => (k % 3 == 0).to_string(),
        "t" => format!("{}", k * 1_000),
        "bin" if k % 5 == 0 => "NULL".into(),
        "bin" => format!("{:?}", k.to_le_bytes()),
        "d" => format!("d{}", k % 17),
        _ => unreachable!("no column {column}"),
    }
}

/// Build sides of 65,536 rows or more keyed by plain columns merge column by column, each
/// input array freed once copied, while the hash table is filled (the patch's
/// `fill_and_merge_by_column`; the table is the compact one of `compact_join_hash_map`). 70,000
/// build rows of string, boolean, timestamp (with a time zone), binary and dictionary columns,
/// in batches that are slices of larger ones, joined on an integer key and on a string key:
/// every output row must carry its key's values, and every matchable probe row must appear.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_build_side_of_many_types_merges_column_by_column() {
    use datafusion::arrow::array::{
        BooleanArray, DictionaryArray, LargeBinaryArray, StringArray, TimestampMillisecondArray,
    };
    use datafusion::arrow::datatypes::{Int32Type, TimeUnit};
    use datafusion::arrow::util::display::array_value_to_string;

    let rows = 70_000i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("b", DataType::Boolean, true),
        Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+01:00".into())),
            false,
        ),
        Field::new("bin", DataType::LargeBinary, true),
        Field::new(
            "d",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
    ]));
    let text = |column: &str, k: i64| Some(build_value(column, k)).filter(|v| v != "NULL");
    let mut batches = Vec::new();
    // Seven batches of 10,000 rows, each cut into slices of 1,000 that share its buffers.
    for chunk in 0..7i64 {
        let keys: Vec<i64> = (chunk * 10_000..(chunk + 1) * 10_000).collect();
        let k: Int64Array = keys.iter().map(|&k| (k % 997 != 0).then_some(k)).collect();
        let s: StringArray = keys.iter().map(|&k| text("s", k)).collect();
        let b: BooleanArray = keys
            .iter()
            .map(|&k| text("b", k).map(|v| v == "true"))
            .collect();
        let t =
            TimestampMillisecondArray::from(keys.iter().map(|&k| k * 1_000).collect::<Vec<_>>())
                .with_timezone("+01:00");
        let bin_values: Vec<Option<[u8; 8]>> = keys
            .iter()
            .map(|&k| (k % 5 != 0).then_some(k.to_le_bytes()))
            .collect();
        let bin: LargeBinaryArray = bin_values
            .iter()
            .map(|v| v.as_ref().map(|b| &b[..]))
            .collect();
        let d_values: Vec<String> = keys.iter().map(|&k| format!("d{}", k % 17)).collect();
        let d: DictionaryArray<Int32Type> = d_values.iter().map(String::as_str).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(k),
                Arc::new(s),
                Arc::new(b),
                Arc::new(t),
                Arc::new(bin),
                Arc::new(d),
            ],
        )
        .expect("batch");
        for slice in 0..10 {
            batches.push(batch.slice(slice * 1_000, 1_000));
        }
    }
    let build = MemTable::try_new(schema, vec![batches]).expect("build table");

    // Probe rows: every key once, in a different order, plus keys no build row has.
    let probe_keys: Vec<i64> = (0..rows + 500)
        .map(|i| (i * 7_919) % (rows + 500))
        .collect();
    let probe_schema = Arc::new(Schema::new(vec![
        Field::new("pk", DataType::Int64, false),
        Field::new("ps", DataType::Utf8, true),
    ]));
    let probe_batches: Vec<RecordBatch> = probe_keys
        .chunks(4_096)
        .map(|chunk| {
            let pk = Int64Array::from(chunk.to_vec());
            // No empty strings: they would meet every build row's empty string.
            let ps: StringArray = chunk
                .iter()
                .map(|&k| text("s", k).filter(|v| !v.is_empty()))
                .collect();
            RecordBatch::try_new(probe_schema.clone(), vec![Arc::new(pk), Arc::new(ps)])
                .expect("probe batch")
        })
        .collect();
    let probe = MemTable::try_new(probe_schema, vec![probe_batches]).expect("probe table");

    let mut config = SessionConfig::new().with_target_partitions(2);
    config.options_mut().optimizer.prefer_hash_join = true;
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.hash_join_single_partition_threshold = usize::MAX;
    optimizer.hash_join_single_partition_threshold_rows = usize::MAX;
    // l stays the build side, however its size compares with r's.
    optimizer.join_reordering = false;
    let ctx = SessionContext::new_with_config(config);
    ctx.register_table("l", Arc::new(build)).expect("l");
    ctx.register_table("r", Arc::new(probe)).expect("r");

    let columns = ["s", "b", "t", "bin", "d"];
    type Matchable = Box<dyn Fn(i64) -> bool>;
    let by_int: Matchable = Box::new(move |k| k < rows && k % 997 != 0);
    // A string key: every build row's `s{k}é` is its own; NULL and empty ones meet nothing
    // (the probe side has no empty strings).
    let by_string: Matchable = Box::new(move |k| k < rows && k % 7 != 0 && k % 11 != 0);
    for (on, matchable) in [("l.k = r.pk", by_int), ("l.s = r.ps", by_string)] {
        let sql = format!(
            "SELECT r.pk, l.s, l.b, arrow_cast(l.t, 'Int64') AS t, l.bin, \
             arrow_cast(l.d, 'Utf8') AS d FROM l JOIN r ON {on}"
        );
        let df = ctx.sql(&sql).await.expect("plan");
        let plan = plan_text(&df).await;
        let build_key = on.split(' ').next().unwrap_or(on).trim_start_matches("l.");
        assert!(
            plan.contains("HashJoinExec: mode=CollectLeft")
                && plan.contains(&format!("on=[({build_key}@")),
            "{sql} does not build one hash table from l:\n{plan}"
        );
        let mut seen = std::collections::BTreeSet::new();
        for batch in df.collect().await.expect("run") {
            let pk = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("pk");
            for row in 0..batch.num_rows() {
                let k = pk.value(row);
                for (c, column) in columns.iter().enumerate() {
                    let array = batch.column(c + 1);
                    let got = if array.is_null(row) {
                        "NULL".to_string()
                    } else if *column == "bin" {
                        let bin = array
                            .as_any()
                            .downcast_ref::<LargeBinaryArray>()
                            .expect("bin");
                        format!("{:?}", bin.value(row))
                    } else {
                        array_value_to_string(array, row).expect("value")
                    };
                    assert_eq!(
                        got,
                        build_value(column, k),
                        "{on}: key {k}, column {column}"
                    );
                }
                assert!(seen.insert(k), "{on}: key {k} matched twice");
            }
        }
        let want: std::collections::BTreeSet<i64> = probe_keys
            .iter()
            .copied()
            .filter(|&k| matchable(k))
            .collect();
        let missing: Vec<_> = want.difference(&seen).take(5).collect();
        assert!(
            missing.is_empty(),
            "{on}: probe keys without their row: {missing:?}"
        );
        assert_eq!(seen.len(), want.len(), "{on}: rows out");
    }
}

/// Every candidate pair (probe row, build row) the map returns for `probe`, following the
/// hash join's calls: at most `limit` pairs a call, resuming at the offset returned.
fn map_candidates(
    map: &dyn JoinHashMapType,
    probe: &[u64],
    valid: Option<&NullBuffer>,
    limit: usize,
) -> Vec<(u32, u64)> {
    let (mut pairs, mut input, mut matched) = (vec![], vec![], vec![]);
    let mut offset = (0, None);
    loop {
        let next = map.get_matched_indices_with_limit_offset(
            probe,
            valid,
            limit,
            offset,
            &mut input,
            &mut matched,
        );
        assert!(
            input.len() <= limit,
            "{} pairs over the limit of {limit}",
            input.len()
        );
        pairs.extend(input.iter().copied().zip(matched.iter().copied()));
        match next {
            Some(next) => offset = next,
            None => return pairs,
        }
    }
}

/// The compact map and DataFusion's hashbrown map, filled with `hashes` as rows 0.. the way
/// the hash join fills them (last row first).
fn both_maps(hashes: &[u64]) -> (CompactJoinHashMap, JoinHashMapU32) {
    let mut compact = CompactJoinHashMap::with_capacity(hashes.len());
    let mut reference = JoinHashMapU32::with_capacity(hashes.len());
    compact.update_from_iter(Box::new(hashes.iter().enumerate().rev()), 0);
    reference.update_from_iter(Box::new(hashes.iter().enumerate().rev()), 0);
    (compact, reference)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The compact map (`vendor/datafusion-physical-plan`, `compact_join_hash_map.rs`)
    /// returns the same candidates in the same order as DataFusion's `JoinHashMapU32`, for
    /// random hashes with many repeats (chains), unique ones (the one-match path), NULL probe
    /// keys and every limit a batch size gives.
    #[test]
    fn the_compact_join_map_answers_as_datafusions(
        build in proptest::collection::vec(0u64..40, 0..300),
        probe in proptest::collection::vec(0u64..50, 0..200),
        unique in any::<bool>(),
        nulls in proptest::collection::vec(any::<bool>(), 200),
        limit in 1usize..20,
        seed in any::<u64>(),
    ) {
        // Spread the small values over all 64 bits, as real hashes are.
        let spread = |v: u64| (v ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        let build: Vec<u64> = if unique {
            (0..build.len() as u64).map(spread).collect()
        } else {
            build.iter().map(|&v| spread(v)).collect()
        };
        let probe: Vec<u64> = probe.iter().map(|&v| spread(v)).collect();
        let valid = NullBuffer::from(nulls[..probe.len()].to_vec());
        let (compact, reference) = both_maps(&build);
        prop_assert_eq!(compact.len(), reference.len());
        prop_assert_eq!(compact.is_empty(), reference.is_empty());
        for valid in [None, Some(&valid)] {
            prop_assert_eq!(
                map_candidates(&compact, &probe, valid, limit),
                map_candidates(&reference, &probe, valid, limit)
            );
        }
        prop_assert_eq!(compact.contain_hashes(&probe), reference.contain_hashes(&probe));
        prop_assert_eq!(
            compact.get_matched_indices(Box::new(probe.iter().enumerate()), None),
            reference.get_matched_indices(Box::new(probe.iter().enumerate()), None)
        );
    }
}

/// Hashes with the same upper 32 bits meeting on one probe sequence share a chain in the
/// compact map: a lookup returns both rows (the join's key comparison then tells them apart),
/// and a hash with another tag probes past them and finds nothing.
#[test]
fn equal_tags_on_one_probe_sequence_share_a_chain() {
    let a = 0xABCD_0001_0000_0005u64;
    let b = 0xABCD_0001_4000_0005u64;
    let (compact, _) = both_maps(&[a, b]);
    assert_eq!(compact.len(), 1, "one chain for both rows");
    let mut pairs = map_candidates(&compact, &[a], None, 8192);
    pairs.sort_unstable();
    assert_eq!(pairs, vec![(0, 0), (0, 1)]);
    assert!(map_candidates(&compact, &[0x1234_0000_0000_0005], None, 8192).is_empty());
    assert_eq!(
        CompactJoinHashMap::slots_for(20_200_000),
        1 << 25,
        "70% load at most"
    );
}
