//! The SQL workbench's server side: saved queries, and results kept in the lake under a
//! results prefix (with a retention) for download as CSV or Parquet.
//!
//! Layout in the lake (`<lake>` is its root inside its object store):
//! - `<lake>/_sluice/results/<query id>.parquet`: a workbench query's whole result, written
//!   once after the answer is sent; `<query id>.json` next to it (written last) holds the
//!   SQL, the user, the time, the rows and the duration.
//! - `<lake>/_sluice/saved_queries/<id>.json`: a saved query (`name`, `sql`,
//!   `description`), seen by every user of the server.
//!
//! Old results go when a new one is written and when the history is listed: those older
//! than the retention's age and those beyond its count (newest kept).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_flight_sql::{Action, AuthenticatedUser, Role};
use tokio::sync::watch;

use crate::api::ApiError;
use crate::backend::QueryResult;
use crate::output::to_csv;
use crate::session::Viewer;
use crate::state::DashboardState;

/// Folder of kept results, under the lake root.
pub(crate) const RESULTS_DIR: &str = "_sluice/results";
/// Folder of saved queries, under the lake root.
pub(crate) const SAVED_DIR: &str = "_sluice/saved_queries";
/// History entries listed at most.
const HISTORY_LIMIT: usize = 200;

/// Where the workbench keeps results and saved queries: the lake's object store and root.
#[derive(Clone)]
pub struct ResultsOptions {
    /// The store holding the lake.
    pub store: Arc<dyn ObjectStore>,
    /// The lake root's path inside the store (`data/lake`; empty for the store's root).
    pub root: String,
    /// How long, and how many, results are kept.
    pub retention: Retention,
}

impl ResultsOptions {
    /// Results and saved queries under `root` (a path inside `store`) kept for `retention`.
    pub fn new(store: Arc<dyn ObjectStore>, root: &str, retention: Retention) -> Self {
        Self {
            store,
            root: root.trim_matches('/').to_string(),
            retention,
        }
    }

    fn path(&self, dir: &str, file: &str) -> Path {
        Path::from(self.dir(dir).to_string() + "/" + file)
    }

    fn dir(&self, dir: &str) -> Path {
        if self.root.is_empty() {
            Path::from(dir)
        } else {
            Path::from(format!("{}/{dir}", self.root))
        }
    }
}

/// How long, and how many, kept results live (`--results-retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Results older than this are deleted.
    pub max_age: Duration,
    /// At most this many results are kept (the newest).
    pub max_count: usize,
}

impl Default for Retention {
    /// Seven days, at most 1000 results.
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_count: 1000,
        }
    }
}

/// A `--results-retention` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad results retention '{value}': {reason} (expected an age such as 30m, 12h or 7d, a \
     maximum count such as 500, or both: 7d,500)"
)]
pub struct RetentionError {
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Retention {
    type Err = RetentionError;

    /// `AGE`, `COUNT` or `AGE,COUNT`: an age is a whole number with a unit (`s`, `m`, `h`,
    /// `d`, `w`), a count a plain whole number; what is left out keeps its default.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| RetentionError {
            value: value.to_string(),
            reason,
        };
        let mut out = Retention::default();
        let (mut age, mut count) = (false, false);
        for part in value.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(err("an empty part".into()));
            }
            let digits = part.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let unit = &part[digits.len()..];
            let n: u64 = digits
                .parse()
                .map_err(|_| err(format!("'{part}' is not a whole number with a unit")))?;
            if n == 0 {
                return Err(err(format!("'{part}' is zero (nothing would be kept)")));
            }
            if unit.is_empty() {
                if count {
                    return Err(err("two counts".into()));
                }
                count = true;
                out.max_count = usize::try_from(n).map_err(|_| err("count too large".into()))?;
                continue;
            }
            let seconds = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                "w" => 7 * 86_400,
                other => return Err(err(format!("unknown unit '{other}'"))),
            };
            if age {
                return Err(err("two ages".into()));
            }
            age = true;
            out.max_age = Duration::from_secs(
                n.checked_mul(seconds)
                    .ok_or_else(|| err("age too large".into()))?,
            );
        }
        Ok(out)
    }
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.max_age.as_secs();
        let age = if s.is_multiple_of(86_400) {
            format!("{}d", s / 86_400)
        } else if s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        };
        write!(f, "{age},{}", self.max_count)
    }
}

