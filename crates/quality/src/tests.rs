use std::collections::BTreeMap;

use super::*;

fn one(text: &str) -> Rule {
    let set = parse(&format!("Rules = [ {text} ]")).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(set.rules.len(), 1, "{text}");
    match &set.rules[0] {
        TopRule::Rule(r) => r.clone(),
        other => panic!("{text}: not a single rule: {other:?}"),
    }
}

fn err(text: &str) -> ParseError {
    match parse(text) {
        Ok(r) => panic!("{text} parsed: {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_rule_type_parses() {
    let cases = [
        ("RowCount > 1000", RuleType::RowCount),
        ("RowCount between 10 and 20", RuleType::RowCount),
        ("ColumnCount = 5", RuleType::ColumnCount),
        ("IsComplete \"track_id\"", RuleType::IsComplete),
        ("Completeness \"a\" >= 0.95", RuleType::Completeness),
        ("IsUnique \"id\"", RuleType::IsUnique),
        ("Uniqueness \"id\" > 0.5", RuleType::Uniqueness),
        ("IsPrimaryKey \"a\" \"b\"", RuleType::IsPrimaryKey),
        (
            "ColumnValues \"t\" in [\"album\", \"single\", NULL]",
            RuleType::ColumnValues,
        ),
        ("ColumnValues \"x\" between 1 and 5", RuleType::ColumnValues),
        ("ColumnValues \"x\" not in [1, 2]", RuleType::ColumnValues),
        ("ColumnValues \"x\" <= -2.5", RuleType::ColumnValues),
        (
            "ColumnValues \"x\" matches \"[a-z]+\"",
            RuleType::ColumnValues,
        ),
        (
            "ColumnValues \"x\" in [\"a\"] with threshold > 0.9",
            RuleType::ColumnValues,
        ),
        (
            "ColumnValues \"d\" > (now() - 3 days)",
            RuleType::ColumnValues,
        ),
        (
            "ColumnLength \"n\" between 1 and 10",
            RuleType::ColumnLength,
        ),
        ("Mean \"p\" > 10", RuleType::Mean),
        ("Sum \"p\" < 100", RuleType::Sum),
        ("StandardDeviation \"p\" < 3.5", RuleType::StandardDeviation),
        (
            "DistinctValuesCount \"g\" >= 3",
            RuleType::DistinctValuesCount,
        ),
        ("ColumnExists \"g\"", RuleType::ColumnExists),
        (
            "CustomSql \"select count(*) from primary\" > 0",
            RuleType::CustomSql,
        ),
        (
            "ReferentialIntegrity \"artist_id\" \"spotify.artists.id\" = 1.0",
            RuleType::ReferentialIntegrity,
        ),
        ("DataFreshness \"ts\" <= 24 hours", RuleType::DataFreshness),
    ];
    for (text, kind) in cases {
        assert_eq!(one(text).kind, kind, "{text}");
    }
}

#[test]
fn parts_of_a_rule() {
    let r = one("ColumnValues \"a \\\"b\\\"\" in [\"x\", EMPTY] with threshold >= 0.9");
    assert_eq!(r.params, vec!["a \"b\"".to_string()]);
    assert_eq!(
        r.condition,
        Some(Condition::In {
            negated: false,
            values: vec![Value::Str("x".into()), Value::Empty]
        })
    );
    assert!(r.threshold.is_some());
    assert_eq!(
        r.text,
        "ColumnValues \"a \\\"b\\\"\" in [\"x\", EMPTY] with threshold >= 0.9"
    );
}

#[test]
fn composites_and_comments() {
    let set = parse(
        "# checks\nRules = [\n  (IsComplete \"a\") and (IsUnique \"a\"),\n  (RowCount > 1) or (RowCount = 0) and ColumnCount = 2,\n  RowCount > 0, # trailing\n]",
    )
    .unwrap();
    assert_eq!(set.rules.len(), 3);
    assert!(matches!(&set.rules[0], TopRule::And(p, _) if p.len() == 2));
    match &set.rules[1] {
        TopRule::Or(p, _) => assert!(matches!(&p[1], TopRule::And(q, _) if q.len() == 2)),
        other => panic!("{other:?}"),
    }
    assert!(parse("Rules = [ ]").unwrap().rules.is_empty());
}

#[test]
fn errors_have_line_and_column() {
    let e = err("Rules = [\n  RowCount > 1,\n  IsComplet \"a\"\n]");
    assert_eq!((e.line, e.column), (3, 3), "{e}");
    assert!(e.message.contains("did you mean IsComplete?"), "{e}");

    let e = err("Rules = [\n  RowCount >\n]");
    assert_eq!((e.line, e.column), (3, 1), "{e}");
    assert!(e.message.contains("expected"), "{e}");

    let e = err("Rules = [ IsComplete \"a\" > 3 ]");
    assert!(e.message.contains("takes no condition"), "{e}");
    let e = err("Rules = [ Mean \"a\" ]");
    assert!(e.message.contains("needs a condition"), "{e}");
    let e = err("Rules = [ Mean \"a\" > \"x\" ]");
    assert!(e.message.contains("numbers"), "{e}");
    let e = err("Rules = [ RowCount > 1 with threshold > 0.5 ]");
    assert!(e.message.contains("threshold"), "{e}");
    let e = err("Rules = [ ReferentialIntegrity \"a\" \"b.c\" = 1 ]");
    assert!(e.message.contains("database.table.column"), "{e}");
    let e = err("Rules = [ DataFreshness \"a\" > 3 ]");
    assert!(e.message.contains("duration"), "{e}");
    let e = err("Rules = [ RowCount > 1");
    assert_eq!(e.line, 1);
    let e = err("Rulez = [ ]");
    assert_eq!((e.line, e.column), (1, 1));
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn one_aggregate_pass_for_column_metrics() {
    let set = parse(
        "Rules = [ RowCount > 1, IsComplete \"a\", Completeness \"a\" > 0.5, Mean \"b\" > 1, \
         Sum \"b\" > 1, StandardDeviation \"b\" < 9, DistinctValuesCount \"a\" = 2, \
         ColumnValues \"a\" in [\"x\"], ColumnLength \"a\" < 4, IsUnique \"a\" ]",
    )
    .unwrap();
    let plan = Plan::new(&set, &cols(&["a", "b"]));
    // Completeness "a" is measured once for both rules.
    let sql = plan.aggregate_sql();
    assert_eq!(
        sql.matches("COALESCE(CAST(COUNT(\"a\")").count(),
        1,
        "{sql}"
    );
    // DistinctValuesCount and IsUnique's shortcut share one distinct count.
    assert_eq!(sql.matches("COUNT(DISTINCT \"a\")").count(), 1, "{sql}");
    assert!(sql.contains("STDDEV_POP"), "{sql}");
    // Only the uniqueness needs its own query.
    assert_eq!(plan.queries.len(), 1);
}

/// Each distinct count is a one-row subquery of its own (so that DataFusion can run it as a
/// parallel grouping); the outer select keeps the keys' order.
#[test]
fn distinct_counts_get_subqueries_of_their_own() {
    let set = parse(
        "Rules = [ RowCount > 1, DistinctValuesCount \"a\" > 1, DistinctValuesCount \"b\" > 1 ]",
    )
    .unwrap();
    let plan = Plan::new(&set, &cols(&["a", "b"]));
    let sql = plan.aggregate_sql();
    assert_eq!(sql.matches(" CROSS JOIN ").count(), 2, "{sql}");
    for col in ["a", "b"] {
        let sub = format!("(SELECT CAST(COUNT(DISTINCT \"{col}\") AS DOUBLE) AS ");
        assert_eq!(sql.matches(&sub).count(), 1, "{sql}");
    }
    let keys: Vec<String> = plan.aggregate_keys().iter().map(|k| ident(k)).collect();
    assert!(
        sql.starts_with(&format!("SELECT {} FROM (", keys.join(", "))),
        "{sql}"
    );
    // The same subqueries as parts that run apart, holding every key once.
    let parts = plan.aggregate_parts();
    assert_eq!(parts.len(), 3);
    for (_, part) in &parts {
        assert!(
            sql.contains(&format!("({part}) AS ")),
            "{part} not in {sql}"
        );
    }
    let mut part_keys: Vec<String> = parts.into_iter().flat_map(|(k, _)| k).collect();
    part_keys.sort();
    let mut all = plan.aggregate_keys();
    all.sort();
    assert_eq!(part_keys, all);
    // One distinct count beside the plain aggregates is split off too (DataFusion keeps a
    // list-shaped state for it otherwise); without one the aggregate stays plain.
    let one = Plan::new(
        &parse("Rules = [ DistinctValuesCount \"a\" > 1 ]").unwrap(),
        &cols(&["a"]),
    );
    assert_eq!(one.aggregate_sql().matches(" CROSS JOIN ").count(), 1);
    let none = Plan::new(&parse("Rules = [ RowCount > 1 ]").unwrap(), &cols(&["a"]));
    // A value set holding the words is a plain aggregate, not a distinct count.
    let literal = Plan::new(
        &parse("Rules = [ ColumnValues \"a\" in [\"CAST(COUNT(DISTINCT a\"] ]").unwrap(),
        &cols(&["a"]),
    );
    assert!(
        !literal.aggregate_sql().contains("CROSS JOIN"),
        "{}",
        literal.aggregate_sql()
    );
    assert!(
        !none.aggregate_sql().contains("CROSS JOIN"),
        "{}",
        none.aggregate_sql()
    );
}

/// A one-column uniqueness query is answered by the aggregate's counts when every non-null
/// value is distinct, and runs when a value repeats (or a count is missing); a several-column
/// one always runs.
#[test]
fn uniqueness_runs_only_when_a_value_repeats() {
    let set = parse("Rules = [ IsUnique \"a\", IsPrimaryKey \"a\" \"b\" ]").unwrap();
    let plan = Plan::new(&set, &cols(&["a", "b"]));
    assert_eq!(plan.queries.len(), 2);
    let single = &plan.queries[0];
    let shortcut = single.shortcut.clone().expect("one column has a shortcut");
    assert!(plan.queries[1].shortcut.is_none());
    let measured = |distinct: Option<f64>, non_null: Option<f64>| {
        let mut m = Measured::default();
        m.values.insert(plan.aggregate_keys()[0].clone(), Some(5.0));
        m.values.insert(shortcut.distinct.clone(), distinct);
        m.values.insert(shortcut.non_null.clone(), non_null);
        m
    };
    // Four non-null values, all distinct, among five rows: 4 unique.
    let m = measured(Some(4.0), Some(4.0));
    assert_eq!(
        plan.answer_from_aggregate(single, &m),
        Some(vec![Some(4.0)])
    );
    let mut judged = m.clone();
    judged.values.insert(single.keys[0].clone(), Some(4.0));
    assert_eq!(plan.judge(&judged)[0].metrics["Column.a.Uniqueness"], 0.8);
    // A repeated value: the grouping query must count.
    assert_eq!(
        plan.answer_from_aggregate(single, &measured(Some(3.0), Some(4.0))),
        None
    );
    assert_eq!(
        plan.answer_from_aggregate(single, &measured(None, Some(4.0))),
        None
    );
    assert_eq!(plan.answer_from_aggregate(&plan.queries[1], &m), None);
    // The aggregate computes both counts.
    let sql = plan.aggregate_sql();
    assert!(
        sql.contains("CAST(COUNT(DISTINCT \"a\") AS DOUBLE)"),
        "{sql}"
    );
    assert!(sql.contains("CAST(COUNT(\"a\") AS DOUBLE)"), "{sql}");
}

#[test]
fn identifiers_and_literals_are_quoted() {
    assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    assert_eq!(literal("it's"), "'it''s'");
    let set = parse("Rules = [ ColumnValues \"we\\\"ird\" in [\"o'k\"] ]").unwrap();
    let plan = Plan::new(&set, &cols(&["we\"ird"]));
    let sql = plan.aggregate_sql();
    assert!(sql.contains("\"we\"\"ird\" IN ('o''k')"), "{sql}");
}

#[test]
fn judging() {
    let set = parse(
        "Rules = [ RowCount > 2, IsComplete \"a\", (RowCount > 100) or (ColumnCount = 2), \
         Mean \"b\" > 1, Mean \"nope\" > 1, ColumnExists \"zz\", IsUnique \"a\" ]",
    )
    .unwrap();
    let plan = Plan::new(&set, &cols(&["a", "b"]));
    let keys = plan.aggregate_keys();
    let mut m = Measured::default();
    // m0 row count, then completeness of a, then mean of b.
    m.values.insert(keys[0].clone(), Some(3.0));
    m.values.insert(keys[1].clone(), Some(2.0 / 3.0));
    m.values.insert(keys[2].clone(), None);
    m.values.insert(plan.queries[0].keys[0].clone(), Some(3.0));
    let out = plan.judge(&m);
    let status: Vec<Status> = out.iter().map(|o| o.status).collect();
    assert_eq!(
        status,
        vec![
            Status::Passed,
            Status::Failed,
            Status::Passed,
            Status::Failed,
            Status::Error,
            Status::Failed,
            Status::Passed
        ],
        "{out:#?}"
    );
    assert_eq!(
        out[0].metrics,
        BTreeMap::from([("Dataset.*.RowCount".to_string(), 3.0)])
    );
    assert!(
        out[1].reason.contains("Column.a.Completeness"),
        "{}",
        out[1].reason
    );
    assert!(out[4].reason.contains("'nope'"), "{}", out[4].reason);
    assert_eq!(out[6].metrics["Column.a.Uniqueness"], 1.0);
}

#[test]
fn thresholds_and_between() {
    let between = Condition::Between {
        negated: false,
        low: Value::Number(1.0),
        high: Value::Number(3.0),
    };
    assert!(holds(&between, 2.0));
    assert!(!holds(&between, 3.0));
    let p = predicate(
        "\"x\"",
        &Condition::In {
            negated: false,
            values: vec![Value::Null, Value::Number(1.0)],
        },
    );
    assert_eq!(p, "(\"x\" IN (1) OR \"x\" IS NULL)");
}

/// With [`Options::hash64`], a one-column uniqueness shortcut counts distinct hashes in a
/// subquery of its own; when the plan measures the column's exact distinct count anyway
/// (`DistinctValuesCount`, before or after the uniqueness rule) the shortcut uses that and no
/// hash is counted. Without the option the count is exact.
#[test]
fn uniqueness_shortcut_counts_hashes_when_the_session_can() {
    let hashed = Options { hash64: true };
    let plan = Plan::with_options(
        &parse("Rules = [ IsUnique \"a\", RowCount > 1 ]").unwrap(),
        &cols(&["a"]),
        hashed,
    );
    let sql = plan.aggregate_sql();
    let hash_count = format!("(SELECT CAST(COUNT(DISTINCT {HASH64}(\"a\")) AS DOUBLE) AS ");
    assert_eq!(sql.matches(&hash_count).count(), 1, "{sql}");
    assert!(!sql.contains("COUNT(DISTINCT \"a\")"), "{sql}");
    let shortcut = plan.queries[0].shortcut.clone().expect("a shortcut");
    assert!(plan.aggregate_keys().contains(&shortcut.distinct));
    assert!(plan.aggregate_keys().contains(&shortcut.non_null));

    for rules in [
        "Rules = [ IsUnique \"a\", DistinctValuesCount \"a\" > 1 ]",
        "Rules = [ DistinctValuesCount \"a\" > 1, IsUnique \"a\" ]",
        "Rules = [ IsUnique \"a\", (RowCount > 1) or (DistinctValuesCount \"a\" > 1) ]",
    ] {
        let plan = Plan::with_options(&parse(rules).unwrap(), &cols(&["a"]), hashed);
        let sql = plan.aggregate_sql();
        assert!(!sql.contains(HASH64), "{rules}: {sql}");
        assert_eq!(sql.matches("COUNT(DISTINCT \"a\")").count(), 1, "{sql}");
        let shortcut = plan.queries[0].shortcut.clone().expect("a shortcut");
        assert!(
            plan.aggregate_keys().contains(&shortcut.distinct),
            "{rules}"
        );
        // The judged metric is still the exact distinct count.
        let mut m = Measured::default();
        for k in plan.aggregate_keys() {
            m.values.insert(k, Some(4.0));
        }
        m.values.insert(plan.queries[0].keys[0].clone(), Some(4.0));
        let out = plan.judge(&m);
        assert!(
            out.iter()
                .any(|o| o.metrics.get("Column.a.DistinctValuesCount") == Some(&4.0)),
            "{out:?}"
        );
    }

    let exact = Plan::new(&parse("Rules = [ IsUnique \"a\" ]").unwrap(), &cols(&["a"]));
    assert!(!exact.aggregate_sql().contains(HASH64));
}
