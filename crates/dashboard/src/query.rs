//! Builds a panel's SQL from its dataset, its encoding and the chosen filters. Column names
//! come from the validated file and are quoted; filter values are never pasted in: they
//! become placeholders (`$1`, `$2`, …) bound to values typed like their column.

use std::collections::HashMap;

use arrow::datatypes::Schema;
use datafusion::common::ScalarValue;

use crate::encoding::{Field, quote_ident};
use crate::load::{MAX_ROWS, typed_value};
use crate::spec::{Dashboard, Filter, FilterKind, Panel, PanelKind};

/// Rows a drill-through shows at most.
pub const DRILL_ROWS: u64 = 1_000;

/// Prefix of URL parameters that restrict a column to values (`eq.album_type=single`),
/// set by clicking a chart or drilling from one.
pub const EQ_PREFIX: &str = "eq.";

/// Why a request's filters cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    /// A parameter names no filter.
    #[error("no filter '{name}'{hint}")]
    UnknownFilter {
        /// The parameter.
        name: String,
        /// ` (did you mean 'x'?)` or empty.
        hint: String,
    },
    /// A value does not fit its column.
    #[error("filter '{filter}': {message}")]
    BadValue {
        /// The filter or `eq.column` parameter.
        filter: String,
        /// What is wrong.
        message: String,
    },
}

/// A filter's chosen value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Values (a dropdown's one, a multi-select's any number; none = no restriction).
    Values(Vec<String>),
    /// From and to, either open.
    Range(Option<String>, Option<String>),
}

/// The filters a request chose: from its URL parameters, defaults for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Filter id → choice, for filters the request set (others take their default).
    pub chosen: HashMap<String, Choice>,
    /// Column → values, from `eq.<column>` parameters (clicks and drills).
    pub equals: Vec<(String, Vec<String>)>,
    /// Ignore defaults (used to plan the unfiltered query at load time).
    pub no_defaults: bool,
}

impl Selection {
    /// No filters at all, not even defaults.
    pub fn none() -> Self {
        Self {
            no_defaults: true,
            ..Self::default()
        }
    }

    /// Reads URL parameters: `<filter>=<value>` (repeated for a multi-select; `from..to`
    /// for a range, either end may be empty; an empty value clears a default) and
    /// `eq.<column>=<value>`. Parameters in `ignore` are skipped.
    pub fn from_params(
        dashboard: &Dashboard,
        params: &[(String, String)],
        ignore: &[&str],
    ) -> Result<Self, SelectionError> {
        let mut selection = Selection::default();
        let mut equals: Vec<(String, Vec<String>)> = Vec::new();
        for (key, value) in params {
            if ignore.contains(&key.as_str()) {
                continue;
            }
            if let Some(column) = key.strip_prefix(EQ_PREFIX) {
                match equals.iter_mut().find(|(c, _)| c == column) {
                    Some((_, vs)) => vs.push(value.clone()),
                    None => equals.push((column.to_string(), vec![value.clone()])),
                }
                continue;
            }
            let Some(filter) = dashboard.filters.iter().find(|f| &f.id == key) else {
                let hint =
                    sluice_job::suggest::hint(key, dashboard.filters.iter().map(|f| f.id.as_str()));
                return Err(SelectionError::UnknownFilter {
                    name: key.clone(),
                    hint,
                });
            };
            let choice = match filter.kind {
                FilterKind::DateRange | FilterKind::NumberRange => parse_range(value),
                FilterKind::Dropdown | FilterKind::MultiSelect => {
                    let mut values = match selection.chosen.remove(key) {
                        Some(Choice::Values(v)) => v,
                        _ => Vec::new(),
                    };
                    if !value.is_empty() {
                        values.push(value.clone());
                    }
                    if filter.kind == FilterKind::Dropdown && values.len() > 1 {
                        return Err(SelectionError::BadValue {
                            filter: key.clone(),
                            message: "a dropdown takes one value".into(),
                        });
                    }
                    Choice::Values(values)
                }
            };
            selection.chosen.insert(key.clone(), choice);
        }
        selection.equals = equals;
        Ok(selection)
    }

