//! The dashboard file as written (YAML), before validation.

use indexmap::IndexMap;
use serde::Deserialize;

/// One dashboard file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DashboardFile {
    pub(crate) id: String,
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) datasets: IndexMap<String, DatasetFile>,
    #[serde(default)]
    pub(crate) filters: Vec<FilterFile>,
    pub(crate) panels: Vec<PanelFile>,
}

/// A named SQL query over catalog tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetFile {
    pub(crate) sql: String,
}

/// A filter control.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterFile {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) label: Option<String>,
    #[serde(rename = "type")]
    pub(crate) kind: FilterKind,
    pub(crate) column: String,
    /// Datasets it applies to (default: every dataset with the column).
    #[serde(default)]
    pub(crate) datasets: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) options: Option<OptionsFile>,
    #[serde(default)]
    pub(crate) default: Option<DefaultFile>,
}

/// The kinds of filter control.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterKind {
    /// One value from a list.
    Dropdown,
    /// Any number of values from a list.
    MultiSelect,
    /// From and to dates (either may be open).
    DateRange,
    /// From and to numbers (either may be open).
    NumberRange,
}

/// Where a filter's choices come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OptionsFile {
    /// Fixed values.
    List(Vec<ScalarText>),
    /// `{sql: ...}`: the first column of a query.
    Sql {
        /// The query.
        sql: String,
    },
}

/// A default: one value, a list, or a range `[from, to]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum DefaultFile {
    One(ScalarText),
    Many(Vec<ScalarText>),
}

/// A scalar written in YAML (string, number or boolean), kept as text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ScalarText {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl ScalarText {
    pub(crate) fn text(&self) -> String {
        match self {
            ScalarText::Bool(b) => b.to_string(),
            ScalarText::Int(i) => i.to_string(),
            ScalarText::Float(f) => f.to_string(),
            ScalarText::Text(s) => s.clone(),
        }
    }
}

/// One panel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PanelFile {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(rename = "type")]
    pub(crate) kind: PanelKind,
    pub(crate) dataset: String,
    #[serde(default)]
    pub(crate) encoding: EncodingFile,
    #[serde(default)]
    pub(crate) layout: Option<LayoutFile>,
}

/// The kinds of panel.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    /// Bars per x value.
    Bar,
    /// A line over x.
    Line,
    /// A filled line over x.
    Area,
    /// Slices per x value.
    Pie,
    /// Points at (x, y).
    Scatter,
    /// Cells at (x, y) coloured by a value.
    Heatmap,
    /// Rows.
    Table,
    /// One big number.
    Kpi,
}

/// How a panel maps its dataset's columns to the chart.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EncodingFile {
    #[serde(default)]
    pub(crate) x: Option<String>,
    #[serde(default)]
    pub(crate) y: Option<String>,
    #[serde(default)]
    pub(crate) series: Option<String>,
    #[serde(default)]
    pub(crate) value: Option<String>,
    #[serde(default)]
    pub(crate) columns: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) sort: Option<String>,
    #[serde(default)]
    pub(crate) limit: Option<u64>,
    #[serde(default)]
    pub(crate) format: Option<String>,
}

/// Where a panel sits on the 12-column grid.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LayoutFile {
    /// Column of the left edge, from 0.
    pub x: u32,
    /// Row of the top edge, from 0.
    pub y: u32,
    /// Width in columns (1 to 12).
    pub w: u32,
    /// Height in rows (1 to 12; a row is 80 pixels).
    pub h: u32,
}
