//! The DQDL parser: the pest grammar in `dqdl.pest`, then checks of each rule's type,
//! parameters and condition, every error with its line and column in the rules text.

use pest::Parser as _;
use pest::iterators::Pair;

use crate::ast::*;

#[derive(pest_derive::Parser)]
#[grammar = "dqdl.pest"]
struct DqdlParser;

/// A ruleset that does not parse or names a rule wrongly; `line` and `column` are within
/// the rules text (from 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// Line in the rules text, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    fn at(pos: Pos, message: impl Into<String>) -> Self {
        Self {
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }
}

/// Parses a DQDL ruleset (`Rules = [ ... ]`).
pub fn parse(text: &str) -> Result<Ruleset, ParseError> {
    let mut pairs = DqdlParser::parse(Rule::ruleset, text).map_err(grammar_error)?;
    let ruleset = pairs.next().ok_or_else(|| ParseError {
        line: 1,
        column: 1,
        message: "empty ruleset".into(),
    })?;
    let mut rules = Vec::new();
    for p in ruleset.into_inner() {
        if p.as_rule() == Rule::top_rule {
            rules.push(top_rule(p)?);
        }
    }
    Ok(Ruleset { rules })
}

/// A grammar error in words a user reads: where, what was expected.
fn grammar_error(e: pest::error::Error<Rule>) -> ParseError {
    let (line, column) = match e.line_col {
        pest::error::LineColLocation::Pos(p) => p,
        pest::error::LineColLocation::Span(p, _) => p,
    };
    let message = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().filter_map(|r| describe(*r)).collect();
            names.sort_unstable();
            names.dedup();
            if names.is_empty() {
                "unexpected text".to_string()
            } else {
                format!("expected {}", names.join(", "))
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    ParseError {
        line,
        column,
        message,
    }
}

fn describe(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of the rules",
        Rule::top_rule | Rule::and_rule | Rule::term | Rule::dq_rule | Rule::rule_type => "a rule",
        Rule::parameter | Rule::quoted => "a quoted string",
        Rule::condition
        | Rule::between
        | Rule::not_between
        | Rule::op_cmp
        | Rule::cmp_op
        | Rule::in_list
        | Rule::not_in
        | Rule::matches
        | Rule::not_matches => "a condition (> 5, between 1 and 3, in [...], matches \"...\")",
        Rule::value | Rule::number | Rule::duration | Rule::date_now | Rule::now_call => "a value",
        Rule::null | Rule::empty | Rule::whitespaces_only => "a value",
        Rule::and_kw => "'and'",
        Rule::or_kw => "'or'",
        Rule::kw_with => "'with'",
        Rule::kw_where => "'where'",
        Rule::tag => "'with threshold ...'",
        Rule::duration_unit => "days, hours or minutes",
        Rule::ident => "a name",
        _ => return None,
    })
}

