//! The playground: build a panel in the browser (dataset, fields on x / y / colour, a
//! visual, a preview) and save it into a dashboard file as the YAML a person would write.
//!
//! Every preview and save builds the whole dashboard file the save would write
//! ([`crate::save`]) and checks it with the loader ([`load::parse`]): what the preview
//! shows is what the file will serve, and a save that would not load is refused with the
//! loader's message. Saving needs a role that may write dashboards
//! ([`Action::WriteDashboards`]) when the server has users.

use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_flight_sql::Action;

use crate::api::ApiError;
use crate::load;
use crate::model::{DashboardFile, DatasetFile, EncodingFile, LayoutFile, PanelFile, PanelKind};
use crate::output::to_json;
use crate::pages::{escape, page};
use crate::query::{Selection, panel_sql};
use crate::save::{header_comment, read_model, to_yaml, write_atomically};
use crate::session::Viewer;
use crate::spec::Dashboard;
use crate::state::DashboardState;

/// One save at a time, so two saves into one file cannot lose either's panel.
static SAVING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The playground's page and API routes.
pub(crate) fn routes() -> Router<DashboardState> {
    Router::new()
        .route("/playground", get(playground_page))
        .route("/api/playground", get(info))
        .route("/api/playground/columns", post(columns))
        .route("/api/playground/preview", post(preview))
        .route("/api/playground/save", post(save))
}

type MaybeViewer = Option<Extension<Viewer>>;

/// What the browser built: the dashboard to add to, the dataset, and the panel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Draft {
    /// Id of an existing dashboard, or of a new one.
    dashboard: String,
    /// A new dashboard's title (ignored for an existing one).
    #[serde(default)]
    title: Option<String>,
    /// The dataset the panel reads.
    dataset: String,
    /// A new dataset's SQL (`None`: the dashboard's dataset of that name).
    #[serde(default)]
    sql: Option<String>,
    /// The panel, as the file would have it.
    panel: PanelDraft,
}

/// A panel as the browser built it; fields are written as in files (`count(*)`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PanelDraft {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(rename = "type")]
    kind: PanelKind,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    series: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    columns: Option<Vec<String>>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    format: Option<String>,
}

