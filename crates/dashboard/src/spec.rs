//! A validated dashboard: what the API and pages serve.

use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use indexmap::IndexMap;
use serde::Serialize;

use crate::backend::QueryError;
use crate::encoding::{Field, NumberFormat, Sort};
pub use crate::model::{FilterKind, LayoutFile as Layout, PanelKind};

/// A dashboard loaded from its file.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// Id, used in URLs.
    pub id: String,
    /// Title.
    pub title: String,
    /// Free text.
    pub description: Option<String>,
    /// The file it came from.
    #[serde(skip)]
    pub file: PathBuf,
    /// Named SQL, in file order.
    #[serde(skip)]
    pub datasets: IndexMap<String, Dataset>,
    /// Filter controls, in file order.
    pub filters: Vec<Filter>,
    /// Panels, in file order.
    pub panels: Vec<Panel>,
}

impl Dashboard {
    /// The panel with this id.
    pub fn panel(&self, id: &str) -> Option<&Panel> {
        self.panels.iter().find(|p| p.id == id)
    }
}

/// A named SQL query.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its name.
    pub name: String,
    /// The query.
    pub sql: String,
    /// Its output schema, or why it could not be planned at load time (a table that does
    /// not exist yet: the dashboard still loads and its panels say so).
    pub schema: Result<SchemaRef, QueryError>,
}

/// Where a filter's choices come from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOptions {
    /// None listed (ranges).
    None,
    /// Fixed values.
    List(Vec<String>),
    /// The first column of a query.
    Sql(String),
}

/// A filter control.
#[derive(Debug, Clone, Serialize)]
pub struct Filter {
    /// Id, the URL parameter's name.
    pub id: String,
    /// Label shown.
    pub label: String,
    /// Control kind.
    #[serde(rename = "type")]
    pub kind: FilterKind,
    /// Dataset column it restricts.
    pub column: String,
    /// Datasets it applies to (`None`: every dataset with the column).
    pub datasets: Option<Vec<String>>,
    /// Choices.
    pub options: FilterOptions,
    /// Default values (`[from, to]` for ranges, an empty string for an open end).
    pub default: Vec<String>,
}

/// How a panel maps its dataset's columns.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Encoding {
    /// Categories or x axis.
    pub x: Option<Field>,
    /// Values or y axis.
    pub y: Option<Field>,
    /// A column splitting the data into series (colours).
    pub series: Option<String>,
    /// A heatmap cell's value.
    pub value: Option<Field>,
    /// A table's columns (empty: every column of the dataset).
    pub columns: Vec<Field>,
    /// Order of the rows.
    pub sort: Option<Sort>,
    /// At most this many rows.
    pub limit: Option<u64>,
    /// How numbers are shown.
    pub format: Option<NumberFormat>,
}

/// One panel.
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    /// Id, unique in its dashboard.
    pub id: String,
    /// Title shown.
    pub title: String,
    /// Kind of chart.
    #[serde(rename = "type")]
    pub kind: PanelKind,
    /// Dataset it reads.
    pub dataset: String,
    /// Column mapping.
    pub encoding: Encoding,
    /// Place on the grid (`None`: flows after the previous panel).
    pub layout: Option<Layout>,
}
