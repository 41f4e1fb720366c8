//! Server-rendered HTML pages: the dashboard list, a dashboard, a panel's rows, the
//! catalog, the runs and the SQL workbench. Charts and tables are drawn by the embedded
//! scripts from the JSON API.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::api::summary;
use crate::session::Viewer;
use crate::spec::PanelKind;
use crate::state::DashboardState;

/// Text safe inside HTML elements and quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: header with navigation (and the user with a logout button), then `body`.
pub(crate) fn page(title: &str, here: &str, viewer: Option<&Viewer>, body: &str) -> Html<String> {
    let nav = [
        ("/dashboards", "Dashboards"),
        ("/catalog", "Catalog"),
        ("/runs", "Runs"),
        ("/sql", "SQL"),
        ("/playground", "Build"),
    ]
    .iter()
    .map(|(href, label)| {
        let class = if *href == here { " class=\"here\"" } else { "" };
        format!("<a href=\"{href}\"{class}>{label}</a>")
    })
    .collect::<String>();
    let user = match viewer.and_then(|v| v.user.as_ref()) {
        Some(u) => format!(
            "<form method=\"post\" action=\"/logout\"><span class=\"muted\">{} ({})</span> \
             <button>Log out</button></form>",
            escape(&u.name),
            u.role,
        ),
        None => String::new(),
    };
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Sluice</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
         <body><header><span class=\"brand\">Sluice</span>{nav}{user}</header><main>{body}</main></body></html>",
        escape(title)
    ))
}

/// JSON safe inside a `<script>` element.
fn script_json(value: &serde_json::Value) -> String {
    value.to_string().replace("</", "<\\/")
}

type MaybeViewer = Option<Extension<Viewer>>;

/// `GET /`: the dashboard list.
pub(crate) async fn index() -> Redirect {
    Redirect::to("/dashboards")
}

/// `GET /dashboards`.
pub(crate) async fn dashboards(
    State(state): State<DashboardState>,
    viewer: MaybeViewer,
) -> Html<String> {
    let loaded = state.current().await;
    let mut body = String::from("<h1>Dashboards</h1>");
    if state.0.options.dashboards_dir.is_none() {
        body.push_str("<p class=\"muted\">No dashboards folder: start the server with <code>--dashboards DIR</code>.</p>");
    } else if loaded.dashboards.is_empty() {
        body.push_str("<p class=\"muted\">No dashboards loaded yet.</p>");
    }
    for d in &loaded.dashboards {
        let _ = write!(
            body,
            "<div class=\"card\"><a href=\"/dashboards/{}\"><strong>{}</strong></a> \
             <span class=\"muted\">{} panels</span>{}</div>",
            escape(&d.id),
            escape(&d.title),
            d.panels.len(),
            d.description
                .as_deref()
                .map(|t| format!("<div class=\"muted\">{}</div>", escape(t)))
                .unwrap_or_default(),
        );
    }
    if !loaded.errors.is_empty() {
        let _ = write!(
            body,
            "<h2>Files that did not load</h2><div class=\"problems\" id=\"load-errors\">{}</div>",
            escape(&loaded.errors.join("\n"))
        );
    }
    if !loaded.warnings.is_empty() {
        let _ = write!(
            body,
            "<h2>Waiting for tables</h2><div class=\"warnings\">{}</div>",
            escape(&loaded.warnings.join("\n"))
        );
    }
    page("Dashboards", "/dashboards", viewer.as_deref(), &body)
}

/// `GET /dashboards/{id}`.
pub(crate) async fn dashboard(
    State(state): State<DashboardState>,
    Path(id): Path<String>,
    viewer: MaybeViewer,
) -> Response {
    let Some(d) = state.current().await.dashboard(&id) else {
        let body = format!(
            "<h1>No dashboard '{}'</h1><p><a href=\"/dashboards\">All dashboards</a></p>",
            escape(&id)
        );
        return (
            StatusCode::NOT_FOUND,
            page("Not found", "/dashboards", viewer.as_deref(), &body),
        )
            .into_response();
    };
    let mut grid = String::new();
    for p in &d.panels {
        let place = match p.layout {
            Some(l) => format!(
                "grid-column: {} / span {}; grid-row: {} / span {}",
                l.x + 1,
                l.w,
                l.y + 1,
                l.h
            ),
            None => "grid-column: span 6; grid-row: span 4".to_string(),
        };
        let png = if matches!(p.kind, PanelKind::Kpi | PanelKind::Table) {
            String::new()
        } else {
            format!(
                "<a href=\"#\" data-png=\"{}\" title=\"Download the chart as PNG\">PNG</a>",
                escape(&p.id)
            )
        };
        let _ = write!(
            grid,
            "<section class=\"panel\" id=\"panel-{id}\" style=\"{place}\">\
             <div class=\"panel-head\"><h3>{title}</h3>\
             <a id=\"panel-rows-{id}\" href=\"#\" title=\"The rows behind this panel\">Rows</a>\
             <a id=\"panel-csv-{id}\" href=\"#\" title=\"Download the data as CSV\">CSV</a>{png}</div>\
             <div class=\"panel-body\" id=\"panel-body-{id}\"></div></section>",
            id = escape(&p.id),
            title = escape(&p.title),
        );
    }
    let body = format!(
        "<h1>{}</h1>{}<div id=\"filters\"></div><div class=\"grid\">{grid}</div>\
         <script id=\"dashboard\" type=\"application/json\">{}</script>\
         <script src=\"/assets/echarts.min.js\"></script><script src=\"/assets/dashboard.js\"></script>",
        escape(&d.title),
        d.description
            .as_deref()
            .map(|t| format!("<p class=\"muted\">{}</p>", escape(t)))
            .unwrap_or_default(),
        script_json(&summary(&d)),
    );
    page(&d.title, "/dashboards", viewer.as_deref(), &body).into_response()
}

