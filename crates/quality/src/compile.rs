//! Turning a ruleset into SQL: one aggregate query over the table computes every rule's
//! metrics together; uniqueness, `CustomSql` and `ReferentialIntegrity` get their own
//! queries. [`Plan::judge`] then decides each rule from the measured values.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::*;

/// The SQL name the evaluated table is registered under (DQDL's `CustomSql` calls it
/// `primary`).
pub const TABLE: &str = "primary";

/// Quotes a SQL identifier (`"a""b"` for `a"b`).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A query run apart from the aggregate: its SQL and the metric key of each column of its
/// one result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The SQL.
    pub sql: String,
    /// Metric keys, one per result column.
    pub keys: Vec<String>,
    /// A user's `CustomSql`: its result must be exactly one row with one number.
    pub custom: bool,
    /// Aggregate keys that can answer the query without running it (see
    /// [`Plan::answer_from_aggregate`]).
    pub shortcut: Option<Shortcut>,
}

/// A single column's count of values occurring exactly once is its count of non-null values
/// when every non-null value is distinct: the aggregate pass measures both counts, so the
/// grouping query (a second scan and a shuffle) runs only when some value repeats.
///
/// With [`Options::hash64`] the distinct count is of the values' 64-bit hashes: never more
/// than the values' own distinct count, so equal to the non-null count only when every value
/// is distinct (a collision only sends the rule to its grouping query).
#[derive(Debug, Clone, PartialEq)]
pub struct Shortcut {
    /// Key of `COUNT(DISTINCT col)` (or of its hashes) in the aggregate.
    pub distinct: String,
    /// Key of `COUNT(col)` in the aggregate.
    pub non_null: String,
}

/// A check a rule makes on one measured value.
#[derive(Debug, Clone, PartialEq)]
struct Check {
    key: String,
    /// The name the failure reason uses.
    name: String,
    cond: Condition,
}

/// What one leaf rule reports and checks.
#[derive(Debug, Clone, PartialEq, Default)]
struct Leaf {
    /// (metric name as Glue reports it, metric key).
    reported: Vec<(String, String)>,
    checks: Vec<Check>,
    /// The rule cannot be evaluated (a missing column).
    error: Option<String>,
    /// The rule fails whatever is measured (`ColumnExists` of a missing column).
    failure: Option<String>,
    /// Derived values: key = numerator key / RowCount (uniqueness).
    ratios: Vec<(String, String)>,
}

/// The name of the SQL function [`Options::hash64`] calls: one argument of any type, its
/// 64-bit hash as `UInt64` (NULL for NULL), the same for equal values.
pub const HASH64: &str = "sluice_hash64";

/// What the session that runs a plan offers beyond DataFusion's own SQL.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The session has [`HASH64`]: a uniqueness shortcut counts distinct hashes (a grouping
    /// of integers) instead of distinct values (a grouping of, say, strings), several times
    /// cheaper for long keys.
    pub hash64: bool,
}

/// The compiled ruleset.
#[derive(Debug, Clone)]
pub struct Plan {
    rules: Vec<TopRule>,
    leaves: Vec<Leaf>,
    aggregates: Vec<(String, String)>,
    /// Queries besides the aggregate.
    pub queries: Vec<Query>,
    fixed: BTreeMap<String, f64>,
    options: Options,
    /// Columns with a `DistinctValuesCount` rule: the plan measures their exact distinct
    /// count anyway, so a uniqueness shortcut on one of them shares it instead of counting
    /// hashes.
    exact_distinct: BTreeSet<String>,
}

/// The outcome of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It passed.
    Passed,
    /// The data does not meet it.
    Failed,
    /// It could not be evaluated.
    Error,
}

/// One top-level rule's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The rule as written.
    pub rule: String,
    /// Passed, failed or error.
    pub status: Status,
    /// Why it failed or could not be evaluated; empty when it passed.
    pub reason: String,
    /// The measured values it was judged on.
    pub metrics: BTreeMap<String, f64>,
}

