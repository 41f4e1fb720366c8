//! Reads dashboard files and checks them: their shape, names (with did-you-mean hints),
//! and every dataset's SQL planned against the catalog. Errors name the file and line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use indexmap::IndexMap;
use sluice_job::suggest;
use sluice_job::{Diagnostic, Position, SourceMap, duplicate_key_diagnostics, format_located};

use crate::backend::{QueryBackend, QueryError};
use crate::encoding::{AGGREGATES, Field, FieldError, NumberFormat, Sort};
use crate::model::{self, DefaultFile, FilterKind, OptionsFile, PanelKind};
use crate::query;
use crate::spec::{Dashboard, Dataset, Encoding, Filter, FilterOptions, Panel};

/// Rows a panel may ask for at most.
pub const MAX_ROWS: u64 = 10_000;

/// Why a dashboard file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DashboardFileError {
    /// The file (or its folder) could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not parse or does not have a dashboard's shape.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Well formed, but its contents are wrong.
    #[error("{}", render(.file, .located))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Every problem, with its place in the file when known.
        located: Vec<(Option<Position>, Diagnostic)>,
    },
}

impl DashboardFileError {
    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            DashboardFileError::Read { file, .. }
            | DashboardFileError::Syntax { file, .. }
            | DashboardFileError::Invalid { file, .. } => file,
        }
    }
}

fn render(file: &Path, located: &[(Option<Position>, Diagnostic)]) -> String {
    located
        .iter()
        .map(|(pos, d)| format_located(file, *pos, d))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What loading a folder of dashboards found.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Dashboards that loaded, sorted by id.
    pub dashboards: Vec<Dashboard>,
    /// Files that did not, each with its errors.
    pub errors: Vec<DashboardFileError>,
    /// `file:line:col: path: message` for datasets over tables that do not exist yet:
    /// their dashboards load and their panels say so.
    pub warnings: Vec<String>,
}

/// Loads every `*.yaml` / `*.yml` file in `dir` (not recursively), or `dir` alone when it
/// is a file. A file with errors is reported and the others still load.
pub async fn load_dir(dir: &Path, backend: &dyn QueryBackend) -> LoadReport {
    let mut report = LoadReport::default();
    if dir.is_file() {
        match load_file(dir, backend).await {
            Ok((dashboard, warnings)) => {
                report.dashboards.push(dashboard);
                report.warnings = warnings;
            }
            Err(e) => report.errors.push(e),
        }
        return report;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(source) => {
            report.errors.push(DashboardFileError::Read {
                file: dir.to_path_buf(),
                source,
            });
            return report;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| {
                    e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml")
                })
        })
        .collect();
    files.sort();
    let mut seen: IndexMap<String, PathBuf> = IndexMap::new();
    for file in files {
        match load_file(&file, backend).await {
            Ok((dashboard, warnings)) => {
                if let Some(first) = seen.get(&dashboard.id) {
                    report.errors.push(DashboardFileError::Invalid {
                        file: file.clone(),
                        located: vec![(
                            None,
                            Diagnostic::new(
                                "id",
                                format!(
                                    "dashboard id '{}' is already used by {}",
                                    dashboard.id,
                                    first.display()
                                ),
                            ),
                        )],
                    });
                    continue;
                }
                seen.insert(dashboard.id.clone(), file.clone());
                report.warnings.extend(warnings);
                report.dashboards.push(dashboard);
            }
            Err(e) => report.errors.push(e),
        }
    }
    report.dashboards.sort_by(|a, b| a.id.cmp(&b.id));
    report
}

