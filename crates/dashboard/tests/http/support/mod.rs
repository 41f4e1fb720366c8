//! A real lake for the tests: Parquet files written with arrow, registered in the embedded
//! catalog, queried through DataFusion sessions like the scheduler's, and the router served
//! on a real socket.

// Test helpers panic on failure like the tests themselves.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Int32Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use object_store::local::LocalFileSystem;
use sluice_catalog::{Catalog, ColumnEntry, EmbeddedCatalog, TableEntry};
use sluice_dashboard::{DashboardOptions, DashboardState, SessionsBackend, router};
use sluice_flight_sql::QuerySessions;

/// One generated track.
#[derive(Debug, Clone)]
pub struct Track {
    pub track_id: String,
    pub album_type: String,
    pub artist_id: String,
    pub artist_name: String,
    pub followers: i64,
    pub track_popularity: i64,
    pub duration_ms: i64,
    pub explicit: bool,
    pub release_year: i32,
}

/// `n` tracks from a fixed seed (a small linear congruential generator).
pub fn tracks(n: usize, seed: u64) -> Vec<Track> {
    let mut state = seed;
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    let types = ["album", "single", "compilation"];
    (0..n)
        .map(|i| {
            let artist = next(12);
            Track {
                track_id: format!("t{i:04}"),
                album_type: types[next(3) as usize].to_string(),
                artist_id: format!("a{artist:02}"),
                artist_name: format!("Artist {artist}"),
                followers: (artist as i64 + 1) * 1000,
                track_popularity: next(101) as i64,
                duration_ms: 120_000 + next(240_000) as i64,
                explicit: next(4) == 0,
                release_year: 1990 + next(34) as i32,
            }
        })
        .collect()
}

fn batch(tracks: &[Track]) -> RecordBatch {
    let col = |f: &dyn Fn(&Track) -> String| -> ArrayRef {
        Arc::new(StringArray::from(tracks.iter().map(f).collect::<Vec<_>>()))
    };
    // 1 July of each year, as days since 1970-01-01.
    let days = |y: i32| chrono_like_days(y, 7, 1);
    RecordBatch::try_from_iter([
        ("track_id", col(&|t| t.track_id.clone())),
        ("album_type", col(&|t| t.album_type.clone())),
        ("artist_id", col(&|t| t.artist_id.clone())),
        ("name", col(&|t| t.artist_name.clone())),
        (
            "followers",
            Arc::new(Int64Array::from_iter_values(
                tracks.iter().map(|t| t.followers),
            )) as ArrayRef,
        ),
        (
            "track_popularity",
            Arc::new(Int64Array::from_iter_values(
                tracks.iter().map(|t| t.track_popularity),
            )),
        ),
        (
            "duration_ms",
            Arc::new(Int64Array::from_iter_values(
                tracks.iter().map(|t| t.duration_ms),
            )),
        ),
        (
            "explicit",
            Arc::new(BooleanArray::from(
                tracks.iter().map(|t| t.explicit).collect::<Vec<_>>(),
            )),
        ),
        (
            "release_year",
            Arc::new(Int32Array::from_iter_values(
                tracks.iter().map(|t| t.release_year),
            )),
        ),
        (
            "release_date",
            Arc::new(Date32Array::from_iter_values(
                tracks.iter().map(|t| days(t.release_year)),
            )),
        ),
    ])
    .unwrap()
}

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian).
fn chrono_like_days(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// A lake folder with an embedded catalog.
pub struct Lake {
    pub dir: tempfile::TempDir,
    pub catalog: Arc<EmbeddedCatalog>,
}

impl Lake {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let catalog = Arc::new(EmbeddedCatalog::new(
            store,
            "",
            dir.path().to_str().unwrap(),
        ));
        Self { dir, catalog }
    }

    /// Writes `tracks` as a new version of `db.table` (one Parquet file) and commits it.
    pub async fn commit(&self, db: &str, table: &str, tracks: &[Track], run: &str) -> TableEntry {
        let folder: PathBuf = self.dir.path().join(db).join(table).join(run);
        std::fs::create_dir_all(&folder).unwrap();
        let batch = batch(tracks);
        let file = std::fs::File::create(folder.join("part-0.parquet")).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let columns = batch
            .schema()
            .fields()
            .iter()
            .map(|f| ColumnEntry {
                name: f.name().clone(),
                hive_type: "string".into(),
            })
            .collect();
        let entry = TableEntry {
            database: db.into(),
            name: table.into(),
            location: format!("file://{}/", folder.display()),
            classification: "parquet".into(),
            columns,
            partition_keys: Vec::new(),
            partitions: Vec::new(),
            parameters: Default::default(),
            run_id: Some(run.into()),
            version: 0,
            updated_at: String::new(),
        };
        self.catalog.commit_table(entry).await.unwrap()
    }
}

/// Sessions whose `sluice` catalog holds every table registered now, as the scheduler's do.
pub struct LakeSessions {
    pub catalog: Arc<EmbeddedCatalog>,
}

#[async_trait::async_trait]
impl QuerySessions for LakeSessions {
    async fn session(&self, _query_id: &str) -> Result<SessionContext, DataFusionError> {
        let config = SessionConfig::new().with_default_catalog_and_schema("sluice", "public");
        let ctx = SessionContext::new_with_config(config);
        let catalog = ctx
            .catalog("sluice")
            .ok_or_else(|| DataFusionError::Plan("no sluice catalog".into()))?;
        let tables = self
            .catalog
            .list_tables()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        for t in tables {
            if catalog.schema(&t.database).is_none() {
                catalog.register_schema(&t.database, Arc::new(MemorySchemaProvider::new()))?;
            }
            ctx.register_parquet(
                format!("{}.{}", t.database, t.name),
                &t.location,
                ParquetReadOptions::default(),
            )
            .await?;
        }
        Ok(ctx)
    }

    async fn cancel(&self, _query_id: &str) {}
}

/// A running server: its base URL and state.
pub struct Server {
    pub base: String,
    pub state: DashboardState,
    pub client: reqwest::Client,
}

/// Serves the router over `lake` with dashboards from `dir` on 127.0.0.1:0.
pub async fn serve(lake: &Lake, dir: &Path, options: DashboardOptions) -> Server {
    let sessions = Arc::new(LakeSessions {
        catalog: Arc::clone(&lake.catalog),
    });
    let catalog: Arc<dyn Catalog> = lake.catalog.clone();
    let backend = Arc::new(SessionsBackend::new(sessions, Arc::clone(&catalog)));
    let options = DashboardOptions {
        dashboards_dir: Some(dir.to_path_buf()),
        ..options
    };
    let state = DashboardState::new(backend, catalog, options);
    let app = router(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Server {
        base: format!("http://{addr}"),
        state,
        client,
    }
}

impl Server {
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.get(path).await;
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
        (status, json)
    }
}