/// Measured values by metric key (`None`: SQL NULL), and errors by key.
#[derive(Debug, Default, Clone)]
pub struct Measured {
    /// Values.
    pub values: BTreeMap<String, Option<f64>>,
    /// Why a key has no value (its query failed).
    pub errors: BTreeMap<String, String>,
}

const ROW_COUNT: &str = "COUNT(*)";

/// Adds the column of every `DistinctValuesCount` rule in `rules` (inside `and`/`or` too).
fn distinct_count_columns(rules: &[TopRule], out: &mut BTreeSet<String>) {
    for r in rules {
        match r {
            TopRule::Rule(rule) if rule.kind == RuleType::DistinctValuesCount => {
                out.extend(rule.params.first().cloned());
            }
            TopRule::Rule(_) => {}
            TopRule::And(parts, _) | TopRule::Or(parts, _) => distinct_count_columns(parts, out),
        }
    }
}

impl Plan {
    /// Compiles `ruleset` for a table with `columns` (its column names, in order).
    pub fn new(ruleset: &Ruleset, columns: &[String]) -> Self {
        Self::with_options(ruleset, columns, Options::default())
    }

    /// Compiles `ruleset` for a table with `columns`, for a session offering `options`.
    pub fn with_options(ruleset: &Ruleset, columns: &[String], options: Options) -> Self {
        let mut plan = Plan {
            rules: ruleset.rules.clone(),
            leaves: Vec::new(),
            aggregates: Vec::new(),
            queries: Vec::new(),
            fixed: BTreeMap::new(),
            options,
            exact_distinct: BTreeSet::new(),
        };
        distinct_count_columns(&ruleset.rules, &mut plan.exact_distinct);
        // The row count is always measured: uniqueness divides by it, and it is the
        // cheapest sign the evaluation ran.
        plan.aggregate(&format!("CAST({ROW_COUNT} AS DOUBLE)"));
        let rules = plan.rules.clone();
        for r in &rules {
            plan.compile_top(r, columns);
        }
        plan
    }