/// What is kept next to a result's Parquet file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResultMeta {
    id: String,
    sql: String,
    /// Who ran it (`None` on a server without users).
    user: Option<String>,
    /// When it started (RFC 3339).
    started_at: String,
    elapsed_ms: u64,
    rows: u64,
    columns: Vec<String>,
    /// Size of the Parquet file.
    bytes: u64,
}

/// A saved query.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedQuery {
    id: String,
    name: String,
    sql: String,
    #[serde(default)]
    description: String,
    saved_by: Option<String>,
    saved_at: String,
}

/// Results being written, by query id: a download waits for its result's write.
static PENDING: LazyLock<Mutex<HashMap<String, watch::Receiver<bool>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn pending() -> std::sync::MutexGuard<'static, HashMap<String, watch::Receiver<bool>>> {
    PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_results_store",
        "this server keeps no results or saved queries (it was started without a lake store)",
    )
}

fn store_error(e: object_store::Error) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("cannot reach the lake's store: {e}"),
    )
}

fn user_name(viewer: Option<&Viewer>) -> Option<String> {
    viewer.and_then(|v| v.user.as_ref()).map(|u| u.name.clone())
}

/// Keeps a workbench query's result: writes it to the lake after the caller answered
/// (a failed write is logged), then applies the retention. Returns the result's id, or
/// `None` when the server keeps no results.
pub(crate) fn keep(
    state: &DashboardState,
    viewer: Option<&Viewer>,
    sql: &str,
    result: QueryResult,
    started_at: DateTime<Utc>,
    elapsed_ms: u64,
) -> Option<String> {
    let options = state.0.options.results.clone()?;
    let id = uuid::Uuid::now_v7().to_string();
    let meta = ResultMeta {
        id: id.clone(),
        sql: sql.to_string(),
        user: user_name(viewer),
        started_at: started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        elapsed_ms,
        rows: result.batches.iter().map(|b| b.num_rows() as u64).sum(),
        columns: result
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
        bytes: 0,
    };
    let (done, waiting) = watch::channel(false);
    pending().insert(id.clone(), waiting);
    tokio::spawn(async move {
        if let Err(e) = write_result(&options, meta.clone(), result).await {
            tracing::warn!(result = %meta.id, error = %e, "workbench: cannot keep the query's result in the lake");
        }
        pending().remove(&meta.id);
        let _ = done.send(true);
        if let Err(e) = sweep(&options, Utc::now()).await {
            tracing::warn!(error = %e, "workbench: cannot apply the results retention");
        }
    });
    Some(id)
}

/// Why a result could not be written.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("encoding Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{0}")]
    Store(#[from] object_store::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("the encoding task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

async fn write_result(
    options: &ResultsOptions,
    mut meta: ResultMeta,
    result: QueryResult,
) -> Result<(), WriteError> {
    let parquet = tokio::task::spawn_blocking(move || encode_parquet(&result)).await??;
    meta.bytes = parquet.len() as u64;
    options
        .store
        .put(
            &options.path(RESULTS_DIR, &format!("{}.parquet", meta.id)),
            PutPayload::from(parquet),
        )
        .await?;
    options
        .store
        .put(
            &options.path(RESULTS_DIR, &format!("{}.json", meta.id)),
            PutPayload::from(serde_json::to_vec_pretty(&meta)?),
        )
        .await?;
    Ok(())
}

fn encode_parquet(result: &QueryResult) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, result.schema.clone(), None)?;
    for batch in &result.batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(out)
}

