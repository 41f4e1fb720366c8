//! The router over a real socket, with panel data checked against aggregates computed here
//! from the generated rows (not through DataFusion).

// Helpers panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_dashboard::DashboardOptions;
use support::{Lake, Track, serve, tracks};

const DASHBOARD: &str = r#"
id: music
title: Music
datasets:
  tracks:
    sql: SELECT * FROM music.tracks
filters:
  - id: album_type
    type: multi_select
    column: album_type
    options: { sql: "SELECT DISTINCT album_type FROM music.tracks ORDER BY 1" }
  - id: year
    type: number_range
    column: release_year
  - id: released
    type: date_range
    column: release_date
panels:
  - id: per_type
    type: bar
    dataset: tracks
    encoding: { x: album_type, y: count(*) }
  - id: top_artists
    type: bar
    dataset: tracks
    encoding: { x: name, y: max(followers), sort: -y, limit: 3 }
  - id: mean_popularity
    type: kpi
    dataset: tracks
    encoding: { y: avg(track_popularity), format: ".1f" }
  - id: explicit
    type: pie
    dataset: tracks
    encoding: { x: explicit, y: count(*) }
  - id: rows
    type: table
    dataset: tracks
    encoding: { columns: [track_id, album_type], sort: track_id, limit: 5 }
"#;

fn count_by<K: Ord>(rows: &[&Track], key: impl Fn(&Track) -> K) -> BTreeMap<K, i64> {
    let mut m = BTreeMap::new();
    for t in rows {
        *m.entry(key(t)).or_insert(0) += 1;
    }
    m
}

/// `{"columns": [x, y], "rows": [[x, n], …]}` as a map.
fn pairs(body: &Value) -> BTreeMap<String, i64> {
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let k = match &r[0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k, r[1].as_i64().unwrap())
        })
        .collect()
}

async fn setup(files: &[(&str, &str)]) -> (Lake, tempfile::TempDir, support::Server, Vec<Track>) {
    let lake = Lake::new();
    let data = tracks(300, 7);
    lake.commit("music", "tracks", &data, "run-1").await;
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let server = serve(&lake, dir.path(), DashboardOptions::default()).await;
    (lake, dir, server, data)
}

