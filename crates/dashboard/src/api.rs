//! The JSON API: dashboards, panel data (JSON or CSV), drill-through rows, filter options,
//! the catalog, runs and the SQL workbench.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::backend::{QueryError, QueryResult};
use crate::output::{to_csv, to_json};
use crate::query::{BoundQuery, Selection, SelectionError, panel_sql, rows_sql};
use crate::session::Viewer;
use crate::spec::{Dashboard, FilterOptions, Panel};
use crate::state::DashboardState;

/// Parameters that are not filters.
const FORMAT_PARAM: &str = "format";

/// An API failure: a status and `{"error": {"kind": ..., "message": ...}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        let status = match &e {
            QueryError::TableNotFound { .. } => StatusCode::NOT_FOUND,
            QueryError::ReadOnly(_) => StatusCode::FORBIDDEN,
            QueryError::Invalid(_) => StatusCode::BAD_REQUEST,
            QueryError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            QueryError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, e.kind(), e.to_string())
    }
}

impl From<SelectionError> for ApiError {
    fn from(e: SelectionError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_filter", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "kind": self.kind, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

/// Query parameters as pairs, in order (a multi-select repeats its name).
type Params = Query<Vec<(String, String)>>;

fn wants_csv(params: &[(String, String)]) -> bool {
    params
        .iter()
        .any(|(k, v)| k == FORMAT_PARAM && v.eq_ignore_ascii_case("csv"))
}

/// The JSON of a dashboard's list entry.
pub(crate) fn summary(d: &Dashboard) -> Value {
    json!({
        "id": d.id,
        "title": d.title,
        "description": d.description,
        "filters": d.filters,
        "panels": d.panels,
    })
}

/// `GET /api/dashboards`: `[{"id", "title", "panels": [{"id", …}]}]`.
pub(crate) async fn list_dashboards(State(state): State<DashboardState>) -> Json<Value> {
    let loaded = state.current().await;
    Json(Value::Array(
        loaded.dashboards.iter().map(|d| summary(d)).collect(),
    ))
}

/// `GET /api/dashboard-errors`: files that did not load, and datasets over missing tables.
pub(crate) async fn load_errors(State(state): State<DashboardState>) -> Json<Value> {
    let loaded = state.current().await;
    Json(json!({ "errors": loaded.errors, "warnings": loaded.warnings }))
}

/// `GET /api/dashboards/{id}`.
pub(crate) async fn get_dashboard(
    State(state): State<DashboardState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = find_dashboard(&state, &id).await?;
    Ok(Json(summary(&d)))
}

pub(crate) async fn find_dashboard(
    state: &DashboardState,
    id: &str,
) -> Result<Arc<Dashboard>, ApiError> {
    state
        .current()
        .await
        .dashboard(id)
        .ok_or_else(|| ApiError::not_found(format!("no dashboard '{id}'")))
}

fn find_panel<'a>(d: &'a Dashboard, panel: &str) -> Result<&'a Panel, ApiError> {
    d.panel(panel).ok_or_else(|| {
        let hint = sluice_job::suggest::hint(panel, d.panels.iter().map(|p| p.id.as_str()));
        ApiError::not_found(format!("dashboard '{}' has no panel '{panel}'{hint}", d.id))
    })
}

/// Which query a panel request wants.
#[derive(Clone, Copy)]
enum Want {
    Chart,
    Rows,
}

/// Builds and runs a panel's query for the request's filters.
async fn panel_result(
    state: &DashboardState,
    id: &str,
    panel: &str,
    params: &[(String, String)],
    want: Want,
) -> Result<(Arc<QueryResult>, bool), ApiError> {
    let d = find_dashboard(state, id).await?;
    let p = find_panel(&d, panel)?;
    let dataset = d
        .datasets
        .get(&p.dataset)
        .ok_or_else(|| ApiError::not_found(format!("no dataset '{}'", p.dataset)))?;
    let schema = dataset.schema.clone().map_err(ApiError::from)?;
    let selection = Selection::from_params(&d, params, &[FORMAT_PARAM])?;
    let query: BoundQuery = match want {
        Want::Chart => panel_sql(&d, p, &schema, &selection)?,
        Want::Rows => rows_sql(&d, p, &schema, &selection)?,
    };
    Ok(state.run_cached(&query).await?)
}

fn respond(
    result: &QueryResult,
    csv: bool,
    name: &str,
    cached: bool,
) -> Result<Response, ApiError> {
    let internal = |e: arrow::error::ArrowError| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "failed", e.to_string())
    };
    if csv {
        let body = to_csv(result).map_err(internal)?;
        let disposition = format!("attachment; filename=\"{name}.csv\"");
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            body,
        )
            .into_response());
    }
    let mut body = to_json(result).map_err(internal)?;
    body["cached"] = Value::Bool(cached);
    Ok(Json(body).into_response())
}