/// Reads and checks one dashboard file; returns it with its warnings.
pub async fn load_file(
    file: &Path,
    backend: &dyn QueryBackend,
) -> Result<(Dashboard, Vec<String>), DashboardFileError> {
    let text = std::fs::read_to_string(file).map_err(|source| DashboardFileError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse(&text, file, backend).await
}

/// Parses and checks dashboard text; `file` is used in messages only.
pub async fn parse(
    text: &str,
    file: &Path,
    backend: &dyn QueryBackend,
) -> Result<(Dashboard, Vec<String>), DashboardFileError> {
    let source_map = SourceMap::build(text);
    if !source_map.duplicates().is_empty() {
        return Err(DashboardFileError::Invalid {
            file: file.to_path_buf(),
            located: duplicate_key_diagnostics(&source_map),
        });
    }
    let raw: model::DashboardFile = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        DashboardFileError::Syntax {
            file: file.to_path_buf(),
            line,
            column,
            message: with_hint(&e.to_string()),
        }
    })?;
    if let Some(refused) = source_map.refusal() {
        return Err(DashboardFileError::Syntax {
            file: file.to_path_buf(),
            line: refused.at.line,
            column: refused.at.column,
            message: format!("not valid YAML: {}", refused.message),
        });
    }
    let mut checker = Checker {
        diagnostics: Vec::new(),
        warnings: Vec::new(),
    };
    let dashboard = checker.dashboard(raw, file, backend).await;
    let warnings = checker
        .warnings
        .iter()
        .map(|d| format_located(file, source_map.locate(&d.path), d))
        .collect();
    if checker.diagnostics.is_empty() {
        Ok((dashboard, warnings))
    } else {
        Err(DashboardFileError::Invalid {
            file: file.to_path_buf(),
            located: checker
                .diagnostics
                .into_iter()
                .map(|d| (source_map.locate(&d.path), d))
                .collect(),
        })
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (and "unknown variant") with a
/// did-you-mean hint added.
fn with_hint(message: &str) -> String {
    let Some(rest) = message
        .split_once("unknown field `")
        .or_else(|| message.split_once("unknown variant `"))
        .map(|(_, r)| r)
    else {
        return message.to_string();
    };
    let Some((name, tail)) = rest.split_once('`') else {
        return message.to_string();
    };
    let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    let hint = suggest::hint(name, expected.iter().copied());
    if hint.is_empty() {
        return message.to_string();
    }
    format!("{message}{hint}")
}

struct Checker {
    diagnostics: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

/// Ids: letters, digits, `-` and `_` (they appear in URLs).
fn check_id(what: &str, id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{id}' is not a valid {what} id: use 1 to 128 letters, digits, '-' and '_'"
        ))
    }
}