#[tokio::test]
async fn lists_dashboards_and_serves_panel_data_matching_the_rows() {
    let (_lake, _dir, server, data) = setup(&[("music.yaml", DASHBOARD)]).await;

    let (status, list) = server.get_json("/api/dashboards").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["id"], "music");
    assert_eq!(list[0]["title"], "Music");
    let ids: Vec<&str> = list[0]["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "per_type",
            "top_artists",
            "mean_popularity",
            "explicit",
            "rows"
        ]
    );

    // Tracks per album type, unfiltered.
    let all: Vec<&Track> = data.iter().collect();
    let (status, body) = server
        .get_json("/api/dashboards/music/panels/per_type/data")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["columns"], json!(["album_type", "count(*)"]));
    let expected: BTreeMap<String, i64> = count_by(&all, |t| t.album_type.clone());
    assert_eq!(pairs(&body), expected);

    // Two album types and a year range, bound as parameters.
    let (status, body) = server
        .get_json("/api/dashboards/music/panels/per_type/data?album_type=album&album_type=single&year=2000..2010")
        .await;
    assert_eq!(status, 200, "{body}");
    let chosen: Vec<&Track> = data
        .iter()
        .filter(|t| t.album_type == "album" || t.album_type == "single")
        .filter(|t| (2000..=2010).contains(&t.release_year))
        .collect();
    assert_eq!(pairs(&body), count_by(&chosen, |t| t.album_type.clone()));

    // A date range filter on a date column, open at its start.
    let (status, body) = server
        .get_json("/api/dashboards/music/panels/per_type/data?released=..1999-12-31")
        .await;
    assert_eq!(status, 200, "{body}");
    let early: Vec<&Track> = data.iter().filter(|t| t.release_year <= 1999).collect();
    assert_eq!(pairs(&body), count_by(&early, |t| t.album_type.clone()));

    // Top artists by followers: the three largest.
    let (_, body) = server
        .get_json("/api/dashboards/music/panels/top_artists/data")
        .await;
    let mut followers: BTreeMap<String, i64> = BTreeMap::new();
    for t in &data {
        followers.insert(t.artist_name.clone(), t.followers);
    }
    let mut top: Vec<(String, i64)> = followers.into_iter().collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.1));
    top.truncate(3);
    let got: Vec<(String, i64)> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_i64().unwrap()))
        .collect();
    assert_eq!(got, top);

    // The KPI: mean popularity of explicit tracks (a click filter on another column).
    let (_, body) = server
        .get_json("/api/dashboards/music/panels/mean_popularity/data?eq.explicit=true")
        .await;
    let explicit: Vec<&Track> = data.iter().filter(|t| t.explicit).collect();
    let mean = explicit
        .iter()
        .map(|t| t.track_popularity as f64)
        .sum::<f64>()
        / explicit.len() as f64;
    let got = body["rows"][0][0].as_f64().unwrap();
    assert!((got - mean).abs() < 1e-9, "{got} vs {mean}");

    // Explicit share.
    let (_, body) = server
        .get_json("/api/dashboards/music/panels/explicit/data")
        .await;
    assert_eq!(pairs(&body), count_by(&all, |t| t.explicit.to_string()));

    // A table panel, sorted and limited.
    let (_, body) = server
        .get_json("/api/dashboards/music/panels/rows/data")
        .await;
    let first: Vec<Value> = data
        .iter()
        .take(5)
        .map(|t| json!([t.track_id, t.album_type]))
        .collect();
    assert_eq!(body["rows"], Value::Array(first));

    // Filter options from SQL.
    let (_, body) = server
        .get_json("/api/dashboards/music/filters/album_type/options")
        .await;
    assert_eq!(body["values"], json!(["album", "compilation", "single"]));
}

