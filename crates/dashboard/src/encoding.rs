//! The values an `encoding` holds: fields (a column or an aggregate of one), sort orders
//! and number formats, parsed from their written form.

use serde::Serialize;

/// An aggregate function a panel may apply to a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Rows (`count(*)`) or non-null values (`count(col)`).
    Count,
    /// Distinct non-null values.
    CountDistinct,
    /// Sum.
    Sum,
    /// Mean.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Median.
    Median,
}

/// Names of the aggregates as written, for parsing and did-you-mean hints.
pub(crate) const AGGREGATES: [&str; 7] = [
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "median",
];

impl Aggregate {
    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => Aggregate::Count,
            "count_distinct" => Aggregate::CountDistinct,
            "sum" => Aggregate::Sum,
            "avg" | "mean" => Aggregate::Avg,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "median" => Aggregate::Median,
            _ => return None,
        })
    }
}

/// A value on an axis: a dataset column, or an aggregate over one (or over rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Field {
    /// A column of the dataset.
    Column {
        /// Its name.
        name: String,
    },
    /// An aggregate; `column` is `None` for `count(*)`.
    Aggregate {
        /// The function.
        func: Aggregate,
        /// Its argument.
        column: Option<String>,
    },
}

/// Why a written field does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldError {
    /// `foo(x)` with an unknown `foo`.
    UnknownFunction(String),
    /// Malformed text.
    Malformed,
    /// `sum(*)`: only `count` takes `*`.
    StarOutsideCount,
}

impl Field {
    /// Parses `column`, `agg(column)` or `count(*)`.
    pub(crate) fn parse(text: &str) -> Result<Field, FieldError> {
        let text = text.trim();
        let Some(open) = text.find('(') else {
            if text.is_empty() || text.contains(')') {
                return Err(FieldError::Malformed);
            }
            return Ok(Field::Column {
                name: text.to_string(),
            });
        };
        let inner = text[open + 1..]
            .strip_suffix(')')
            .ok_or(FieldError::Malformed)?
            .trim();
        let name = text[..open].trim();
        let func =
            Aggregate::parse(name).ok_or_else(|| FieldError::UnknownFunction(name.to_string()))?;
        if inner.is_empty() || inner.contains(['(', ')']) {
            return Err(FieldError::Malformed);
        }
        if inner == "*" {
            if func != Aggregate::Count {
                return Err(FieldError::StarOutsideCount);
            }
            return Ok(Field::Aggregate { func, column: None });
        }
        Ok(Field::Aggregate {
            func,
            column: Some(inner.to_string()),
        })
    }

    /// The dataset column it reads, if any.
    pub fn column(&self) -> Option<&str> {
        match self {
            Field::Column { name } => Some(name),
            Field::Aggregate { column, .. } => column.as_deref(),
        }
    }

    /// Whether it aggregates rows.
    pub fn is_aggregate(&self) -> bool {
        matches!(self, Field::Aggregate { .. })
    }

    /// The name of its output column: the column, or the aggregate as written canonically.
    pub fn label(&self) -> String {
        match self {
            Field::Column { name } => name.clone(),
            Field::Aggregate { func, column } => {
                let f = AGGREGATES[*func as usize];
                format!("{f}({})", column.as_deref().unwrap_or("*"))
            }
        }
    }

    /// Its SQL expression over the dataset (column names quoted).
    pub(crate) fn sql(&self) -> String {
        match self {
            Field::Column { name } => quote_ident(name),
            Field::Aggregate { func, column } => {
                let arg = column.as_deref().map_or("*".to_string(), quote_ident);
                match func {
                    Aggregate::CountDistinct => format!("count(DISTINCT {arg})"),
                    other => format!("{}({arg})", AGGREGATES[*other as usize]),
                }
            }
        }
    }
}

/// `"name"` with inner quotes doubled: a SQL identifier, whatever its characters.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Which output a panel sorts by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sort {
    /// `x`, `y`, `series`, `value` or a column of a table panel.
    pub key: String,
    /// Largest first.
    pub descending: bool,
}

impl Sort {
    /// Parses `key` or `-key`.
    pub(crate) fn parse(text: &str) -> Sort {
        let text = text.trim();
        match text.strip_prefix('-') {
            Some(rest) => Sort {
                key: rest.trim().to_string(),
                descending: true,
            },
            None => Sort {
                key: text.trim_start_matches('+').to_string(),
                descending: false,
            },
        }
    }
}

/// A number format: `[,][.N][f|%|s]` (thousands separators, N decimals, fixed, percent of
/// 1, or compact such as `1.2k`), a subset of d3-format's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NumberFormat {
    /// Thousands separators.
    pub grouping: bool,
    /// Digits after the point, if fixed.
    pub decimals: Option<u8>,
    /// `f`, `%` or `s`.
    pub style: char,
}

impl NumberFormat {
    /// Parses the written format.
    pub(crate) fn parse(text: &str) -> Option<NumberFormat> {
        let mut rest = text.trim();
        let grouping = match rest.strip_prefix(',') {
            Some(r) => {
                rest = r;
                true
            }
            None => false,
        };
        let mut decimals = None;
        if let Some(r) = rest.strip_prefix('.') {
            let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
            let n: u8 = digits.parse().ok().filter(|n| *n <= 12)?;
            decimals = Some(n);
            rest = &r[digits.len()..];
        }
        let style = match rest {
            "" | "f" => 'f',
            "%" => '%',
            "s" => 's',
            _ => return None,
        };
        Some(NumberFormat {
            grouping,
            decimals,
            style,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse() {
        assert_eq!(
            Field::parse("count(*)"),
            Ok(Field::Aggregate {
                func: Aggregate::Count,
                column: None
            })
        );
        assert_eq!(
            Field::parse(" avg( track_popularity )").map(|f| f.label()),
            Ok("avg(track_popularity)".to_string())
        );
        assert_eq!(
            Field::parse("count_distinct(a)").map(|f| f.sql()),
            Ok("count(DISTINCT \"a\")".to_string())
        );
        assert_eq!(
            Field::parse("averge(x)"),
            Err(FieldError::UnknownFunction("averge".into()))
        );
        assert_eq!(Field::parse("sum(*)"), Err(FieldError::StarOutsideCount));
        assert_eq!(Field::parse("sum(x"), Err(FieldError::Malformed));
    }

    #[test]
    fn formats_parse() {
        let f = NumberFormat::parse(",.1f");
        assert_eq!(
            f,
            Some(NumberFormat {
                grouping: true,
                decimals: Some(1),
                style: 'f'
            })
        );
        assert_eq!(NumberFormat::parse(".0%").map(|f| f.style), Some('%'));
        assert_eq!(NumberFormat::parse("s").map(|f| f.decimals), Some(None));
        assert_eq!(NumberFormat::parse("0,0"), None);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