impl Checker {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(path, message));
    }

    async fn dashboard(
        &mut self,
        raw: model::DashboardFile,
        file: &Path,
        backend: &dyn QueryBackend,
    ) -> Dashboard {
        if let Err(m) = check_id("dashboard", &raw.id) {
            self.error("id", m);
        }
        if raw.datasets.is_empty() {
            self.error("datasets", "a dashboard needs at least one dataset");
        }
        let mut datasets = IndexMap::new();
        for (name, ds) in &raw.datasets {
            let dataset = self.dataset(name, &ds.sql, backend).await;
            datasets.insert(name.clone(), dataset);
        }
        let mut filters = Vec::new();
        let mut filter_ids = HashSet::new();
        for (i, f) in raw.filters.iter().enumerate() {
            let path = format!("filters[{i}]");
            if !filter_ids.insert(f.id.clone()) {
                self.error(
                    format!("{path}.id"),
                    format!("filter id '{}' is used twice", f.id),
                );
            }
            if let Some(filter) = self.filter(&path, f, &datasets, backend).await {
                filters.push(filter);
            }
        }
        let mut panels: Vec<Panel> = Vec::new();
        let mut panel_ids = HashSet::new();
        for (i, p) in raw.panels.iter().enumerate() {
            let path = format!("panels[{i}]");
            if !panel_ids.insert(p.id.clone()) {
                self.error(
                    format!("{path}.id"),
                    format!("panel id '{}' is used twice", p.id),
                );
            }
            if let Some(panel) = self.panel(&path, p, &datasets) {
                panels.push(panel);
            }
        }
        if raw.panels.is_empty() {
            self.error("panels", "a dashboard needs at least one panel");
        }
        let dashboard = Dashboard {
            id: raw.id,
            title: raw.title,
            description: raw.description,
            file: file.to_path_buf(),
            datasets,
            filters,
            panels,
        };
        // Plan every panel's query (unfiltered), so type mistakes (`sum` of text) show now.
        if self.diagnostics.is_empty() {
            for (i, panel) in dashboard.panels.iter().enumerate() {
                let Some(ds) = dashboard.datasets.get(&panel.dataset) else {
                    continue;
                };
                let Ok(schema) = &ds.schema else { continue };
                match query::panel_sql(&dashboard, panel, schema, &query::Selection::none()) {
                    Ok(q) => {
                        if let Err(e) = backend.plan(&q.sql).await {
                            self.error(
                                format!("panels[{i}].encoding"),
                                format!("the panel's query does not plan: {e}"),
                            );
                        }
                    }
                    Err(e) => self.error(format!("panels[{i}]"), e.to_string()),
                }
            }
        }
        dashboard
    }

    async fn dataset(&mut self, name: &str, sql: &str, backend: &dyn QueryBackend) -> Dataset {
        let path = format!("datasets.{name}.sql");
        if let Err(m) = check_id("dataset", name) {
            self.error(format!("datasets.{name}"), m);
        }
        let sql = sql.trim().trim_end_matches(';').trim().to_string();
        let schema = backend.plan(&sql).await;
        match &schema {
            Ok(_) => {}
            Err(e @ QueryError::TableNotFound { .. }) | Err(e @ QueryError::Unavailable(_)) => {
                self.warnings.push(Diagnostic::new(&path, e.to_string()));
            }
            Err(e) => self.error(&path, e.to_string()),
        }
        Dataset {
            name: name.to_string(),
            sql,
            schema,
        }
    }

    /// Checks that `column` is in `schema`, suggesting a near name.
    fn column(&mut self, path: &str, column: &str, dataset: &str, schema: &Schema) -> bool {
        if schema.field_with_name(column).is_ok() {
            return true;
        }
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let hint = suggest::hint(column, names.iter().copied());
        self.error(
            path,
            format!("dataset '{dataset}' has no column '{column}'{hint}"),
        );
        false
    }

    async fn filter(
        &mut self,
        path: &str,
        f: &model::FilterFile,
        datasets: &IndexMap<String, Dataset>,
        backend: &dyn QueryBackend,
    ) -> Option<Filter> {
        if let Err(m) = check_id("filter", &f.id) {
            self.error(format!("{path}.id"), m);
        }
        // Where the filter applies, and the column's type there.
        let mut targets: Vec<&Dataset> = Vec::new();
        match &f.datasets {
            Some(names) => {
                for (j, name) in names.iter().enumerate() {
                    match datasets.get(name) {
                        Some(ds) => targets.push(ds),
                        None => {
                            let hint = suggest::hint(name, datasets.keys().map(String::as_str));
                            self.error(
                                format!("{path}.datasets[{j}]"),
                                format!("no dataset '{name}'{hint}"),
                            );
                        }
                    }
                }
            }
            None => targets.extend(datasets.values()),
        }
        let known: Vec<(&Dataset, &Schema)> = targets
            .iter()
            .filter_map(|d| d.schema.as_ref().ok().map(|s| (*d, s.as_ref())))
            .collect();
        let mut column_type: Option<DataType> = None;
        if f.datasets.is_some() {
            for (ds, schema) in &known {
                if self.column(&format!("{path}.column"), &f.column, &ds.name, schema) {
                    column_type = schema
                        .field_with_name(&f.column)
                        .ok()
                        .map(|c| c.data_type().clone());
                }
            }
        } else if !known.is_empty() {
            column_type = known
                .iter()
                .find_map(|(_, s)| s.field_with_name(&f.column).ok())
                .map(|c| c.data_type().clone());
            if column_type.is_none() {
                let names: Vec<&str> = known
                    .iter()
                    .flat_map(|(_, s)| s.fields().iter().map(|c| c.name().as_str()))
                    .collect();
                let hint = suggest::hint(&f.column, names.iter().copied());
                self.error(
                    format!("{path}.column"),
                    format!("no dataset has a column '{}'{hint}", f.column),
                );
            }
        }
        let options = match &f.options {
            None => FilterOptions::None,
            Some(OptionsFile::List(values)) => {
                FilterOptions::List(values.iter().map(|v| v.text()).collect())
            }
            Some(OptionsFile::Sql { sql }) => {
                let sql = sql.trim().trim_end_matches(';').trim().to_string();
                match backend.plan(&sql).await {
                    Ok(schema) if schema.fields().is_empty() => {
                        self.error(format!("{path}.options.sql"), "the query returns no column");
                    }
                    Ok(_) => {}
                    Err(e @ QueryError::TableNotFound { .. })
                    | Err(e @ QueryError::Unavailable(_)) => {
                        self.warnings.push(Diagnostic::new(
                            format!("{path}.options.sql"),
                            e.to_string(),
                        ));
                    }
                    Err(e) => self.error(format!("{path}.options.sql"), e.to_string()),
                }
                FilterOptions::Sql(sql)
            }
        };
        let default: Vec<String> = match &f.default {
            None => Vec::new(),
            Some(DefaultFile::One(v)) => vec![v.text()],
            Some(DefaultFile::Many(vs)) => vs.iter().map(|v| v.text()).collect(),
        };
        let is_range = matches!(f.kind, FilterKind::DateRange | FilterKind::NumberRange);
        if is_range && !default.is_empty() && default.len() != 2 {
            self.error(
                format!("{path}.default"),
                "a range's default is [from, to] (use \"\" for an open end)",
            );
        }
        if f.kind == FilterKind::Dropdown && default.len() > 1 {
            self.error(
                format!("{path}.default"),
                "a dropdown's default is one value",
            );
        }
        if is_range && matches!(f.options, Some(OptionsFile::List(_))) {
            self.error(format!("{path}.options"), "a range takes no options");
        }
        if let Some(dt) = &column_type {
            let numeric = dt.is_numeric();
            let temporal = dt.is_temporal();
            if f.kind == FilterKind::NumberRange && !numeric {
                self.error(
                    format!("{path}.type"),
                    format!("number_range on column '{}' of type {dt}", f.column),
                );
            }
            if f.kind == FilterKind::DateRange && !temporal {
                self.error(
                    format!("{path}.type"),
                    format!(
                        "date_range on column '{}' of type {dt} (cast it to a date in the dataset)",
                        f.column
                    ),
                );
            }
            for (j, v) in default.iter().enumerate() {
                if v.is_empty() && is_range {
                    continue;
                }
                if let Err(m) = typed_value(v, dt) {
                    self.error(format!("{path}.default[{j}]"), m);
                }
            }
        }
        Some(Filter {
            id: f.id.clone(),
            label: f.label.clone().unwrap_or_else(|| f.column.clone()),
            kind: f.kind,
            column: f.column.clone(),
            datasets: f.datasets.clone(),
            options,
            default,
        })
    }

    fn field(
        &mut self,
        path: &str,
        text: &str,
        dataset: &str,
        schema: Option<&Schema>,
    ) -> Option<Field> {
        let field = match Field::parse(text) {
            Ok(f) => f,
            Err(FieldError::UnknownFunction(name)) => {
                let hint = suggest::hint(&name, AGGREGATES);
                self.error(
                    path,
                    format!(
                        "unknown aggregate '{name}': expected one of {}{hint}",
                        AGGREGATES.join(", ")
                    ),
                );
                return None;
            }
            Err(FieldError::Malformed) => {
                self.error(
                    path,
                    format!(
                        "'{text}' is not a column or an aggregate such as sum(column) or count(*)"
                    ),
                );
                return None;
            }
            Err(FieldError::StarOutsideCount) => {
                self.error(path, "only count takes '*'");
                return None;
            }
        };
        if let (Some(column), Some(schema)) = (field.column(), schema)
            && !self.column(path, column, dataset, schema)
        {
            return None;
        }
        Some(field)
    }

    fn panel(
        &mut self,
        path: &str,
        p: &model::PanelFile,
        datasets: &IndexMap<String, Dataset>,
    ) -> Option<Panel> {
        if let Err(m) = check_id("panel", &p.id) {
            self.error(format!("{path}.id"), m);
        }
        let Some(ds) = datasets.get(&p.dataset) else {
            let hint = suggest::hint(&p.dataset, datasets.keys().map(String::as_str));
            self.error(
                format!("{path}.dataset"),
                format!("no dataset '{}'{hint}", p.dataset),
            );
            return None;
        };
        let schema = ds.schema.as_ref().ok().map(|s| s.as_ref());
        let e = &p.encoding;
        let ep = format!("{path}.encoding");
        let (needs_x, needs_y, needs_value) = match p.kind {
            PanelKind::Bar
            | PanelKind::Line
            | PanelKind::Area
            | PanelKind::Pie
            | PanelKind::Scatter => (true, true, false),
            PanelKind::Heatmap => (true, true, true),
            PanelKind::Kpi => (false, true, false),
            PanelKind::Table => (false, false, false),
        };
        let kind = serde_plain(p.kind);
        for (key, needed, given) in [
            ("x", needs_x, e.x.is_some()),
            ("y", needs_y, e.y.is_some()),
            ("value", needs_value, e.value.is_some()),
        ] {
            if needed && !given {
                self.error(&ep, format!("a {kind} panel needs encoding.{key}"));
            }
            if !needed && given && !(p.kind == PanelKind::Table) {
                self.error(
                    format!("{ep}.{key}"),
                    format!("a {kind} panel takes no {key}"),
                );
            }
        }
        if p.kind == PanelKind::Table {
            for key in ["x", "y", "value", "series"] {
                let given = match key {
                    "x" => e.x.is_some(),
                    "y" => e.y.is_some(),
                    "value" => e.value.is_some(),
                    _ => e.series.is_some(),
                };
                if given {
                    self.error(
                        format!("{ep}.{key}"),
                        format!("a table panel takes columns, not {key}"),
                    );
                }
            }
        } else if e.columns.is_some() {
            self.error(format!("{ep}.columns"), "only a table panel takes columns");
        }
        if e.series.is_some()
            && !matches!(
                p.kind,
                PanelKind::Bar | PanelKind::Line | PanelKind::Area | PanelKind::Scatter
            )
        {
            self.error(
                format!("{ep}.series"),
                format!("a {kind} panel takes no series"),
            );
        }
        let field = |c: &mut Self, key: &str, text: &Option<String>| {
            text.as_ref()
                .and_then(|t| c.field(&format!("{ep}.{key}"), t, &ds.name, schema))
        };
        let x = field(self, "x", &e.x);
        let y = field(self, "y", &e.y);
        let value = field(self, "value", &e.value);
        if let Some(x) = &x
            && x.is_aggregate()
        {
            self.error(format!("{ep}.x"), "x is a column, not an aggregate");
        }
        if p.kind == PanelKind::Heatmap
            && let Some(y) = &y
            && y.is_aggregate()
        {
            self.error(
                format!("{ep}.y"),
                "a heatmap's y is a column; its value aggregates",
            );
        }
        let series = e.series.as_ref().and_then(|s| {
            let path = format!("{ep}.series");
            match schema {
                Some(schema) if !self.column(&path, s, &ds.name, schema) => None,
                _ => Some(s.clone()),
            }
        });
        let mut columns = Vec::new();
        for (j, c) in e.columns.iter().flatten().enumerate() {
            if let Some(f) = self.field(&format!("{ep}.columns[{j}]"), c, &ds.name, schema) {
                columns.push(f);
            }
        }
        let sort = e.sort.as_deref().map(Sort::parse);
        if let Some(sort) = &sort {
            let mut keys: Vec<String> = Vec::new();
            if p.kind == PanelKind::Table {
                keys.extend(columns.iter().map(Field::label));
                if columns.is_empty()
                    && let Some(schema) = schema
                {
                    keys.extend(schema.fields().iter().map(|f| f.name().clone()));
                }
            } else {
                for (k, present) in [
                    ("x", x.is_some()),
                    ("y", y.is_some()),
                    ("series", series.is_some()),
                    ("value", value.is_some()),
                ] {
                    if present {
                        keys.push(k.to_string());
                    }
                }
            }
            let unknown_table_columns =
                p.kind == PanelKind::Table && columns.is_empty() && schema.is_none();
            if !keys.contains(&sort.key) && !unknown_table_columns {
                let hint = suggest::hint(&sort.key, keys.iter().map(String::as_str));
                self.error(
                    format!("{ep}.sort"),
                    format!(
                        "cannot sort by '{}': expected one of {} (prefix '-' for descending){hint}",
                        sort.key,
                        keys.join(", ")
                    ),
                );
            }
        }
        if let Some(limit) = e.limit
            && (limit == 0 || limit > MAX_ROWS)
        {
            self.error(
                format!("{ep}.limit"),
                format!("limit must be 1 to {MAX_ROWS}"),
            );
        }
        let format = e.format.as_deref().and_then(|f| {
            let parsed = NumberFormat::parse(f);
            if parsed.is_none() {
                self.error(
                    format!("{ep}.format"),
                    format!(
                        "'{f}' is not a number format: [,][.N][f|%|s], e.g. ',.0f', '.1%' or '.2s'"
                    ),
                );
            }
            parsed
        });
        if let Some(l) = p.layout {
            if l.w == 0 || l.w > 12 || l.x + l.w > 12 {
                self.error(
                    format!("{path}.layout"),
                    "the grid is 12 columns wide: need 1 <= w and x + w <= 12",
                );
            }
            if l.h == 0 || l.h > 12 {
                self.error(format!("{path}.layout.h"), "h must be 1 to 12 rows");
            }
        }
        Some(Panel {
            id: p.id.clone(),
            title: p.title.clone().unwrap_or_else(|| p.id.clone()),
            kind: p.kind,
            dataset: p.dataset.clone(),
            encoding: Encoding {
                x,
                y,
                series,
                value,
                columns,
                sort,
                limit: e.limit,
                format,
            },
            layout: p.layout,
        })
    }
}

/// The kind's name as written in files.
fn serde_plain(kind: PanelKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `text` as a value of `data_type`, or why it is not one.
pub(crate) fn typed_value(text: &str, data_type: &DataType) -> Result<ScalarValue, String> {
    match ScalarValue::try_from_string(text.to_string(), data_type) {
        Ok(v) if !v.is_null() => Ok(v),
        _ => Err(format!("'{text}' is not a value of type {data_type}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_get_a_hint() {
        let m = with_hint(
            "panels[0]: unknown field `titel`, expected one of `id`, `title`, `type` at line 3 column 5",
        );
        assert!(m.ends_with("(did you mean 'title'?)"), "{m}");
        let m = with_hint("unknown variant `bars`, expected one of `bar`, `line`");
        assert!(m.ends_with("(did you mean 'bar'?)"), "{m}");
        assert_eq!(with_hint("other"), "other");
    }
}