/// `GET /dashboards/{id}/panels/{panel}/rows`: the rows behind a panel (drill-through).
pub(crate) async fn rows(
    State(state): State<DashboardState>,
    Path((id, panel)): Path<(String, String)>,
    viewer: MaybeViewer,
) -> Response {
    let found = state
        .current()
        .await
        .dashboard(&id)
        .and_then(|d| d.panel(&panel).map(|p| (d.title.clone(), p.title.clone())));
    let Some((dashboard_title, panel_title)) = found else {
        return (
            StatusCode::NOT_FOUND,
            page(
                "Not found",
                "/dashboards",
                viewer.as_deref(),
                "<h1>No such panel</h1>",
            ),
        )
            .into_response();
    };
    let api = format!(
        "/api/dashboards/{}/panels/{}/rows",
        escape(&id),
        escape(&panel)
    );
    let body = format!(
        "<h1>{} <span class=\"muted\">· {}</span></h1>\
         <div class=\"toolbar\"><a id=\"back\" href=\"/dashboards/{}\">Back to the dashboard</a>\
         <a id=\"drill-csv\" href=\"#\">Download CSV</a></div>\
         <div id=\"drill\" data-api=\"{api}\">Loading…</div><script src=\"/assets/pages.js\"></script>",
        escape(&panel_title),
        escape(&dashboard_title),
        escape(&id),
    );
    page(&panel_title, "/dashboards", viewer.as_deref(), &body).into_response()
}

/// `GET /catalog`: databases → tables → columns, partitions, version, rows, location, run.
pub(crate) async fn catalog(
    State(state): State<DashboardState>,
    viewer: MaybeViewer,
) -> Html<String> {
    let mut body = String::from("<h1>Catalog</h1>");
    match state.0.catalog.list_tables().await {
        Err(e) => {
            let _ = write!(
                body,
                "<div class=\"problems\">{}</div>",
                escape(&e.to_string())
            );
        }
        Ok(tables) if tables.is_empty() => {
            body.push_str(
                "<p class=\"muted\">No tables yet: run a job (README command 1) to write one.</p>",
            );
        }
        Ok(tables) => {
            let _ = write!(
                body,
                "<p class=\"muted\">The {} catalog: {} tables.</p>",
                state.0.catalog.kind(),
                tables.len()
            );
            let mut database = "";
            for t in &tables {
                if t.database != database {
                    database = &t.database;
                    let _ = write!(body, "<h2>{}</h2>", escape(database));
                }
                let rows = t
                    .parameters
                    .get("recordCount")
                    .cloned()
                    .unwrap_or_else(|| "?".into());
                let _ = write!(
                    body,
                    "<details class=\"card\" id=\"table-{db}-{name}\"><summary><strong>{db}.{name}</strong> \
                     <span class=\"muted\">version {version} · {rows} rows · {parts} partitions · \
                     {class} · updated {updated}</span></summary>\
                     <p>Location <code>{location}</code>{run}</p>\
                     <table class=\"list\"><tr><th>Column</th><th>Type</th></tr>",
                    db = escape(&t.database),
                    name = escape(&t.name),
                    version = t.version,
                    rows = escape(&rows),
                    parts = t.partitions.len(),
                    class = escape(&t.classification),
                    updated = escape(&t.updated_at),
                    location = escape(&t.location),
                    run = t
                        .run_id
                        .as_deref()
                        .map(|r| format!(" · last run <code>{}</code>", escape(r)))
                        .unwrap_or_default(),
                );
                for c in &t.columns {
                    let _ = write!(
                        body,
                        "<tr><td>{}</td><td>{}</td></tr>",
                        escape(&c.name),
                        escape(&c.hive_type)
                    );
                }
                for c in &t.partition_keys {
                    let _ = write!(
                        body,
                        "<tr><td>{} <span class=\"muted\">(partition key)</span></td><td>{}</td></tr>",
                        escape(&c.name),
                        escape(&c.hive_type)
                    );
                }
                body.push_str("</table>");
                if !t.partitions.is_empty() {
                    body.push_str("<table class=\"list\"><tr><th>Partition</th><th>Rows</th><th>Location</th></tr>");
                    for p in &t.partitions {
                        let _ = write!(
                            body,
                            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                            escape(&p.values.join("/")),
                            p.rows.map_or("?".into(), |r| r.to_string()),
                            escape(&p.location)
                        );
                    }
                    body.push_str("</table>");
                }
                body.push_str("</details>");
            }
        }
    }
    page("Catalog", "/catalog", viewer.as_deref(), &body)
}