    /// The choice for `filter`: the request's, else its default.
    fn choice(&self, filter: &Filter) -> Option<Choice> {
        if let Some(c) = self.chosen.get(&filter.id) {
            return Some(c.clone());
        }
        if self.no_defaults || filter.default.is_empty() {
            return None;
        }
        Some(match filter.kind {
            FilterKind::DateRange | FilterKind::NumberRange => {
                let end = |i: usize| filter.default.get(i).filter(|v| !v.is_empty()).cloned();
                Choice::Range(end(0), end(1))
            }
            _ => Choice::Values(filter.default.clone()),
        })
    }
}

/// `from..to`, `from..`, `..to`, or one value (from and to equal).
fn parse_range(value: &str) -> Choice {
    let open = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    match value.split_once("..") {
        Some((from, to)) => Choice::Range(open(from), open(to)),
        None => Choice::Range(open(value), open(value)),
    }
}

/// A statement ready to run: SQL with placeholders, and their values in order.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundQuery {
    /// The SQL.
    pub sql: String,
    /// Values of `$1`, `$2`, ….
    pub params: Vec<ScalarValue>,
}

/// Collects `WHERE` predicates and their parameters.
struct Predicates<'a> {
    schema: &'a Schema,
    sql: Vec<String>,
    params: Vec<ScalarValue>,
}

impl Predicates<'_> {
    fn placeholder(
        &mut self,
        name: &str,
        column: &str,
        text: &str,
    ) -> Result<String, SelectionError> {
        let data_type = self
            .schema
            .field_with_name(column)
            .map_err(|_| SelectionError::BadValue {
                filter: name.to_string(),
                message: format!("no column '{column}'"),
            })?
            .data_type();
        let value = typed_value(text, data_type).map_err(|message| SelectionError::BadValue {
            filter: name.to_string(),
            message,
        })?;
        self.params.push(value);
        Ok(format!("${}", self.params.len()))
    }

    fn values(
        &mut self,
        name: &str,
        column: &str,
        values: &[String],
    ) -> Result<(), SelectionError> {
        if values.is_empty() {
            return Ok(());
        }
        let mut holders = Vec::new();
        for v in values {
            holders.push(self.placeholder(name, column, v)?);
        }
        let col = quote_ident(column);
        self.sql.push(if holders.len() == 1 {
            format!("{col} = {}", holders[0])
        } else {
            format!("{col} IN ({})", holders.join(", "))
        });
        Ok(())
    }

    fn range(
        &mut self,
        name: &str,
        column: &str,
        from: &Option<String>,
        to: &Option<String>,
    ) -> Result<(), SelectionError> {
        let col = quote_ident(column);
        if let Some(from) = from {
            let p = self.placeholder(name, column, from)?;
            self.sql.push(format!("{col} >= {p}"));
        }
        if let Some(to) = to {
            let p = self.placeholder(name, column, to)?;
            self.sql.push(format!("{col} <= {p}"));
        }
        Ok(())
    }
}

/// The `WHERE` clause (possibly empty) over `dataset` for `selection`, with its parameters.
fn where_clause(
    dashboard: &Dashboard,
    dataset: &str,
    schema: &Schema,
    selection: &Selection,
) -> Result<(String, Vec<ScalarValue>), SelectionError> {
    let mut preds = Predicates {
        schema,
        sql: Vec::new(),
        params: Vec::new(),
    };
    for filter in &dashboard.filters {
        let applies = match &filter.datasets {
            Some(names) => names.iter().any(|n| n == dataset),
            None => schema.field_with_name(&filter.column).is_ok(),
        };
        if !applies {
            continue;
        }
        match selection.choice(filter) {
            None => {}
            Some(Choice::Values(values)) => preds.values(&filter.id, &filter.column, &values)?,
            Some(Choice::Range(from, to)) => preds.range(&filter.id, &filter.column, &from, &to)?,
        }
    }
    for (column, values) in &selection.equals {
        // A click on another dataset's column restricts only datasets that have it.
        if schema.field_with_name(column).is_ok() {
            preds.values(&format!("{EQ_PREFIX}{column}"), column, values)?;
        }
    }
    let clause = if preds.sql.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", preds.sql.join(" AND "))
    };
    Ok((clause, preds.params))
}

/// The dataset's SQL as a subquery.
fn from_dataset(dashboard: &Dashboard, dataset: &str) -> String {
    let sql = dashboard
        .datasets
        .get(dataset)
        .map(|d| d.sql.as_str())
        .unwrap_or("SELECT 1 WHERE false");
    format!("(\n{sql}\n) AS \"d\"")
}

