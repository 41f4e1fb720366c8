//! A parsed DQDL ruleset: rules, composites and conditions, each with where it was written.

/// Where something was written in the rules text (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column (characters), from 1.
    pub column: usize,
}

/// A parsed ruleset: `Rules = [ ... ]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruleset {
    /// The top-level rules, in order.
    pub rules: Vec<TopRule>,
}

/// A top-level rule: one rule, or rules joined by `and` / `or`.
#[derive(Debug, Clone, PartialEq)]
pub enum TopRule {
    /// A single rule.
    Rule(Rule),
    /// Every part must pass.
    And(Vec<TopRule>, String),
    /// At least one part must pass.
    Or(Vec<TopRule>, String),
}

impl TopRule {
    /// The rule as written (whitespace collapsed).
    pub fn text(&self) -> &str {
        match self {
            TopRule::Rule(r) => &r.text,
            TopRule::And(_, t) | TopRule::Or(_, t) => t,
        }
    }
}

/// The rule types Sluice evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleType {
    /// `RowCount <cond>`
    RowCount,
    /// `ColumnCount <cond>`
    ColumnCount,
    /// `IsComplete "col"`
    IsComplete,
    /// `Completeness "col" <cond>`
    Completeness,
    /// `IsUnique "col"`
    IsUnique,
    /// `Uniqueness "col" <cond>`
    Uniqueness,
    /// `IsPrimaryKey "col" ["col" ...]`
    IsPrimaryKey,
    /// `ColumnValues "col" <cond>`
    ColumnValues,
    /// `ColumnLength "col" <cond>`
    ColumnLength,
    /// `Mean "col" <cond>`
    Mean,
    /// `Sum "col" <cond>`
    Sum,
    /// `StandardDeviation "col" <cond>`
    StandardDeviation,
    /// `DistinctValuesCount "col" <cond>`
    DistinctValuesCount,
    /// `ColumnExists "col"`
    ColumnExists,
    /// `CustomSql "select ... from primary" <cond>`
    CustomSql,
    /// `ReferentialIntegrity "col" "db.table.col" <cond>`
    ReferentialIntegrity,
    /// `DataFreshness "col" <duration cond>`
    DataFreshness,
}

/// Every rule type's DQDL name.
pub const RULE_TYPES: &[(&str, RuleType)] = &[
    ("RowCount", RuleType::RowCount),
    ("ColumnCount", RuleType::ColumnCount),
    ("IsComplete", RuleType::IsComplete),
    ("Completeness", RuleType::Completeness),
    ("IsUnique", RuleType::IsUnique),
    ("Uniqueness", RuleType::Uniqueness),
    ("IsPrimaryKey", RuleType::IsPrimaryKey),
    ("ColumnValues", RuleType::ColumnValues),
    ("ColumnLength", RuleType::ColumnLength),
    ("Mean", RuleType::Mean),
    ("Sum", RuleType::Sum),
    ("StandardDeviation", RuleType::StandardDeviation),
    ("DistinctValuesCount", RuleType::DistinctValuesCount),
    ("ColumnExists", RuleType::ColumnExists),
    ("CustomSql", RuleType::CustomSql),
    ("ReferentialIntegrity", RuleType::ReferentialIntegrity),
    ("DataFreshness", RuleType::DataFreshness),
];

/// One rule: its type, quoted parameters, condition and threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule type.
    pub kind: RuleType,
    /// Quoted parameters (column names, SQL, a reference), unescaped.
    pub params: Vec<String>,
    /// The condition the measured value must meet, when the rule has one.
    pub condition: Option<Condition>,
    /// `with threshold <cond>`: the share of rows that must comply.
    pub threshold: Option<Condition>,
    /// The rule as written.
    pub text: String,
    /// Where the rule starts.
    pub pos: Pos,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=`
    Eq,
    /// `!=`
    Ne,
}

impl CmpOp {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
        }
    }
}

/// A condition: `> 5`, `between 1 and 3`, `in [..]`, `matches ".."` (and their `not`).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `op value`
    Cmp(CmpOp, Value),
    /// `[not] between a and b` (exclusive bounds, as in Glue).
    Between {
        /// `not between`
        negated: bool,
        /// Lower bound.
        low: Value,
        /// Upper bound.
        high: Value,
    },
    /// `[not] in [values]`
    In {
        /// `not in`
        negated: bool,
        /// The values.
        values: Vec<Value>,
    },
    /// `[not] matches "regex"`
    Matches {
        /// `not matches`
        negated: bool,
        /// The regular expression.
        regex: String,
    },
}

/// Time units of a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUnit {
    /// days
    Days,
    /// hours
    Hours,
    /// minutes
    Minutes,
}

/// A duration, `24 hours`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duration {
    /// How many units.
    pub amount: f64,
    /// The unit.
    pub unit: DurationUnit,
}

impl Duration {
    /// A SQL interval literal.
    pub fn sql(&self) -> String {
        let unit = match self.unit {
            DurationUnit::Days => "days",
            DurationUnit::Hours => "hours",
            DurationUnit::Minutes => "minutes",
        };
        format!("INTERVAL '{} {unit}'", self.amount)
    }

    /// In hours.
    pub fn hours(&self) -> f64 {
        match self.unit {
            DurationUnit::Days => self.amount * 24.0,
            DurationUnit::Hours => self.amount,
            DurationUnit::Minutes => self.amount / 60.0,
        }
    }
}

/// A value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number as written.
    Number(f64),
    /// A quoted string (unescaped).
    Str(String),
    /// `now()`, optionally plus or minus a duration.
    Now(Option<(bool, Duration)>),
    /// A duration (`24 hours`).
    Duration(Duration),
    /// `NULL`
    Null,
    /// `EMPTY`: the empty string.
    Empty,
    /// `WHITESPACES_ONLY`: a non-empty string of blanks.
    WhitespacesOnly,
}