/// `GET /api/dashboards/{id}/panels/{panel}/data?<filter>=<value>…[&format=csv]`.
pub(crate) async fn panel_data(
    State(state): State<DashboardState>,
    Path((id, panel)): Path<(String, String)>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let (result, cached) = panel_result(&state, &id, &panel, &params, Want::Chart).await?;
    respond(
        &result,
        wants_csv(&params),
        &format!("{id}-{panel}"),
        cached,
    )
}

/// `GET /api/dashboards/{id}/panels/{panel}/rows?…`: the dataset's rows behind the panel.
pub(crate) async fn panel_rows(
    State(state): State<DashboardState>,
    Path((id, panel)): Path<(String, String)>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let (result, cached) = panel_result(&state, &id, &panel, &params, Want::Rows).await?;
    respond(
        &result,
        wants_csv(&params),
        &format!("{id}-{panel}-rows"),
        cached,
    )
}

/// `GET /api/dashboards/{id}/filters/{filter}/options`: `{"values": [...]}`.
pub(crate) async fn filter_options(
    State(state): State<DashboardState>,
    Path((id, filter)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let d = find_dashboard(&state, &id).await?;
    let f = d
        .filters
        .iter()
        .find(|f| f.id == filter)
        .ok_or_else(|| ApiError::not_found(format!("no filter '{filter}'")))?;
    let values: Vec<Value> = match &f.options {
        FilterOptions::None => Vec::new(),
        FilterOptions::List(vs) => vs.iter().map(|v| Value::String(v.clone())).collect(),
        FilterOptions::Sql(sql) => {
            let query = BoundQuery {
                sql: sql.clone(),
                params: Vec::new(),
            };
            let (result, _) = state.run_cached(&query).await?;
            let json = to_json(&result).map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "failed", e.to_string())
            })?;
            json["rows"]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .filter_map(|r| r.get(0).cloned())
                        .filter(|v| !v.is_null())
                        .map(|v| match v {
                            Value::String(s) => Value::String(s),
                            other => Value::String(other.to_string()),
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
    };
    Ok(Json(json!({ "values": values })))
}

/// `GET /api/catalog`: every table with its columns, partitions, version, rows and run.
pub(crate) async fn catalog(State(state): State<DashboardState>) -> Result<Json<Value>, ApiError> {
    let tables = state.0.catalog.list_tables().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )
    })?;
    Ok(Json(
        json!({ "kind": state.0.catalog.kind(), "tables": tables }),
    ))
}

/// `GET /api/runs`: job runs, newest first, or 404 when this server has none.
pub(crate) async fn runs(State(state): State<DashboardState>) -> Result<Json<Value>, ApiError> {
    let Some(runs) = &state.0.options.runs else {
        return Err(ApiError::not_found(
            "no job service here: runs are listed by the scheduler (the embedded mode runs jobs with `sluice run`)",
        ));
    };
    let list = runs.list_runs(200).await?;
    Ok(Json(json!({ "runs": list })))
}

/// The workbench's request.
#[derive(Deserialize)]
pub(crate) struct SqlRequest {
    sql: String,
}

/// Rows the workbench returns at most.
const WORKBENCH_ROWS: usize = 10_000;

/// `POST /api/sql` `{"sql": …}` (`?format=csv` for CSV): runs one read-only query.
pub(crate) async fn run_sql(
    State(state): State<DashboardState>,
    viewer: Option<Extension<Viewer>>,
    Query(params): Params,
    Json(request): Json<SqlRequest>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let sql = request.sql.trim().trim_end_matches(';');
    let result = state.0.backend.run(sql, Vec::new()).await?;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if wants_csv(&params) {
        return respond(&result, true, "query", false);
    }
    let total: usize = result.batches.iter().map(|b| b.num_rows()).sum();
    let mut kept = Vec::new();
    let mut left = WORKBENCH_ROWS;
    for b in &result.batches {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        kept.push(b.slice(0, take));
        left -= take;
    }
    let shown = QueryResult {
        schema: result.schema.clone(),
        batches: kept,
    };
    let mut body = to_json(&shown)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "failed", e.to_string()))?;
    body["elapsed_ms"] = json!(elapsed_ms);
    body["row_count"] = json!(total);
    body["truncated"] = json!(total > WORKBENCH_ROWS);
    // The whole result is kept in the lake after this answer (see workbench.rs).
    body["result_id"] = json!(crate::workbench::keep(
        &state,
        viewer.as_deref(),
        sql,
        result,
        started_at,
        elapsed_ms
    ));
    Ok(Json(body).into_response())
}

/// `GET /api/cache`: hits, misses, entries and bytes.
pub(crate) async fn cache_stats(State(state): State<DashboardState>) -> Json<Value> {
    Json(json!(state.cache().stats()))
}