/// A panel's query: its outputs in a fixed order — `[x, y]` then `series` for bar, line,
/// area, pie and scatter; `[x, y, value]` for a heatmap; `[y]` for a KPI; the columns of a
/// table — grouped by the plain columns when any output aggregates.
pub fn panel_sql(
    dashboard: &Dashboard,
    panel: &Panel,
    schema: &Schema,
    selection: &Selection,
) -> Result<BoundQuery, SelectionError> {
    let e = &panel.encoding;
    // (role, field) in output order.
    let mut outputs: Vec<(&str, Field)> = Vec::new();
    match panel.kind {
        PanelKind::Table => {
            for f in &e.columns {
                outputs.push((f.column().unwrap_or(""), f.clone()));
            }
        }
        PanelKind::Kpi => outputs.extend(e.y.clone().map(|y| ("y", y))),
        _ => {
            outputs.extend(e.x.clone().map(|f| ("x", f)));
            outputs.extend(e.y.clone().map(|f| ("y", f)));
            outputs.extend(e.value.clone().map(|f| ("value", f)));
            outputs.extend(
                e.series
                    .clone()
                    .map(|s| ("series", Field::Column { name: s })),
            );
        }
    }
    let select = if outputs.is_empty() {
        "*".to_string()
    } else {
        outputs
            .iter()
            .map(|(_, f)| format!("{} AS {}", f.sql(), quote_ident(&f.label())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let aggregates = outputs.iter().any(|(_, f)| f.is_aggregate());
    let groups: Vec<String> = outputs
        .iter()
        .filter(|(_, f)| !f.is_aggregate())
        .map(|(_, f)| f.sql())
        .collect();
    let (clause, params) = where_clause(dashboard, &panel.dataset, schema, selection)?;
    let mut sql = format!(
        "SELECT {select} FROM {}{clause}",
        from_dataset(dashboard, &panel.dataset)
    );
    if aggregates && !groups.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", groups.join(", ")));
    }
    let label_of = |role: &str| -> Option<String> {
        outputs
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, f)| f.label())
    };
    let order: Vec<String> = match &e.sort {
        Some(sort) => {
            let label = if panel.kind == PanelKind::Table {
                Some(sort.key.clone())
            } else {
                label_of(&sort.key)
            };
            label
                .map(|l| {
                    let dir = if sort.descending { "DESC" } else { "ASC" };
                    vec![format!("{} {dir} NULLS LAST", quote_ident(&l))]
                })
                .unwrap_or_default()
        }
        // Default orders that make charts read well and results repeatable.
        None => match panel.kind {
            PanelKind::Pie => label_of("y")
                .map(|l| vec![format!("{} DESC NULLS LAST", quote_ident(&l))])
                .unwrap_or_default(),
            PanelKind::Bar | PanelKind::Line | PanelKind::Area | PanelKind::Heatmap => ["x", "y"]
                .iter()
                .filter(|r| panel.kind == PanelKind::Heatmap || **r == "x")
                .filter_map(|r| label_of(r))
                .map(|l| format!("{} ASC NULLS LAST", quote_ident(&l)))
                .collect(),
            _ => Vec::new(),
        },
    };
    // Keep series in a fixed order within each x as well (not a scatter's points: with a
    // limit that would keep only the first series).
    let mut order = order;
    if panel.kind != PanelKind::Scatter
        && let Some(series) = label_of("series")
    {
        order.push(format!("{} ASC NULLS LAST", quote_ident(&series)));
    }
    if !order.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    let limit = e.limit.unwrap_or(MAX_ROWS).min(MAX_ROWS);
    sql.push_str(&format!(" LIMIT {limit}"));
    Ok(BoundQuery { sql, params })
}

/// The rows behind a panel under `selection` (drill-through): every column of its dataset.
pub fn rows_sql(
    dashboard: &Dashboard,
    panel: &Panel,
    schema: &Schema,
    selection: &Selection,
) -> Result<BoundQuery, SelectionError> {
    let (clause, params) = where_clause(dashboard, &panel.dataset, schema, selection)?;
    let sql = format!(
        "SELECT * FROM {}{clause} LIMIT {DRILL_ROWS}",
        from_dataset(dashboard, &panel.dataset)
    );
    Ok(BoundQuery { sql, params })
}