/// `GET /runs`: every run with its state, timings, progress and error.
pub(crate) async fn runs(State(state): State<DashboardState>, viewer: MaybeViewer) -> Html<String> {
    let mut body = String::from("<h1>Runs</h1>");
    let Some(runs) = &state.0.options.runs else {
        body.push_str(
            "<p class=\"muted\" id=\"no-runs\">This server has no job service: runs are listed by the \
             scheduler (<code>sluice-scheduler --http-bind</code>). In the embedded mode jobs run \
             with <code>sluice run</code>.</p>",
        );
        return page("Runs", "/runs", viewer.as_deref(), &body);
    };
    match runs.list_runs(200).await {
        Err(e) => {
            let _ = write!(
                body,
                "<div class=\"problems\">{}</div>",
                escape(&e.to_string())
            );
        }
        Ok(list) => {
            let live = list.iter().any(|r| {
                matches!(
                    r.state.as_str(),
                    "WAITING" | "STARTING" | "RUNNING" | "STOPPING"
                )
            });
            if live {
                // A live run: the page refreshes itself until it ends.
                body.push_str("<meta http-equiv=\"refresh\" content=\"2\">");
            }
            body.push_str(
                "<table class=\"list\" id=\"runs\"><tr><th>Run</th><th>Job</th><th>State</th>\
                 <th>Started</th><th>Finished</th><th>Progress</th><th>Error</th></tr>",
            );
            for r in &list {
                let _ = write!(
                    body,
                    "<tr><td><code>{}</code></td><td>{}</td><td class=\"state-{state}\">{state}</td>\
                     <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&r.id),
                    escape(&r.job),
                    escape(r.started_at.as_deref().unwrap_or("")),
                    escape(r.finished_at.as_deref().unwrap_or("")),
                    escape(r.progress.as_deref().unwrap_or("")),
                    escape(r.error.as_deref().unwrap_or("")),
                    state = escape(&r.state),
                );
            }
            body.push_str("</table>");
        }
    }
    page("Runs", "/runs", viewer.as_deref(), &body)
}

/// `GET /sql`: the workbench.
pub(crate) async fn sql(viewer: MaybeViewer) -> Html<String> {
    let body = "<h1>SQL</h1><p class=\"muted\">Read-only queries over the catalog's tables \
        (<code>database.table</code>). Ctrl+Enter runs. Every result is kept in the lake \
        (<code>_sluice/results/</code>) for download without running the query again.</p>\
        <div class=\"toolbar\"><label>Saved queries <select id=\"saved\"><option value=\"\">(open a saved query)</option></select></label>\
        <button id=\"saved-delete\" disabled>Delete</button><span id=\"saved-description\" class=\"muted\"></span></div>\
        <textarea id=\"sql\" spellcheck=\"false\" placeholder=\"SELECT album_type, count(*) FROM spotify.tracks GROUP BY 1\"></textarea>\
        <div class=\"toolbar\"><button id=\"run\">Run</button><button id=\"csv\">Download CSV</button>\
        <a id=\"download-csv\" hidden>Result as CSV</a><a id=\"download-parquet\" hidden>Result as Parquet</a>\
        <span style=\"margin-left:auto\"></span><input id=\"save-name\" placeholder=\"name\" size=\"24\">\
        <input id=\"save-description\" placeholder=\"description (optional)\" size=\"30\"><button id=\"save\">Save query</button>\
        <span id=\"save-status\" class=\"muted\"></span></div>\
        <div id=\"chart-controls\" class=\"toolbar\" style=\"display:none\"><label>Chart <select id=\"chart-type\">\
        <option value=\"table\">table</option><option value=\"bar\">bar</option><option value=\"line\">line</option>\
        <option value=\"area\">area</option><option value=\"pie\">pie</option><option value=\"scatter\">scatter</option></select></label>\
        <label>x <select id=\"chart-x\"></select></label><label>y <select id=\"chart-y\"></select></label>\
        <label>series <select id=\"chart-series\"></select></label></div>\
        <div id=\"chart\" style=\"height:360px;background:#fff;border:1px solid #e5e7eb;border-radius:8px\" hidden></div>\
        <div id=\"result\"></div><h2>History</h2><ol id=\"history\"></ol>\
        <script src=\"/assets/echarts.min.js\"></script><script src=\"/assets/dashboard.js\"></script>\
        <script src=\"/assets/pages.js\"></script>";
    page("SQL", "/sql", viewer.as_deref(), body)
}