/// The ids to delete among `(id, written at)` results: those older than `max_age` and
/// those beyond the newest `max_count` (newest by id: ids are UUIDv7, ordered by the time
/// the query ran, whichever write finished first).
fn expired(
    mut results: Vec<(String, DateTime<Utc>)>,
    now: DateTime<Utc>,
    retention: Retention,
) -> Vec<String> {
    results.sort_by(|a, b| b.0.cmp(&a.0));
    let max_age = chrono::Duration::from_std(retention.max_age).unwrap_or(chrono::Duration::MAX);
    results
        .into_iter()
        .enumerate()
        .filter(|(i, (_, at))| {
            *i >= retention.max_count || now.signed_duration_since(*at) > max_age
        })
        .map(|(_, (id, _))| id)
        .collect()
}

/// Deletes the results the retention no longer keeps; returns how many.
async fn sweep(options: &ResultsOptions, now: DateTime<Utc>) -> Result<usize, object_store::Error> {
    let files: Vec<object_store::ObjectMeta> = options
        .store
        .list(Some(&options.dir(RESULTS_DIR)))
        .try_collect()
        .await?;
    // A result is as old as its Parquet file; its files go together.
    let mut by_id: HashMap<String, (DateTime<Utc>, Vec<Path>)> = HashMap::new();
    for f in files {
        let Some(name) = f.location.filename() else {
            continue;
        };
        let Some((id, _)) = name.rsplit_once('.') else {
            continue;
        };
        let entry = by_id
            .entry(id.to_string())
            .or_insert((f.last_modified, Vec::new()));
        entry.0 = entry.0.min(f.last_modified);
        entry.1.push(f.location.clone());
    }
    let doomed = expired(
        by_id
            .iter()
            .map(|(id, (at, _))| (id.clone(), *at))
            .collect(),
        now,
        options.retention,
    );
    for id in &doomed {
        for path in by_id.get(id).map(|e| e.1.as_slice()).unwrap_or_default() {
            match options.store.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if !doomed.is_empty() {
        tracing::info!(deleted = doomed.len(), "workbench: old results deleted");
    }
    Ok(doomed.len())
}

async fn read_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<T>, ApiError> {
    let bytes = match store.get(path).await {
        Ok(got) => got.bytes().await.map_err(store_error)?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_error(e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "corrupt",
            format!("{path}: not the JSON expected: {e}"),
        )
    })
}

/// Every `.json` under `dir`, parsed (files that do not parse are logged and skipped).
async fn read_all<T: serde::de::DeserializeOwned>(
    options: &ResultsOptions,
    dir: &str,
) -> Result<Vec<T>, ApiError> {
    let files: Vec<object_store::ObjectMeta> = options
        .store
        .list(Some(&options.dir(dir)))
        .try_collect()
        .await
        .map_err(store_error)?;
    let store = Arc::clone(&options.store);
    let found: Vec<Option<T>> = futures::stream::iter(
        files
            .into_iter()
            .filter(|f| f.location.extension() == Some("json")),
    )
    .map(|f| {
        let store = Arc::clone(&store);
        async move {
            match read_json::<T>(store.as_ref(), &f.location).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(file = %f.location, error = ?e, "workbench: skipped");
                    None
                }
            }
        }
    })
    .buffer_unordered(16)
    .collect()
    .await;
    Ok(found.into_iter().flatten().collect())
}

/// The workbench's API routes (the page itself is `pages::sql`).
pub(crate) fn routes() -> Router<DashboardState> {
    Router::new()
        .route("/api/sql/results", get(list_results))
        .route("/api/sql/results/{id}", get(download_result))
        .route("/api/sql/saved", get(list_saved).post(save_query))
        .route("/api/sql/saved/{id}", get(get_saved))
        .route("/api/sql/saved/{id}/delete", post(delete_saved))
}