/// `Some(trimmed)` unless empty.
fn given(text: &Option<String>) -> Option<String> {
    text.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

impl PanelDraft {
    fn to_file(&self, dataset: &str, layout: Option<LayoutFile>) -> PanelFile {
        let columns = self
            .columns
            .as_ref()
            .map(|c| {
                c.iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|c| !c.is_empty());
        PanelFile {
            id: self.id.trim().to_string(),
            title: given(&self.title),
            kind: self.kind,
            dataset: dataset.to_string(),
            encoding: EncodingFile {
                x: given(&self.x),
                y: given(&self.y),
                series: given(&self.series),
                value: given(&self.value),
                columns,
                sort: given(&self.sort),
                limit: self.limit,
                format: given(&self.format),
            },
            layout,
        }
    }
}

/// Ids as the loader accepts them; checked before one names a file.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn bad_request(kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, kind, message)
}

/// The dashboard file a draft gives: where it goes, its YAML, and the loader's reading of it.
struct Candidate {
    file: PathBuf,
    yaml: String,
    dashboard: Dashboard,
    is_new: bool,
}

/// Where a new dashboard's file goes, or why it cannot go anywhere.
fn new_file(state: &DashboardState, id: &str) -> Result<PathBuf, String> {
    match &state.0.options.dashboards_dir {
        Some(dir) if dir.is_dir() => Ok(dir.join(format!("{id}.yaml"))),
        Some(file) => Err(format!(
            "a new dashboard needs a folder, but --dashboards names the file {}: restart the \
             server with --dashboards DIR (a folder of dashboard files) to save new dashboards",
            file.display()
        )),
        None => Err(
            "a new dashboard needs a folder: restart the server with --dashboards DIR \
                     (a folder of dashboard files) to save dashboards"
                .to_string(),
        ),
    }
}

/// Builds the file a draft gives and checks it with the loader.
async fn candidate(state: &DashboardState, draft: &Draft) -> Result<Candidate, ApiError> {
    let id = draft.dashboard.trim();
    if !valid_id(id) {
        return Err(bad_request(
            "bad_id",
            format!(
                "'{id}' is not a valid dashboard id: use 1 to 128 letters, digits, '-' and '_'"
            ),
        ));
    }
    let loaded = state.current().await;
    let (file, mut model, header, is_new) = match loaded.dashboard(id) {
        Some(d) => {
            let text = std::fs::read_to_string(&d.file).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "read",
                    format!("{}: {e}", d.file.display()),
                )
            })?;
            let model = read_model(&text, &d.file).map_err(|e| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "changed",
                    format!("{e} (fix the file first)"),
                )
            })?;
            (d.file.clone(), model, header_comment(&text), false)
        }
        None => {
            // Without a folder a preview still works (it writes nothing); the save says why
            // it cannot.
            let (file, in_folder) = match new_file(state, id) {
                Ok(f) => (f, true),
                Err(_) => (PathBuf::from(format!("{id}.yaml")), false),
            };
            if in_folder && file.exists() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "exists",
                    format!(
                        "{} exists but did not load (see /dashboards): fix it, or pick another id",
                        file.display()
                    ),
                ));
            }
            let title = given(&draft.title).unwrap_or_else(|| id.to_string());
            let model = DashboardFile {
                id: id.to_string(),
                title,
                description: None,
                datasets: Default::default(),
                filters: Vec::new(),
                panels: Vec::new(),
            };
            (file, model, String::new(), true)
        }
    };
    let dataset = draft.dataset.trim();
    if let Some(sql) = given(&draft.sql) {
        let sql = sql.trim_end_matches(';').trim().to_string();
        match model.datasets.get(dataset) {
            Some(existing) if existing.sql.trim().trim_end_matches(';').trim() != sql => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "dataset_exists",
                    format!(
                        "dashboard '{id}' already has a dataset '{dataset}' with other SQL: pick \
                         it, or name the new one differently"
                    ),
                ));
            }
            Some(_) => {}
            None => {
                model.datasets.insert(
                    dataset.to_string(),
                    DatasetFile {
                        sql: format!("{sql}\n"),
                    },
                );
            }
        }
    }
    let panel_id = draft.panel.id.trim();
    match model.panels.iter().position(|p| p.id == panel_id) {
        // The same id replaces that panel where it is, keeping its place on the grid.
        Some(i) => {
            let layout = model.panels[i].layout;
            model.panels[i] = draft.panel.to_file(dataset, layout);
        }
        None => {
            let layout = next_place(&model.panels, draft.panel.kind);
            model.panels.push(draft.panel.to_file(dataset, layout));
        }
    }
    let yaml = to_yaml(&model, &header);
    let (dashboard, _warnings) = load::parse(&yaml, &file, state.0.backend.as_ref())
        .await
        .map_err(|e| bad_request("invalid", e.to_string()))?;
    Ok(Candidate {
        file,
        yaml,
        dashboard,
        is_new,
    })
}

/// A new panel's place: below every placed panel, when the others are placed.
fn next_place(panels: &[PanelFile], kind: PanelKind) -> Option<LayoutFile> {
    let bottom = panels
        .iter()
        .filter_map(|p| p.layout)
        .map(|l| l.y + l.h)
        .max()?;
    let (w, h) = match kind {
        PanelKind::Kpi => (4, 2),
        PanelKind::Table => (12, 5),
        _ => (6, 4),
    };
    Some(LayoutFile {
        x: 0,
        y: bottom,
        w,
        h,
    })
}

/// Whether the viewer may save, or the refusal's status and message.
fn may_write(state: &DashboardState, viewer: Option<&Viewer>) -> Result<(), (StatusCode, String)> {
    if state.0.options.auth.is_none() {
        return Ok(());
    }
    match viewer.and_then(|v| v.user.as_ref()) {
        Some(u) if u.role.allows(Action::WriteDashboards) => Ok(()),
        Some(u) => Err((
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not write dashboards (an engineer or admin may): user '{}' can \
                 preview, not save",
                u.role, u.name
            ),
        )),
        None => Err((StatusCode::UNAUTHORIZED, "log in first".to_string())),
    }
}