    /// The one aggregate query over [`TABLE`]: its columns are the keys of
    /// [`Plan::aggregate_keys`].
    ///
    /// Each `COUNT(DISTINCT col)` gets a one-row subquery of its own, cross-joined with the
    /// others: DataFusion turns an aggregate whose only distinct is one column into a
    /// grouping that runs in parallel, while an aggregate with several distinct columns
    /// (or a distinct beside plain aggregates) keeps every value in one list-shaped state
    /// merged on a single thread (about 2.6x slower for the example rules at x100).
    pub fn aggregate_sql(&self) -> String {
        let parts = self.aggregate_parts();
        if parts.len() == 1 {
            return parts.into_iter().map(|(_, sql)| sql).collect();
        }
        let from: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(i, (_, sql))| format!("({sql}) AS {}", ident(&format!("s{i}"))))
            .collect();
        let keys: Vec<String> = self.aggregates.iter().map(|(k, _)| ident(k)).collect();
        format!(
            "SELECT {} FROM {}",
            keys.join(", "),
            from.join(" CROSS JOIN ")
        )
    }

    /// The one-row queries [`Plan::aggregate_sql`] joins, each with the metric keys of its
    /// columns: the plain aggregates in one, each distinct count in one of its own. (Running
    /// them apart and at the same time was measured no faster than the join.)
    pub(crate) fn aggregate_parts(&self) -> Vec<(Vec<String>, String)> {
        let select = |aggregates: &[&(String, String)]| {
            let cols: Vec<String> = aggregates
                .iter()
                .map(|(key, expr)| format!("{expr} AS {}", ident(key)))
                .collect();
            let keys = aggregates.iter().map(|(key, _)| key.clone()).collect();
            (
                keys,
                format!("SELECT {} FROM {}", cols.join(", "), ident(TABLE)),
            )
        };
        let (distinct, plain): (Vec<_>, Vec<_>) = self
            .aggregates
            .iter()
            // Distinct counts are the aggregates that start so (a literal inside another
            // aggregate, such as a `ColumnValues` set, cannot).
            .partition(|(_, expr)| expr.starts_with("CAST(COUNT(DISTINCT "));
        if distinct.is_empty() || (distinct.len() == 1 && plain.is_empty()) {
            return vec![select(&self.aggregates.iter().collect::<Vec<_>>())];
        }
        let mut parts = Vec::new();
        if !plain.is_empty() {
            parts.push(select(&plain));
        }
        parts.extend(distinct.iter().map(|d| select(&[*d])));
        parts
    }

    /// The metric keys of the aggregate query's columns, in order.
    pub fn aggregate_keys(&self) -> Vec<String> {
        self.aggregates.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The key of an aggregate expression, adding it once.
    fn aggregate(&mut self, expr: &str) -> String {
        if let Some((k, _)) = self.aggregates.iter().find(|(_, e)| e == expr) {
            return k.clone();
        }
        let key = format!("m{}", self.aggregates.len());
        self.aggregates.push((key.clone(), expr.to_string()));
        key
    }

    fn query(&mut self, sql: String, custom: bool) -> String {
        self.query_with(sql, custom, None)
    }

    fn query_with(&mut self, sql: String, custom: bool, shortcut: Option<Shortcut>) -> String {
        if let Some(q) = self.queries.iter().find(|q| q.sql == sql) {
            return q.keys[0].clone();
        }
        let key = format!("q{}", self.queries.len());
        self.queries.push(Query {
            sql,
            keys: vec![key.clone()],
            custom,
            shortcut,
        });
        key
    }

    /// The values of `query` when the aggregate's `measured` values already give them (a
    /// [`Shortcut`] whose counts are equal), so it need not run.
    pub fn answer_from_aggregate(
        &self,
        query: &Query,
        measured: &Measured,
    ) -> Option<Vec<Option<f64>>> {
        let shortcut = query.shortcut.as_ref()?;
        let value = |k: &String| measured.values.get(k).copied().flatten();
        let (distinct, non_null) = (value(&shortcut.distinct)?, value(&shortcut.non_null)?);
        (distinct == non_null).then(|| vec![Some(non_null)])
    }

    fn compile_top(&mut self, r: &TopRule, columns: &[String]) {
        match r {
            TopRule::Rule(rule) => {
                let leaf = self.compile_rule(rule, columns);
                self.leaves.push(leaf);
            }
            TopRule::And(parts, _) | TopRule::Or(parts, _) => {
                for p in parts {
                    self.compile_top(p, columns);
                }
            }
        }
    }

    fn compliance(&mut self, pred: &str) -> String {
        self.aggregate(&format!(
            "COALESCE(CAST(SUM(CASE WHEN {pred} THEN 1 ELSE 0 END) AS DOUBLE) / NULLIF(CAST({ROW_COUNT} AS DOUBLE), 0), 1.0)"
        ))
    }

    fn compile_rule(&mut self, r: &Rule, columns: &[String]) -> Leaf {
        use RuleType::*;
        let mut leaf = Leaf::default();
        // Every column parameter must exist.
        let column_params: &[String] = match r.kind {
            RowCount | ColumnCount | CustomSql | ColumnExists => &[],
            ReferentialIntegrity => &r.params[..1],
            _ => &r.params,
        };
        for c in column_params {
            if !columns.iter().any(|x| x == c) {
                leaf.error = Some(missing_column(c, columns));
                return leaf;
            }
        }
        let col = r.params.first().map(|c| ident(c)).unwrap_or_default();
        let name = r.params.first().cloned().unwrap_or_default();
        let cond = r.condition.clone();
        let one = Condition::Cmp(CmpOp::Eq, Value::Number(1.0));
        let check = |leaf: &mut Leaf, metric: String, key: String, cond: Condition| {
            leaf.reported.push((metric.clone(), key.clone()));
            leaf.checks.push(Check {
                key,
                name: metric,
                cond,
            });
        };
        match r.kind {
            RowCount => {
                let key = self.aggregate(&format!("CAST({ROW_COUNT} AS DOUBLE)"));
                check(
                    &mut leaf,
                    "Dataset.*.RowCount".into(),
                    key,
                    cond.unwrap_or(one),
                );
            }
            ColumnCount => {
                let key = "ColumnCount".to_string();
                self.fixed.insert(key.clone(), columns.len() as f64);
                check(
                    &mut leaf,
                    "Dataset.*.ColumnCount".into(),
                    key,
                    cond.unwrap_or(one),
                );
            }
            ColumnExists => {
                if !columns.contains(&name) {
                    leaf.failure = Some(missing_column(&name, columns));
                }
            }
            IsComplete | Completeness => {
                let key = self.aggregate(&format!(
                    "COALESCE(CAST(COUNT({col}) AS DOUBLE) / NULLIF(CAST({ROW_COUNT} AS DOUBLE), 0), 1.0)"
                ));
                let c = if r.kind == IsComplete {
                    one
                } else {
                    cond.unwrap_or(one)
                };
                check(&mut leaf, format!("Column.{name}.Completeness"), key, c);
            }
            IsUnique | Uniqueness => {
                let key = self.uniqueness(&r.params, &mut leaf);
                let c = if r.kind == IsUnique {
                    one
                } else {
                    cond.unwrap_or(one)
                };
                check(&mut leaf, format!("Column.{name}.Uniqueness"), key, c);
            }
            IsPrimaryKey => {
                for c in &r.params {
                    let key = self.aggregate(&format!(
                        "COALESCE(CAST(COUNT({}) AS DOUBLE) / NULLIF(CAST({ROW_COUNT} AS DOUBLE), 0), 1.0)",
                        ident(c)
                    ));
                    check(
                        &mut leaf,
                        format!("Column.{c}.Completeness"),
                        key,
                        one.clone(),
                    );
                }
                let key = self.uniqueness(&r.params, &mut leaf);
                let metric = if r.params.len() == 1 {
                    format!("Column.{name}.Uniqueness")
                } else {
                    format!("Multicolumn.{}.Uniqueness", r.params.join(","))
                };
                check(&mut leaf, metric, key, one);
            }
            ColumnValues => {
                let Some(c) = cond else { return leaf };
                let pred = predicate(&col, &c);
                let key = self.compliance(&pred);
                let threshold = r.threshold.clone().unwrap_or(one);
                check(
                    &mut leaf,
                    format!("Column.{name}.ColumnValues.Compliance"),
                    key,
                    threshold,
                );
            }
            ColumnLength => {
                let Some(c) = cond else { return leaf };
                let len = format!("CHARACTER_LENGTH(CAST({col} AS VARCHAR))");
                let pred = predicate(&len, &c);
                let key = self.compliance(&pred);
                let min = self.aggregate(&format!("CAST(MIN({len}) AS DOUBLE)"));
                let max = self.aggregate(&format!("CAST(MAX({len}) AS DOUBLE)"));
                leaf.reported
                    .push((format!("Column.{name}.MinimumLength"), min));
                leaf.reported
                    .push((format!("Column.{name}.MaximumLength"), max));
                let threshold = r.threshold.clone().unwrap_or(one);
                check(
                    &mut leaf,
                    format!("Column.{name}.ColumnLength.Compliance"),
                    key,
                    threshold,
                );
            }
            Mean | Sum | StandardDeviation | DistinctValuesCount => {
                let (expr, metric) = match r.kind {
                    Mean => (format!("AVG(CAST({col} AS DOUBLE))"), "Mean"),
                    Sum => (format!("COALESCE(SUM(CAST({col} AS DOUBLE)), 0.0)"), "Sum"),
                    StandardDeviation => (
                        format!("STDDEV_POP(CAST({col} AS DOUBLE))"),
                        "StandardDeviation",
                    ),
                    _ => (
                        format!("CAST(COUNT(DISTINCT {col}) AS DOUBLE)"),
                        "DistinctValuesCount",
                    ),
                };
                let key = self.aggregate(&expr);
                check(
                    &mut leaf,
                    format!("Column.{name}.{metric}"),
                    key,
                    cond.unwrap_or(one),
                );
            }
            DataFreshness => {
                let Some(c) = cond else { return leaf };
                let pred = freshness_predicate(&format!("CAST({col} AS TIMESTAMP)"), &c);
                let key = self.compliance(&pred);
                let threshold = r.threshold.clone().unwrap_or(one);
                check(
                    &mut leaf,
                    format!("Column.{name}.DataFreshness.Compliance"),
                    key,
                    threshold,
                );
            }
            CustomSql => {
                let key = self.query(name.clone(), true);
                check(
                    &mut leaf,
                    "Dataset.*.CustomSQL".into(),
                    key,
                    cond.unwrap_or(one),
                );
            }
            ReferentialIntegrity => {
                let reference = &r.params[1];
                let parts: Vec<&str> = reference.split('.').collect();
                let (db, table, rcol) = (parts[0], parts[1], parts[2]);
                let sql = format!(
                    "SELECT COALESCE(CAST(COUNT(r.k) AS DOUBLE) / NULLIF(CAST(COUNT(*) AS DOUBLE), 0), 1.0) \
                     FROM (SELECT {col} AS v FROM {}) p \
                     LEFT JOIN (SELECT DISTINCT {} AS k FROM {}.{}) r ON p.v = r.k",
                    ident(TABLE),
                    ident(rcol),
                    ident(db),
                    ident(table)
                );
                let key = self.query(sql, false);
                check(
                    &mut leaf,
                    format!("Column.{name}.ReferentialIntegrity"),
                    key,
                    cond.unwrap_or(one),
                );
            }
        }
        leaf
    }

    /// The key of `columns`' uniqueness: values occurring exactly once (nulls excluded),
    /// over all rows.
    fn uniqueness(&mut self, columns: &[String], leaf: &mut Leaf) -> String {
        let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        let not_null: Vec<String> = cols.iter().map(|c| format!("{c} IS NOT NULL")).collect();
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN n = 1 THEN 1 ELSE 0 END), 0) AS DOUBLE) \
             FROM (SELECT COUNT(*) AS n FROM {} WHERE {} GROUP BY {}) g",
            ident(TABLE),
            not_null.join(" AND "),
            cols.join(", ")
        );
        // One column: the aggregate pass may already tell (see [`Shortcut`]).
        let distinct = if self.options.hash64 && !self.exact_distinct.contains(&columns[0]) {
            format!("CAST(COUNT(DISTINCT {HASH64}({})) AS DOUBLE)", cols[0])
        } else {
            format!("CAST(COUNT(DISTINCT {}) AS DOUBLE)", cols[0])
        };
        let shortcut = (columns.len() == 1).then(|| Shortcut {
            distinct: self.aggregate(&distinct),
            non_null: self.aggregate(&format!("CAST(COUNT({}) AS DOUBLE)", cols[0])),
        });
        let unique = self.query_with(sql, false, shortcut);
        let ratio = format!("{unique}/rows");
        leaf.ratios.push((ratio.clone(), unique));
        ratio
    }

    /// Judges every top-level rule from `measured` (the aggregate's and the queries'
    /// values by key).
    pub fn judge(&self, measured: &Measured) -> Vec<Outcome> {
        let mut values = measured.values.clone();
        for (k, v) in &self.fixed {
            values.insert(k.clone(), Some(*v));
        }
        let rows = values.get("m0").copied().flatten();
        for leaf in &self.leaves {
            for (ratio, numerator) in &leaf.ratios {
                let v = match (values.get(numerator).copied().flatten(), rows) {
                    (Some(n), Some(r)) if r > 0.0 => Some(n / r),
                    (Some(_), Some(_)) => Some(1.0),
                    _ => None,
                };
                values.insert(ratio.clone(), v);
            }
        }
        let mut next = 0;
        self.rules
            .iter()
            .map(|r| self.judge_top(r, &values, measured, &mut next))
            .collect()
    }

    fn judge_top(
        &self,
        r: &TopRule,
        values: &BTreeMap<String, Option<f64>>,
        measured: &Measured,
        next: &mut usize,
    ) -> Outcome {
        match r {
            TopRule::Rule(rule) => {
                let leaf = &self.leaves[*next];
                *next += 1;
                judge_leaf(rule, leaf, values, measured)
            }
            TopRule::And(parts, text) | TopRule::Or(parts, text) => {
                let is_and = matches!(r, TopRule::And(..));
                let outs: Vec<Outcome> = parts
                    .iter()
                    .map(|p| self.judge_top(p, values, measured, next))
                    .collect();
                let mut metrics = BTreeMap::new();
                for o in &outs {
                    metrics.extend(o.metrics.clone());
                }
                let passed = if is_and {
                    outs.iter().all(|o| o.status == Status::Passed)
                } else {
                    outs.iter().any(|o| o.status == Status::Passed)
                };
                let status = if passed {
                    Status::Passed
                } else if outs.iter().any(|o| o.status == Status::Error) {
                    Status::Error
                } else {
                    Status::Failed
                };
                let reason = if passed {
                    String::new()
                } else {
                    outs.iter()
                        .filter(|o| o.status != Status::Passed)
                        .map(|o| format!("{}: {}", o.rule, o.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                Outcome {
                    rule: text.clone(),
                    status,
                    reason,
                    metrics,
                }
            }
        }
    }
}

fn judge_leaf(
    rule: &Rule,
    leaf: &Leaf,
    values: &BTreeMap<String, Option<f64>>,
    measured: &Measured,
) -> Outcome {
    let mut out = Outcome {
        rule: rule.text.clone(),
        status: Status::Passed,
        reason: String::new(),
        metrics: BTreeMap::new(),
    };
    if let Some(e) = &leaf.error {
        out.status = Status::Error;
        out.reason = e.clone();
        return out;
    }
    if let Some(f) = &leaf.failure {
        out.status = Status::Failed;
        out.reason = f.clone();
        return out;
    }
    for (name, key) in &leaf.reported {
        if let Some(Some(v)) = values.get(key) {
            out.metrics.insert(name.clone(), *v);
        }
    }
    let mut reasons = Vec::new();
    for c in &leaf.checks {
        let base = c.key.split('/').next().unwrap_or(&c.key);
        if let Some(e) = measured.errors.get(base) {
            out.status = Status::Error;
            out.reason = e.clone();
            return out;
        }
        match values.get(&c.key).copied().flatten() {
            None => reasons.push(format!("{} has no value (no non-null rows)", c.name)),
            Some(v) if !holds(&c.cond, v) => reasons.push(format!(
                "{}: value {} does not meet the constraint {}",
                c.name,
                show(v),
                describe(&c.cond)
            )),
            Some(_) => {}
        }
    }
    if !reasons.is_empty() {
        out.status = Status::Failed;
        out.reason = reasons.join("; ");
    }
    out
}

fn show(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn describe(c: &Condition) -> String {
    let v = |v: &Value| match v {
        Value::Number(n) => show(*n),
        other => format!("{other:?}"),
    };
    match c {
        Condition::Cmp(op, x) => {
            let op = match op {
                CmpOp::Ne => "!=",
                o => o.sql(),
            };
            format!("{op} {}", v(x))
        }
        Condition::Between { negated, low, high } => format!(
            "{}between {} and {}",
            if *negated { "not " } else { "" },
            v(low),
            v(high)
        ),
        Condition::In { negated, values } => format!(
            "{}in [{}]",
            if *negated { "not " } else { "" },
            values.iter().map(v).collect::<Vec<_>>().join(", ")
        ),
        Condition::Matches { regex, .. } => format!("matches \"{regex}\""),
    }
}

/// Whether a measured number meets a numeric condition (`between` is exclusive, as in Glue).
pub fn holds(c: &Condition, x: f64) -> bool {
    let num = |v: &Value| match v {
        Value::Number(n) => Some(*n),
        _ => None,
    };
    const EPS: f64 = 1e-9;
    match c {
        Condition::Cmp(op, v) => {
            let Some(n) = num(v) else { return false };
            match op {
                CmpOp::Gt => x > n,
                CmpOp::Ge => x >= n - EPS,
                CmpOp::Lt => x < n,
                CmpOp::Le => x <= n + EPS,
                CmpOp::Eq => (x - n).abs() <= EPS,
                CmpOp::Ne => (x - n).abs() > EPS,
            }
        }
        Condition::Between { negated, low, high } => {
            let (Some(l), Some(h)) = (num(low), num(high)) else {
                return false;
            };
            (x > l && x < h) != *negated
        }
        Condition::In { negated, values } => {
            values.iter().filter_map(num).any(|n| (x - n).abs() <= EPS) != *negated
        }
        Condition::Matches { .. } => false,
    }
}

/// The SQL literal of a value.
fn sql_value(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("{n}"),
        Value::Str(s) => literal(s),
        Value::Now(None) => "now()".into(),
        Value::Now(Some((plus, d))) => {
            format!("(now() {} {})", if *plus { "+" } else { "-" }, d.sql())
        }
        Value::Duration(d) => d.sql(),
        Value::Null => "NULL".into(),
        Value::Empty => "''".into(),
        Value::WhitespacesOnly => "' '".into(),
    }
}

/// A value's membership test on `expr`.
fn equals(expr: &str, v: &Value) -> String {
    match v {
        Value::Null => format!("{expr} IS NULL"),
        Value::Empty => format!("CAST({expr} AS VARCHAR) = ''"),
        Value::WhitespacesOnly => {
            format!("(CAST({expr} AS VARCHAR) <> '' AND TRIM(CAST({expr} AS VARCHAR)) = '')")
        }
        other => format!("{expr} = {}", sql_value(other)),
    }
}

/// The SQL predicate "`expr` meets `c`" (a row that does not, or is NULL, does not comply).
pub fn predicate(expr: &str, c: &Condition) -> String {
    let not = |negated: bool, p: String| {
        if negated {
            format!("(NOT ({p}))")
        } else {
            format!("({p})")
        }
    };
    match c {
        Condition::Cmp(CmpOp::Eq, v) => format!("({})", equals(expr, v)),
        Condition::Cmp(CmpOp::Ne, v) => not(true, equals(expr, v)),
        Condition::Cmp(op, v) => format!("({expr} {} {})", op.sql(), sql_value(v)),
        Condition::Between { negated, low, high } => not(
            *negated,
            format!(
                "{expr} > {} AND {expr} < {}",
                sql_value(low),
                sql_value(high)
            ),
        ),
        Condition::In { negated, values } => {
            let plain: Vec<String> = values
                .iter()
                .filter(|v| !matches!(v, Value::Null | Value::Empty | Value::WhitespacesOnly))
                .map(sql_value)
                .collect();
            let mut parts = Vec::new();
            if !plain.is_empty() {
                parts.push(format!("{expr} IN ({})", plain.join(", ")));
            }
            for v in values {
                if matches!(v, Value::Null | Value::Empty | Value::WhitespacesOnly) {
                    parts.push(equals(expr, v));
                }
            }
            not(*negated, parts.join(" OR "))
        }
        Condition::Matches { negated, regex } => not(
            *negated,
            format!("regexp_like(CAST({expr} AS VARCHAR), {})", literal(regex)),
        ),
    }
}

/// "The age of `ts` meets the duration condition `c`".
fn freshness_predicate(ts: &str, c: &Condition) -> String {
    let ago = |v: &Value| match v {
        Value::Duration(d) => format!("(now() - {})", d.sql()),
        other => sql_value(other),
    };
    match c {
        Condition::Cmp(op, v) => {
            let flipped = match op {
                CmpOp::Gt => "<",
                CmpOp::Ge => "<=",
                CmpOp::Lt => ">",
                CmpOp::Le => ">=",
                CmpOp::Eq => "=",
                CmpOp::Ne => "<>",
            };
            format!("({ts} {flipped} {})", ago(v))
        }
        Condition::Between { negated, low, high } => {
            let p = format!("{ts} < {} AND {ts} > {}", ago(low), ago(high));
            if *negated {
                format!("(NOT ({p}))")
            } else {
                format!("({p})")
            }
        }
        _ => "FALSE".into(),
    }
}

fn missing_column(c: &str, columns: &[String]) -> String {
    let best = columns
        .iter()
        .map(|x| (strsim::jaro_winkler(x, c), x))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let hint = match best {
        Some((s, x)) if s > 0.8 => format!(" (did you mean '{x}'?)"),
        _ => String::new(),
    };
    format!(
        "column '{c}' is not in the output{hint}; its columns are {}",
        columns.join(", ")
    )
}