type MaybeViewer = Option<Extension<Viewer>>;

fn is_admin(viewer: Option<&Viewer>) -> bool {
    matches!(
        viewer.and_then(|v| v.user.as_ref()),
        Some(AuthenticatedUser {
            role: Role::Admin,
            ..
        })
    )
}

/// Whether `viewer` may see a result `owner` ran: its owner, an admin, or anyone on a
/// server without users.
fn may_read(state: &DashboardState, viewer: Option<&Viewer>, owner: Option<&str>) -> bool {
    if state.0.options.auth.is_none() {
        return true;
    }
    let me = user_name(viewer);
    is_admin(viewer) || (me.is_some() && me.as_deref() == owner)
}

/// `GET /api/sql/results`: the viewer's kept results (every user's for an admin), newest
/// first: `{"results": [{"id", "sql", "user", "started_at", "elapsed_ms", "rows", …}]}`.
async fn list_results(
    State(state): State<DashboardState>,
    viewer: MaybeViewer,
) -> Result<Json<serde_json::Value>, ApiError> {
    let options = state.0.options.results.clone().ok_or_else(unavailable)?;
    if let Err(e) = sweep(&options, Utc::now()).await {
        tracing::warn!(error = %e, "workbench: cannot apply the results retention");
    }
    let viewer = viewer.as_deref();
    let mut results: Vec<ResultMeta> = read_all::<ResultMeta>(&options, RESULTS_DIR)
        .await?
        .into_iter()
        .filter(|m| may_read(&state, viewer, m.user.as_deref()))
        .collect();
    // Ids are UUIDv7: they sort by time.
    results.sort_by(|a, b| b.id.cmp(&a.id));
    results.truncate(HISTORY_LIMIT);
    Ok(Json(json!({ "results": results })))
}

/// `?format=` of a download.
#[derive(Deserialize)]
struct FormatParam {
    format: Option<String>,
}

fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_id",
            format!("'{id}' is not an id (letters, digits, '-' and '_')"),
        ))
    }
}

