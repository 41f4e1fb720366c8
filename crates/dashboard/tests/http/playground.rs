//! The playground's API over a real catalog and Parquet files: a save writes the YAML a
//! person would write, which loads back to the same dashboard; new dashboards and
//! datasets; refusals (a role that may not write, a cross-site POST, a file that would
//! not load, a new dashboard without a folder).

// Helpers panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::load::spotify_table;
use serde_json::{Value, json};
use sluice_catalog::Catalog;
use sluice_dashboard::{Dashboard, DashboardOptions, SessionsBackend, load_file};
use sluice_flight_sql::{Authenticator, Role, User, hash_password};
use support::{Lake, LakeSessions, Server, serve};

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/spotify/dashboard.yaml")
}

/// Everything the loader made of a file but the file's name.
fn spec(d: &Dashboard) -> Value {
    let datasets: Vec<Value> = d
        .datasets
        .values()
        .map(|ds| json!([ds.name, ds.sql, format!("{:?}", ds.schema)]))
        .collect();
    json!({ "dashboard": serde_json::to_value(d).unwrap(), "datasets": datasets })
}

fn backend(lake: &Lake) -> SessionsBackend {
    let catalog: Arc<dyn Catalog> = lake.catalog.clone();
    SessionsBackend::new(
        Arc::new(LakeSessions {
            catalog: Arc::clone(&lake.catalog),
        }),
        catalog,
    )
}

async fn post(server: &Server, path: &str, body: &Value, cookie: Option<&str>) -> (u16, Value) {
    let mut r = server
        .client
        .post(format!("{}{path}", server.base))
        .header("origin", &server.base)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
    )
}

/// The example's bar panel exactly as the file has it.
fn same_bar() -> Value {
    json!({
        "dashboard": "spotify",
        "dataset": "tracks",
        "panel": {
            "id": "tracks_per_album_type", "title": "Tracks per album type", "type": "bar",
            "x": "album_type", "y": "count(*)", "sort": "-y", "format": ","
        }
    })
}

#[tokio::test]
async fn a_save_writes_yaml_that_loads_back_to_the_same_dashboard() {
    let lake = Lake::new();
    spotify_table(&lake).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spotify.yaml");
    std::fs::copy(example(), &file).unwrap();
    let before = load_file(&file, &backend(&lake)).await.unwrap().0;
    let server = serve(&lake, dir.path(), DashboardOptions::default()).await;

    // Load → save (the same panel again) → load: the same dashboard.
    let (status, saved) = post(&server, "/api/playground/save", &same_bar(), None).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["url"], "/dashboards/spotify");
    assert_eq!(saved["file"], "spotify.yaml");
    let after = load_file(&file, &backend(&lake)).await.unwrap().0;
    assert_eq!(spec(&before), spec(&after));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# The Spotify 2023 dashboard"),
        "the header comment stays:\n{text}"
    );
    assert!(
        text.contains("    sql: |\n      SELECT track_id,"),
        "SQL as a block:\n{text}"
    );
    assert!(!text.contains("null"), "no nulls:\n{text}");

    // A new panel over a new dataset: placed below the others, data from its query.
    let draft = json!({
        "dashboard": "spotify",
        "dataset": "by_year",
        "sql": "SELECT CAST(substr(release_date, 1, 4) AS INT) AS year, explicit\nFROM spotify.tracks;",
        "panel": { "id": "explicit_by_year", "type": "line", "x": "year", "y": "count(*)", "series": "explicit" }
    });
    let (status, preview) = post(&server, "/api/playground/preview", &draft, None).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["ok"], true, "{preview}");
    assert_eq!(preview["panel"]["type"], "line");
    assert_eq!(
        preview["data"]["columns"],
        json!(["year", "count(*)", "explicit"])
    );
    assert!(!preview["data"]["rows"].as_array().unwrap().is_empty());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "a preview writes nothing"
    );
    let (status, saved) = post(&server, "/api/playground/save", &draft, None).await;
    assert_eq!(status, 200, "{saved}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("  by_year:\n    sql: |\n      SELECT CAST(substr(release_date, 1, 4) AS INT) AS year, explicit\n      FROM spotify.tracks\n"),
        "{text}"
    );
    assert!(
        text.ends_with("  - id: explicit_by_year\n    type: line\n    dataset: by_year\n    encoding:\n      x: year\n      y: count(*)\n      series: explicit\n    layout: { x: 0, y: 20, w: 6, h: 4 }\n"),
        "{text}"
    );
    let (status, data) = server
        .get_json("/api/dashboards/spotify/panels/explicit_by_year/data")
        .await;
    assert_eq!(status, 200, "{data}");
    assert_eq!(data["rows"], preview["data"]["rows"]);

    // A panel that would not load is refused with the loader's message; nothing written.
    let bad = json!({
        "dashboard": "spotify", "dataset": "tracks",
        "panel": { "id": "bad", "type": "bar", "x": "album_typo", "y": "sum(album_type)" }
    });
    let (status, refused) = post(&server, "/api/playground/save", &bad, None).await;
    assert_eq!(status, 400, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("panels[11].encoding.x: dataset 'tracks' has no column 'album_typo' (did you mean 'album_type'?)")
            && message.contains("spotify.yaml:"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    // A new dashboard goes into the folder as <id>.yaml.
    let draft = json!({
        "dashboard": "albums", "title": "Albums: types", "dataset": "t",
        "sql": "SELECT album_type FROM spotify.tracks",
        "panel": { "id": "types", "type": "pie", "x": "album_type", "y": "count(*)" }
    });
    let (status, saved) = post(&server, "/api/playground/save", &draft, None).await;
    assert_eq!(status, 200, "{saved}");
    let text = std::fs::read_to_string(dir.path().join("albums.yaml")).unwrap();
    assert_eq!(
        text,
        "id: albums\ntitle: \"Albums: types\"\n\ndatasets:\n  t:\n    sql: SELECT album_type FROM spotify.tracks\n\npanels:\n  - id: types\n    type: pie\n    dataset: t\n    encoding:\n      x: album_type\n      y: count(*)\n"
    );
    let (_, list) = server.get_json("/api/dashboards").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["albums", "spotify"]);

    // A cross-site save is refused before it is read.
    let r = server
        .client
        .post(format!("{}/api/playground/save", server.base))
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body(same_bar().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("cross_site"));
}