/// The dashboards with their datasets' columns, for the page's pickers.
async fn info_json(state: &DashboardState, viewer: Option<&Viewer>) -> Value {
    let loaded = state.current().await;
    let dashboards: Vec<Value> = loaded
        .dashboards
        .iter()
        .map(|d| {
            let datasets: Vec<Value> = d
                .datasets
                .values()
                .map(|ds| match &ds.schema {
                    Ok(schema) => json!({
                        "name": ds.name,
                        "sql": ds.sql,
                        "columns": schema_columns(schema),
                    }),
                    Err(e) => json!({ "name": ds.name, "sql": ds.sql, "columns": [], "error": e.to_string() }),
                })
                .collect();
            json!({
                "id": d.id,
                "title": d.title,
                "file": d.file.display().to_string(),
                "datasets": datasets,
                "panels": d.panels.iter().map(|p| json!({"id": p.id, "title": p.title})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let save_refusal = may_write(state, viewer).err().map(|(_, m)| m);
    let folder = new_file(state, "x").err();
    json!({
        "dashboards": dashboards,
        "can_save": save_refusal.is_none(),
        "save_refusal": save_refusal,
        "new_dashboards": folder.is_none(),
        "new_dashboard_refusal": folder,
    })
}

fn schema_columns(schema: &arrow::datatypes::Schema) -> Vec<Value> {
    schema
        .fields()
        .iter()
        .map(|f| {
            json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "numeric": f.data_type().is_numeric(),
            })
        })
        .collect()
}

/// `GET /playground`.
async fn playground_page(State(state): State<DashboardState>, viewer: MaybeViewer) -> Html<String> {
    let boot = info_json(&state, viewer.as_deref()).await;
    let notice = match boot["save_refusal"].as_str() {
        Some(m) => format!("<p class=\"warnings\" id=\"pg-readonly\">{}</p>", escape(m)),
        None => String::new(),
    };
    let body = format!(
        "<h1>Build a panel</h1>{notice}{PAGE}\
         <script id=\"playground\" type=\"application/json\">{}</script>\
         <script src=\"/assets/echarts.min.js\"></script><script src=\"/assets/dashboard.js\"></script>\
         <script src=\"/assets/playground.js\"></script>",
        boot.to_string().replace("</", "<\\/"),
    );
    page("Build", "/playground", viewer.as_deref(), &body)
}

/// The page's controls; assets/playground.js fills and wires them.
const PAGE: &str = r#"<style>
.pg { display: grid; grid-template-columns: minmax(300px, 380px) 1fr; gap: 16px; align-items: start; }
.pg form { display: grid; gap: 8px; }
.pg label { display: grid; gap: 2px; font-size: 13px; color: var(--muted); }
.pg .row { display: flex; gap: 8px; } .pg .row > * { flex: 1; }
.pg textarea { font: 12px ui-monospace, monospace; min-height: 90px; }
.pg .hidden { display: none; }
#pg-fields { font-size: 12px; color: var(--muted); }
#pg-preview { height: 360px; }
#pg-yaml { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px; font-size: 12px; overflow: auto; max-height: 420px; }
</style>
<div class="pg"><form id="pg-form" class="card" onsubmit="return false">
<label>Dashboard <select id="pg-dashboard"></select></label>
<div id="pg-new" class="row hidden"><label>Id <input id="pg-new-id" placeholder="my_dashboard"></label><label>Title <input id="pg-new-title"></label></div>
<label>Dataset <select id="pg-dataset"></select></label>
<div id="pg-new-dataset" class="hidden"><label>Name <input id="pg-dataset-name" placeholder="tracks"></label>
<label>SQL over database.table <textarea id="pg-sql" placeholder="SELECT * FROM spotify.tracks"></textarea></label>
<div class="muted" id="pg-tables"></div><button type="button" id="pg-plan">Get columns</button></div>
<div id="pg-fields"></div>
<label>Visual <select id="pg-type"><option>bar</option><option>line</option><option>area</option><option>pie</option><option>scatter</option><option>heatmap</option><option>table</option><option>kpi</option></select></label>
<div class="row"><label id="pg-x-box">X <select id="pg-x"></select></label></div>
<div class="row" id="pg-y-box"><label>Y aggregate <select id="pg-y-agg"><option value="">(none)</option><option>count</option><option>sum</option><option>avg</option><option>min</option><option>max</option><option>count_distinct</option><option>median</option></select></label><label>Y <select id="pg-y"></select></label></div>
<div class="row" id="pg-value-box"><label>Value aggregate <select id="pg-value-agg"><option>count</option><option>sum</option><option>avg</option><option>min</option><option>max</option></select></label><label>Value <select id="pg-value"></select></label></div>
<label id="pg-series-box">Series (colour) <select id="pg-series"></select></label>
<label id="pg-columns-box">Columns <select id="pg-columns" multiple size="6"></select></label>
<div class="row"><label>Sort <select id="pg-sort"></select></label><label>Limit <input id="pg-limit" type="number" min="1" max="10000"></label><label>Format <input id="pg-format" placeholder=",.0f"></label></div>
<div class="row"><label>Panel id <input id="pg-panel-id" placeholder="tracks_per_type"></label><label>Title <input id="pg-panel-title"></label></div>
<div class="toolbar"><button type="button" id="pg-save">Add to dashboard</button><span id="pg-status" class="muted"></span></div>
<div id="pg-saved"></div>
</form>
<div><section class="panel"><div class="panel-head"><h3 id="pg-preview-title">Preview</h3></div>
<div class="panel-body" id="pg-preview"></div></section>
<h2>The file</h2><pre id="pg-yaml"></pre></div></div>"#;

/// `GET /api/playground`: the dashboards, their datasets and columns, and whether this
/// user may save.
async fn info(State(state): State<DashboardState>, viewer: MaybeViewer) -> Json<Value> {
    Json(info_json(&state, viewer.as_deref()).await)
}

/// Body of `POST /api/playground/columns`.
#[derive(Deserialize)]
struct SqlBody {
    sql: String,
}

/// `POST /api/playground/columns`: the columns of new dataset SQL (planned, not run).
async fn columns(
    State(state): State<DashboardState>,
    Json(body): Json<SqlBody>,
) -> Result<Json<Value>, ApiError> {
    let sql = body.sql.trim().trim_end_matches(';').trim();
    let schema = state.0.backend.plan(sql).await.map_err(ApiError::from)?;
    Ok(Json(json!({ "columns": schema_columns(&schema) })))
}

/// `POST /api/playground/preview`: the file the draft gives, its panel as the dashboard
/// page draws it, and the panel's data (or the query's error, shown in the panel).
async fn preview(
    State(state): State<DashboardState>,
    Json(draft): Json<Draft>,
) -> Result<Json<Value>, ApiError> {
    let c = candidate(&state, &draft).await?;
    let panel_id = draft.panel.id.trim();
    let panel = c
        .dashboard
        .panel(panel_id)
        .ok_or_else(|| bad_request("invalid", format!("no panel '{panel_id}'")))?;
    let (ok, data) = match panel_data(&state, &c.dashboard, panel_id).await {
        Ok(v) => (true, v),
        Err((kind, message)) => (
            false,
            json!({ "error": { "kind": kind, "message": message } }),
        ),
    };
    Ok(Json(json!({
        "yaml": c.yaml,
        "file": c.file.display().to_string(),
        "new": c.is_new,
        "panel": panel,
        "ok": ok,
        "data": data,
    })))
}

/// The panel's data as the data API answers it (filter defaults applied), or the error's
/// kind and message.
async fn panel_data(
    state: &DashboardState,
    dashboard: &Dashboard,
    panel_id: &str,
) -> Result<Value, (&'static str, String)> {
    let panel = dashboard
        .panel(panel_id)
        .ok_or_else(|| ("invalid", format!("no panel '{panel_id}'")))?;
    let dataset = dashboard
        .datasets
        .get(&panel.dataset)
        .ok_or_else(|| ("invalid", format!("no dataset '{}'", panel.dataset)))?;
    let schema = dataset
        .schema
        .clone()
        .map_err(|e| (e.kind(), e.to_string()))?;
    let query = panel_sql(dashboard, panel, &schema, &Selection::default())
        .map_err(|e| ("bad_filter", e.to_string()))?;
    let (result, _) = state
        .run_cached(&query)
        .await
        .map_err(|e| (e.kind(), e.to_string()))?;
    to_json(&result).map_err(|e| ("failed", e.to_string()))
}

/// `POST /api/playground/save`: writes the draft's dashboard file (atomically) after the
/// loader accepted it; the dashboards reload from it.
async fn save(
    State(state): State<DashboardState>,
    viewer: MaybeViewer,
    Json(draft): Json<Draft>,
) -> Result<Json<Value>, ApiError> {
    if let Err((status, message)) = may_write(&state, viewer.as_deref()) {
        let kind = if status == StatusCode::FORBIDDEN {
            "forbidden"
        } else {
            "unauthenticated"
        };
        return Err(ApiError::new(status, kind, message));
    }
    let _one_at_a_time = SAVING.lock().await;
    let c = candidate(&state, &draft).await?;
    if c.is_new
        && let Err(message) = new_file(&state, &c.dashboard.id)
    {
        return Err(ApiError::new(StatusCode::CONFLICT, "no_folder", message));
    }
    write_atomically(&c.file, &c.yaml)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "write", e.to_string()))?;
    let summary = state.reload().await;
    let id = c.dashboard.id.clone();
    if !summary.loaded.contains(&id) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "not_loaded",
            format!(
                "{} was written but did not load: {}",
                c.file.display(),
                summary.errors.join("\n")
            ),
        ));
    }
    tracing::info!(dashboard = %id, file = %c.file.display(), panel = %draft.panel.id, "playground saved a panel");
    Ok(Json(json!({
        "id": id,
        "panel": draft.panel.id.trim(),
        "file": file_name(&c.file),
        "url": format!("/dashboards/{id}"),
        "yaml": c.yaml,
    })))
}

fn file_name(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