/// `GET /api/sql/results/{id}?format=csv|parquet`: a kept result, without running the
/// query again; only for the user who ran it or an admin.
async fn download_result(
    State(state): State<DashboardState>,
    viewer: MaybeViewer,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<FormatParam>,
) -> Result<Response, ApiError> {
    let options = state.0.options.results.clone().ok_or_else(unavailable)?;
    check_id(&id)?;
    let csv = match q.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("csv") => true,
        Some("parquet") => false,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_format",
                format!("format '{other}': expected csv or parquet"),
            ));
        }
    };
    // A result still being written: wait for it.
    let waiting = pending().get(&id).cloned();
    if let Some(mut waiting) = waiting {
        let _ = waiting.wait_for(|done| *done).await;
    }
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no kept result '{id}' (it may have expired)"),
        )
    };
    let meta: ResultMeta = read_json(
        options.store.as_ref(),
        &options.path(RESULTS_DIR, &format!("{id}.json")),
    )
    .await?
    .ok_or_else(not_found)?;
    if !may_read(&state, viewer.as_deref(), meta.user.as_deref()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the user who ran a query, or an admin, may download its result",
        ));
    }
    let bytes = match options
        .store
        .get(&options.path(RESULTS_DIR, &format!("{id}.parquet")))
        .await
    {
        Ok(got) => got.bytes().await.map_err(store_error)?,
        Err(object_store::Error::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(store_error(e)),
    };
    if !csv {
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.apache.parquet".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{id}.parquet\""),
                ),
            ],
            bytes,
        )
            .into_response());
    }
    let internal = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "failed", e);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| internal(format!("{id}.parquet: {e}")))?;
    let schema = reader.schema().clone();
    let batches: Vec<RecordBatch> = reader
        .build()
        .map_err(|e| internal(format!("{id}.parquet: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| internal(format!("{id}.parquet: {e}")))?;
    let body = to_csv(&QueryResult { schema, batches }).map_err(|e| internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The id of a saved query: its name in lower case, runs of other characters as `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(80).collect()
}

/// `GET /api/sql/saved`: `{"queries": [{"id", "name", "sql", "description", …}]}` by name.
async fn list_saved(
    State(state): State<DashboardState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let options = state.0.options.results.clone().ok_or_else(unavailable)?;
    let mut queries = read_all::<SavedQuery>(&options, SAVED_DIR).await?;
    queries.sort_by_key(|q| q.name.to_lowercase());
    Ok(Json(json!({ "queries": queries })))
}

/// `GET /api/sql/saved/{id}`.
async fn get_saved(
    State(state): State<DashboardState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let options = state.0.options.results.clone().ok_or_else(unavailable)?;
    check_id(&id)?;
    let saved: SavedQuery = read_json(
        options.store.as_ref(),
        &options.path(SAVED_DIR, &format!("{id}.json")),
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no saved query '{id}'"),
        )
    })?;
    Ok(Json(json!(saved)))
}

/// A query to save.
#[derive(Deserialize)]
struct SaveRequest {
    name: String,
    sql: String,
    #[serde(default)]
    description: String,
}

fn may_save(viewer: Option<&Viewer>) -> Result<(), ApiError> {
    match viewer.and_then(|v| v.user.as_ref()) {
        Some(u) if !u.role.allows(Action::Query) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("role {} may not save queries", u.role),
        )),
        _ => Ok(()),
    }
}

/// `POST /api/sql/saved` `{"name", "sql", "description"?}`: saves (or overwrites, by name).
async fn save_query(
    State(state): State<DashboardState>,
    viewer: MaybeViewer,
    Json(request): Json<SaveRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let options = state.0.options.results.clone().ok_or_else(unavailable)?;
    may_save(viewer.as_deref())?;
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "invalid", m.to_string());
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad("name: give 1 to 100 characters"));
    }
    let id = slug(name);
    if id.is_empty() {
        return Err(bad("name: needs at least one letter or digit"));
    }
    if request.sql.trim().is_empty() {
        return Err(bad("sql: empty"));
    }
    let saved = SavedQuery {
        id: id.clone(),
        name: name.to_string(),
        sql: request.sql,
        description: request.description.trim().to_string(),
        saved_by: user_name(viewer.as_deref()),
        saved_at: now_text(),
    };
    let body = serde_json::to_vec_pretty(&saved)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "failed", e.to_string()))?;
    options
        .store
        .put(
            &options.path(SAVED_DIR, &format!("{id}.json")),
            PutPayload::from(body),
        )
        .await
        .map_err(store_error)?;
    Ok(Json(json!(saved)))
}

/// `POST /api/sql/saved/{id}/delete`.
async fn delete_saved(
    State(state): State<DashboardState>,
    viewer: MaybeViewer,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let options = state.0.options.results.clone().ok_or_else(unavailable)?;
    may_save(viewer.as_deref())?;
    check_id(&id)?;
    let path = options.path(SAVED_DIR, &format!("{id}.json"));
    match options.store.head(&path).await {
        Ok(_) => {}
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no saved query '{id}'"),
            ));
        }
        Err(e) => return Err(store_error(e)),
    }
    match options.store.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(store_error(e)),
    }
    Ok(Json(json!({ "deleted": id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_parses_ages_counts_and_both() {
        let day = 86_400;
        assert_eq!(
            "7d".parse::<Retention>().unwrap(),
            Retention {
                max_age: Duration::from_secs(7 * day),
                max_count: 1000
            }
        );
        assert_eq!(
            "12h,50".parse::<Retention>().unwrap(),
            Retention {
                max_age: Duration::from_secs(12 * 3600),
                max_count: 50
            }
        );
        assert_eq!(
            "3".parse::<Retention>().unwrap(),
            Retention {
                max_age: Duration::from_secs(7 * day),
                max_count: 3
            }
        );
        assert_eq!(
            " 10 , 2w ".parse::<Retention>().unwrap(),
            Retention {
                max_age: Duration::from_secs(14 * day),
                max_count: 10
            }
        );
        assert_eq!(
            "30s".parse::<Retention>().unwrap().max_age,
            Duration::from_secs(30)
        );
        assert_eq!(
            "15m".parse::<Retention>().unwrap().max_age,
            Duration::from_secs(900)
        );
    }

    #[test]
    fn bad_retentions_say_what_is_wrong() {
        let e = |v: &str| v.parse::<Retention>().unwrap_err().to_string();
        assert!(e("7x").contains("unknown unit 'x'"), "{}", e("7x"));
        assert!(e("").contains("an empty part"));
        assert!(e("0d").contains("zero"));
        assert!(e("1d,2d").contains("two ages"));
        assert!(e("5,6").contains("two counts"));
        assert!(e("d").contains("not a whole number"));
        assert!(e("-1d").contains("not a whole number"));
        assert!(e("7d,").contains("an empty part"));
    }

    #[test]
    fn retention_prints_as_it_parses() {
        for v in ["7d,1000", "12h,5", "90m,1", "45s,3"] {
            assert_eq!(v.parse::<Retention>().unwrap().to_string(), v);
        }
        assert_eq!(Retention::default().to_string(), "7d,1000");
    }

    #[test]
    fn expiry_drops_the_old_and_those_beyond_the_count() {
        let now = DateTime::parse_from_rfc3339("2026-01-10T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // Ids grow with time, as UUIDv7s do.
        let at = |days: i64| {
            (
                format!("r{:02}", 50 - days),
                now - chrono::Duration::days(days),
            )
        };
        let all = vec![at(0), at(1), at(2), at(3), at(8), at(9)];
        let keep_week = Retention {
            max_age: Duration::from_secs(7 * 86_400),
            max_count: 100,
        };
        let mut gone = expired(all.clone(), now, keep_week);
        gone.sort();
        assert_eq!(gone, vec!["r41", "r42"]);
        let keep_two = Retention {
            max_age: Duration::from_secs(7 * 86_400),
            max_count: 2,
        };
        let mut gone = expired(all, now, keep_two);
        gone.sort();
        assert_eq!(gone, vec!["r41", "r42", "r47", "r48"]);
    }

    #[test]
    fn saved_query_ids_come_from_names() {
        assert_eq!(slug("Tracks per album type"), "tracks-per-album-type");
        assert_eq!(slug("  Top 10 / year!  "), "top-10-year");
        assert_eq!(slug("!!!"), "");
    }

    /// The oldest id beyond the count goes, with both its files.
    #[tokio::test]
    async fn sweeping_deletes_both_files_of_expired_results() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let options = ResultsOptions::new(
            Arc::clone(&store),
            "/lake/",
            Retention {
                max_age: Duration::from_secs(3600),
                max_count: 2,
            },
        );
        for id in ["a", "b", "c"] {
            for ext in ["parquet", "json"] {
                store
                    .put(
                        &options.path(RESULTS_DIR, &format!("{id}.{ext}")),
                        PutPayload::from_static(b"x"),
                    )
                    .await
                    .unwrap();
            }
        }
        assert_eq!(sweep(&options, Utc::now()).await.unwrap(), 1);
        let left: Vec<String> = store
            .list(Some(&Path::from("lake/_sluice/results")))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        let mut left = left;
        left.sort();
        assert_eq!(
            left,
            vec![
                "lake/_sluice/results/b.json",
                "lake/_sluice/results/b.parquet",
                "lake/_sluice/results/c.json",
                "lake/_sluice/results/c.parquet"
            ]
        );
        let later = Utc::now() + chrono::Duration::hours(2);
        assert_eq!(sweep(&options, later).await.unwrap(), 2);
    }
}