#[tokio::test]
async fn new_dashboards_need_a_folder() {
    let lake = Lake::new();
    spotify_table(&lake).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spotify.yaml");
    std::fs::copy(example(), &file).unwrap();
    // --dashboards names one file: it can be edited, but no new file is made beside it.
    let server = serve(&lake, &file, DashboardOptions::default()).await;
    let (status, _) = post(&server, "/api/playground/save", &same_bar(), None).await;
    assert_eq!(status, 200);
    let draft = json!({
        "dashboard": "other", "dataset": "t", "sql": "SELECT 1 AS one",
        "panel": { "id": "k", "type": "kpi", "y": "sum(one)" }
    });
    let (status, preview) = post(&server, "/api/playground/preview", &draft, None).await;
    assert_eq!(status, 200, "a preview needs no folder: {preview}");
    let (status, refused) = post(&server, "/api/playground/save", &draft, None).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restart the server with --dashboards DIR"),
        "{refused}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

async fn login(server: &Server, user: &str) -> String {
    let r = server
        .client
        .post(format!("{}/login", server.base))
        .header("origin", &server.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user={user}&password=s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn only_roles_that_may_write_dashboards_save() {
    let lake = Lake::new();
    spotify_table(&lake).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spotify.yaml");
    std::fs::copy(example(), &file).unwrap();
    let user = |name: &str, role| User {
        name: name.into(),
        password_hash: hash_password("s3cret").unwrap(),
        role,
    };
    let users = vec![user("ana", Role::Analyst), user("eve", Role::Engineer)];
    let auth = Arc::new(Authenticator::new(users, Duration::from_secs(3600)).unwrap());
    let options = DashboardOptions {
        auth: Some(auth),
        ..DashboardOptions::default()
    };
    let server = serve(&lake, dir.path(), options).await;
    let original = std::fs::read_to_string(&file).unwrap();
    let mut draft = same_bar();
    draft["panel"]["title"] = json!("Renamed");

    let (status, _) = post(&server, "/api/playground/save", &draft, None).await;
    assert_eq!(status, 401);
    let ana = login(&server, "ana").await;
    let (status, preview) = post(&server, "/api/playground/preview", &draft, Some(&ana)).await;
    assert_eq!(status, 200, "an analyst may preview: {preview}");
    let (status, refused) = post(&server, "/api/playground/save", &draft, Some(&ana)).await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("role analyst may not write dashboards"),
        "{refused}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);

    let eve = login(&server, "eve").await;
    let (status, saved) = post(&server, "/api/playground/save", &draft, Some(&eve)).await;
    assert_eq!(status, 200, "{saved}");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("  - id: tracks_per_album_type\n    title: Renamed\n")
    );
}