#[tokio::test]
async fn filter_values_are_parameters_not_sql() {
    let (_lake, _dir, server, _) = setup(&[("music.yaml", DASHBOARD)]).await;
    let injected = "x%27%20OR%20%271%27%3D%271"; // x' OR '1'='1
    let (status, body) = server
        .get_json(&format!(
            "/api/dashboards/music/panels/per_type/data?album_type={injected}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([]), "the value matched no album type");
    let (status, body) = server
        .get_json(&format!(
            "/api/dashboards/music/panels/rows/data?eq.album_type={injected}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([]));

    // A value of the wrong type, an unknown filter, an unknown panel.
    let (status, body) = server
        .get_json("/api/dashboards/music/panels/per_type/data?year=19x0..")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["kind"], "bad_filter", "{body}");
    let (status, body) = server
        .get_json("/api/dashboards/music/panels/per_type/data?yaer=2000..")
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean 'year'?"),
        "{body}"
    );
    let (status, body) = server
        .get_json("/api/dashboards/music/panels/per_typ/data")
        .await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean 'per_type'?"),
        "{body}"
    );
}

#[tokio::test]
async fn csv_export_and_drill_through_rows() {
    let (_lake, _dir, server, data) = setup(&[("music.yaml", DASHBOARD)]).await;
    let (status, csv) = server
        .get("/api/dashboards/music/panels/per_type/data?format=csv&album_type=single")
        .await;
    assert_eq!(status, 200, "{csv}");
    let singles = data.iter().filter(|t| t.album_type == "single").count();
    assert_eq!(csv, format!("album_type,count(*)\nsingle,{singles}\n"));

    // Drill from a bar: the dataset's rows for that album type, every column.
    let (status, body) = server
        .get_json("/api/dashboards/music/panels/per_type/rows?eq.album_type=single")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["columns"].as_array().unwrap().len(), 10);
    let ids: Vec<&str> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = data
        .iter()
        .filter(|t| t.album_type == "single")
        .map(|t| t.track_id.as_str())
        .collect();
    let mut ids = ids;
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn cached_results_are_never_stale() {
    let (lake, _dir, server, data) = setup(&[("music.yaml", DASHBOARD)]).await;
    let path = "/api/dashboards/music/panels/per_type/data";
    let (_, first) = server.get_json(path).await;
    assert_eq!(first["cached"], false);
    let (_, again) = server.get_json(path).await;
    assert_eq!(again["cached"], true);
    assert_eq!(pairs(&again), pairs(&first));
    // Other filter values are other entries.
    let (_, other) = server.get_json(&format!("{path}?album_type=single")).await;
    assert_eq!(other["cached"], false);

    // A run commits a new version with other rows: the next load reads it.
    let newer = tracks(120, 99);
    lake.commit("music", "tracks", &newer, "run-2").await;
    let (_, fresh) = server.get_json(path).await;
    assert_eq!(fresh["cached"], false);
    let rows: Vec<&Track> = newer.iter().collect();
    assert_eq!(pairs(&fresh), count_by(&rows, |t| t.album_type.clone()));
    assert_ne!(
        pairs(&fresh),
        count_by(&data.iter().collect::<Vec<_>>(), |t| t.album_type.clone())
    );
    let (_, again) = server.get_json(path).await;
    assert_eq!(again["cached"], true);

    // The scheduler's hook drops exactly the entries over the table.
    assert!(server.state.cache().invalidate_table("music", "tracks") >= 1);
    assert_eq!(server.state.cache().invalidate_table("music", "tracks"), 0);
}

#[tokio::test]
async fn missing_tables_and_broken_files_do_not_stop_the_others() {
    let missing = r#"
id: later
title: Later
datasets:
  plays:
    sql: SELECT * FROM music.plays
panels:
  - id: count
    type: kpi
    dataset: plays
    encoding: { y: count(*) }
"#;
    let broken = "id: broken\ntitle: Broken\ndatasets:\n  t:\n    sql: SELECT * FROM music.tracks\npanels:\n  - id: p\n    type: bar\n    dataset: t\n    encoding: { x: album_typ, y: count(*) }\n";
    let (_lake, _dir, server, _) = setup(&[
        ("music.yaml", DASHBOARD),
        ("later.yaml", missing),
        ("broken.yaml", broken),
    ])
    .await;
    let (_, list) = server.get_json("/api/dashboards").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["later", "music"]);
    let (_, errors) = server.get_json("/api/dashboard-errors").await;
    let text = errors["errors"][0].as_str().unwrap();
    assert!(text.contains("broken.yaml:10:"), "{text}");
    assert!(text.contains("did you mean 'album_type'?"), "{text}");
    let (status, body) = server
        .get_json("/api/dashboards/later/panels/count/data")
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["kind"], "table_not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("table music.plays does not exist yet"),
        "{body}"
    );
}

#[tokio::test]
async fn the_workbench_runs_queries_only() {
    let (_lake, _dir, server, data) = setup(&[("music.yaml", DASHBOARD)]).await;
    let post = |sql: &str| {
        server
            .client
            .post(format!("{}/api/sql", server.base))
            .header("content-type", "application/json")
            .body(json!({ "sql": sql }).to_string())
            .send()
    };
    let r = post("SELECT count(*) AS n FROM music.tracks")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["rows"], json!([[data.len()]]));
    for sql in [
        "DROP TABLE music.tracks",
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO music.tracks SELECT * FROM music.tracks",
    ] {
        let r = post(sql).await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert!(status == 403 || status == 400, "{sql}: {status} {body}");
        assert!(
            body.contains("read_only") || body.contains("not supported"),
            "{sql}: {body}"
        );
    }
}