fn pos_of(p: &Pair<'_, Rule>) -> Pos {
    let (line, column) = p.as_span().start_pos().line_col();
    Pos { line, column }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn top_rule(p: Pair<'_, Rule>) -> Result<TopRule, ParseError> {
    let text = collapse(p.as_str());
    let mut parts = Vec::new();
    for q in p.into_inner() {
        if q.as_rule() == Rule::and_rule {
            parts.push(and_rule(q)?);
        }
    }
    if parts.len() == 1 {
        Ok(parts.remove(0))
    } else {
        Ok(TopRule::Or(parts, text))
    }
}

fn and_rule(p: Pair<'_, Rule>) -> Result<TopRule, ParseError> {
    let text = collapse(p.as_str());
    let mut parts = Vec::new();
    for q in p.into_inner() {
        if q.as_rule() == Rule::term {
            parts.push(term(q)?);
        }
    }
    if parts.len() == 1 {
        Ok(parts.remove(0))
    } else {
        Ok(TopRule::And(parts, text))
    }
}

fn term(p: Pair<'_, Rule>) -> Result<TopRule, ParseError> {
    let pos = pos_of(&p);
    let inner = p
        .into_inner()
        .next()
        .ok_or_else(|| ParseError::at(pos, "empty rule"))?;
    match inner.as_rule() {
        Rule::top_rule => top_rule(inner),
        _ => dq_rule(inner).map(TopRule::Rule),
    }
}

fn dq_rule(p: Pair<'_, Rule>) -> Result<crate::ast::Rule, ParseError> {
    let pos = pos_of(&p);
    let text = collapse(p.as_str());
    let mut kind = None;
    let mut params = Vec::new();
    let mut condition = None;
    let mut threshold = None;
    for q in p.into_inner() {
        let qpos = pos_of(&q);
        match q.as_rule() {
            Rule::rule_type => kind = Some(rule_type(q.as_str(), qpos)?),
            Rule::parameter => params.push(quoted(first(q)?)),
            Rule::condition => condition = Some(condition_of(q)?),
            Rule::where_clause => {
                return Err(ParseError::at(
                    qpos,
                    "'where' clauses are not supported; filter the rows in the job instead",
                ));
            }
            Rule::tag => {
                let mut it = q.into_inner();
                let name = it
                    .find(|x| x.as_rule() == Rule::ident)
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default();
                if name != "threshold" {
                    return Err(ParseError::at(
                        qpos,
                        format!(
                            "unknown tag '{name}': only 'with threshold <condition>' is supported"
                        ),
                    ));
                }
                let cond = it
                    .find(|x| x.as_rule() == Rule::condition)
                    .ok_or_else(|| ParseError::at(qpos, "'with threshold' needs a condition"))?;
                let cpos = pos_of(&cond);
                let cond = condition_of(cond)?;
                check_numeric(&cond, cpos, "a threshold")?;
                threshold = Some(cond);
            }
            _ => {}
        }
    }
    let kind = kind.ok_or_else(|| ParseError::at(pos, "a rule needs a rule type"))?;
    let rule = crate::ast::Rule {
        kind,
        params,
        condition,
        threshold,
        text,
        pos,
    };
    check_rule(&rule)?;
    Ok(rule)
}

fn first(p: Pair<'_, Rule>) -> Result<Pair<'_, Rule>, ParseError> {
    let pos = pos_of(&p);
    p.into_inner()
        .next()
        .ok_or_else(|| ParseError::at(pos, "incomplete"))
}

/// The unescaped text of a `quoted` pair (`\"` and `\\`).
fn quoted(p: Pair<'_, Rule>) -> String {
    let raw = p.into_inner().next().map(|x| x.as_str()).unwrap_or("");
    raw.replace("\\\"", "\"").replace("\\\\", "\\")
}

fn rule_type(name: &str, pos: Pos) -> Result<RuleType, ParseError> {
    if let Some((_, t)) = RULE_TYPES.iter().find(|(n, _)| *n == name) {
        return Ok(*t);
    }
    let best = RULE_TYPES
        .iter()
        .map(|(n, _)| {
            (
                strsim::jaro_winkler(&n.to_lowercase(), &name.to_lowercase()),
                *n,
            )
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let hint = match best {
        Some((score, n)) if score > 0.8 => format!(" (did you mean {n}?)"),
        _ => String::new(),
    };
    Err(ParseError::at(
        pos,
        format!("unknown rule type '{name}'{hint}"),
    ))
}

fn condition_of(p: Pair<'_, Rule>) -> Result<Condition, ParseError> {
    let inner = first(p)?;
    let pos = pos_of(&inner);
    let rule = inner.as_rule();
    let mut values = Vec::new();
    let mut op = None;
    let mut regex = None;
    for q in inner.into_inner() {
        match q.as_rule() {
            Rule::value => values.push(value_of(q)?),
            Rule::cmp_op => {
                op = Some(match q.as_str() {
                    ">=" => CmpOp::Ge,
                    "<=" => CmpOp::Le,
                    "!=" => CmpOp::Ne,
                    ">" => CmpOp::Gt,
                    "<" => CmpOp::Lt,
                    _ => CmpOp::Eq,
                })
            }
            Rule::quoted => regex = Some(quoted(q)),
            _ => {}
        }
    }
    let two = |mut v: Vec<Value>| -> Result<(Value, Value), ParseError> {
        if v.len() != 2 {
            return Err(ParseError::at(pos, "between needs two values"));
        }
        let high = v.remove(1);
        Ok((v.remove(0), high))
    };
    Ok(match rule {
        Rule::op_cmp => Condition::Cmp(
            op.unwrap_or(CmpOp::Eq),
            values
                .pop()
                .ok_or_else(|| ParseError::at(pos, "a comparison needs a value"))?,
        ),
        Rule::between | Rule::not_between => {
            let (low, high) = two(values)?;
            Condition::Between {
                negated: rule == Rule::not_between,
                low,
                high,
            }
        }
        Rule::in_list | Rule::not_in => Condition::In {
            negated: rule == Rule::not_in,
            values,
        },
        _ => {
            let regex = regex.unwrap_or_default();
            Condition::Matches {
                negated: rule == Rule::not_matches,
                regex,
            }
        }
    })
}

fn number_of(p: &Pair<'_, Rule>) -> Result<f64, ParseError> {
    p.as_str()
        .parse::<f64>()
        .map_err(|_| ParseError::at(pos_of(p), format!("bad number '{}'", p.as_str())))
}

fn duration_of(p: Pair<'_, Rule>) -> Result<Duration, ParseError> {
    let mut amount = 0.0;
    let mut unit = DurationUnit::Days;
    for q in p.into_inner() {
        match q.as_rule() {
            Rule::number => amount = number_of(&q)?,
            Rule::duration_unit => {
                unit = match q.as_str() {
                    "hours" => DurationUnit::Hours,
                    "minutes" => DurationUnit::Minutes,
                    _ => DurationUnit::Days,
                }
            }
            _ => {}
        }
    }
    Ok(Duration { amount, unit })
}

fn value_of(p: Pair<'_, Rule>) -> Result<Value, ParseError> {
    let inner = first(p)?;
    Ok(match inner.as_rule() {
        Rule::number => Value::Number(number_of(&inner)?),
        Rule::quoted => Value::Str(quoted(inner)),
        Rule::duration => Value::Duration(duration_of(inner)?),
        Rule::date_now => {
            let mut sign = None;
            let mut dur = None;
            for q in inner.into_inner() {
                match q.as_rule() {
                    Rule::date_op => sign = Some(q.as_str() == "+"),
                    Rule::duration => dur = Some(duration_of(q)?),
                    _ => {}
                }
            }
            Value::Now(sign.zip(dur))
        }
        Rule::null => Value::Null,
        Rule::empty => Value::Empty,
        _ => Value::WhitespacesOnly,
    })
}

fn values_of(c: &Condition) -> Vec<&Value> {
    match c {
        Condition::Cmp(_, v) => vec![v],
        Condition::Between { low, high, .. } => vec![low, high],
        Condition::In { values, .. } => values.iter().collect(),
        Condition::Matches { .. } => vec![],
    }
}

fn check_numeric(c: &Condition, pos: Pos, what: &str) -> Result<(), ParseError> {
    if matches!(c, Condition::Matches { .. }) {
        return Err(ParseError::at(
            pos,
            format!("{what} takes a number condition, not 'matches'"),
        ));
    }
    if values_of(c).iter().any(|v| !matches!(v, Value::Number(_))) {
        return Err(ParseError::at(
            pos,
            format!("{what} is compared with numbers only"),
        ));
    }
    Ok(())
}

fn name_of(kind: RuleType) -> &'static str {
    RULE_TYPES
        .iter()
        .find(|(_, t)| *t == kind)
        .map(|(n, _)| *n)
        .unwrap_or("?")
}

/// Checks a rule's parameters, condition and threshold fit its type.
fn check_rule(r: &crate::ast::Rule) -> Result<(), ParseError> {
    use RuleType::*;
    let name = name_of(r.kind);
    let (min_params, max_params, needs_condition, takes_condition, takes_threshold) = match r.kind {
        RowCount | ColumnCount => (0, 0, true, true, false),
        IsComplete | IsUnique | ColumnExists => (1, 1, false, false, false),
        IsPrimaryKey => (1, usize::MAX, false, false, false),
        Completeness | Uniqueness | Mean | Sum | StandardDeviation | DistinctValuesCount
        | CustomSql => (1, 1, true, true, false),
        ColumnValues | ColumnLength | DataFreshness => (1, 1, true, true, true),
        ReferentialIntegrity => (2, 2, true, true, false),
    };
    let n = r.params.len();
    if n < min_params || n > max_params {
        let want = match (min_params, max_params) {
            (0, 0) => "no quoted parameters".to_string(),
            (a, b) if a == b => format!("{a} quoted parameter{}", if a == 1 { "" } else { "s" }),
            (a, _) => format!("at least {a} quoted parameter"),
        };
        return Err(ParseError::at(
            r.pos,
            format!("{name} takes {want}, found {n}"),
        ));
    }
    match &r.condition {
        None if needs_condition => {
            return Err(ParseError::at(
                r.pos,
                format!(
                    "{name} needs a condition, such as {name}{} > 0",
                    if n > 0 { " \"...\"" } else { "" }
                ),
            ));
        }
        Some(_) if !takes_condition => {
            return Err(ParseError::at(r.pos, format!("{name} takes no condition")));
        }
        _ => {}
    }
    if r.threshold.is_some() && !takes_threshold {
        return Err(ParseError::at(
            r.pos,
            format!("{name} takes no 'with threshold'"),
        ));
    }
    if let Some(c) = &r.condition {
        match r.kind {
            ColumnValues => {
                if values_of(c).iter().any(|v| matches!(v, Value::Duration(_))) {
                    return Err(ParseError::at(
                        r.pos,
                        "ColumnValues compares with values, not durations",
                    ));
                }
            }
            DataFreshness => {
                let ok = !matches!(c, Condition::Matches { .. } | Condition::In { .. })
                    && values_of(c).iter().all(|v| matches!(v, Value::Duration(_)));
                if !ok {
                    return Err(ParseError::at(
                        r.pos,
                        "DataFreshness takes a duration condition, such as <= 24 hours",
                    ));
                }
            }
            _ => check_numeric(c, r.pos, name)?,
        }
    }
    if r.kind == ReferentialIntegrity && r.params[1].split('.').count() != 3 {
        return Err(ParseError::at(
            r.pos,
            format!(
                "ReferentialIntegrity's reference '{}' must be \"database.table.column\"",
                r.params[1]
            ),
        ));
    }
    Ok(())
}
