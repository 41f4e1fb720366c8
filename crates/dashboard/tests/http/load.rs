//! Dashboard files checked against a real catalog: file:line errors, did-you-mean hints,
//! duplicate keys, and the Spotify example over a table built from the sample CSVs.

// Helpers panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::path::Path;
use std::sync::Arc;

use datafusion::prelude::{CsvReadOptions, SessionContext};
use sluice_catalog::{Catalog, TableEntry};
use sluice_dashboard::{DashboardOptions, SessionsBackend, load_dir};
use support::{Lake, LakeSessions, serve, tracks};

const GOOD: &str = "id: ok\ntitle: OK\ndatasets:\n  t:\n    sql: SELECT * FROM music.tracks\npanels:\n  - id: p\n    type: kpi\n    dataset: t\n    encoding: { y: count(*) }\n";

async fn errors_of(lake: &Lake, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), text).unwrap();
    std::fs::write(dir.path().join("ok.yaml"), GOOD).unwrap();
    let backend = SessionsBackend::new(
        Arc::new(LakeSessions {
            catalog: Arc::clone(&lake.catalog),
        }),
        lake.catalog.clone(),
    );
    let report = load_dir(dir.path(), &backend).await;
    // The good file loads whatever is wrong with the other.
    let ids: Vec<&str> = report.dashboards.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["ok"], "{:?}", report.errors);
    assert_eq!(report.errors.len(), 1);
    report.errors[0].to_string()
}

#[tokio::test]
async fn mistakes_are_reported_with_file_line_and_hints() {
    let lake = Lake::new();
    lake.commit("music", "tracks", &tracks(20, 1), "run-1")
        .await;

    // An unknown key.
    let e = errors_of(&lake, "id: x\ntitel: X\n").await;
    assert!(e.contains("bad.yaml:2:1"), "{e}");
    assert!(e.contains("did you mean 'title'?"), "{e}");

    // An unknown panel type.
    let e = errors_of(
        &lake,
        "id: x\ntitle: X\ndatasets:\n  t:\n    sql: SELECT * FROM music.tracks\npanels:\n  - id: p\n    type: bars\n    dataset: t\n",
    )
    .await;
    assert!(e.contains("bad.yaml:8:"), "{e}");
    assert!(e.contains("did you mean 'bar'?"), "{e}");

    // A key written twice.
    let e = errors_of(&lake, "id: x\ntitle: X\ntitle: Y\n").await;
    assert!(e.contains("bad.yaml:3:1"), "{e}");
    assert!(e.contains("duplicate key 'title' (first at line 2)"), "{e}");

    // Unknown dataset, column, aggregate and sort key, all reported at once with lines.
    let text = "id: x\ntitle: X\ndatasets:\n  tracks:\n    sql: SELECT * FROM music.tracks\nfilters:\n  - id: kind\n    type: dropdown\n    column: album_typ\npanels:\n  - id: a\n    type: bar\n    dataset: trakcs\n  - id: b\n    type: bar\n    dataset: tracks\n    encoding:\n      x: album_type\n      y: averge(track_popularity)\n  - id: c\n    type: line\n    dataset: tracks\n    encoding: { x: release_yaer, y: count(*), sort: -z }\n";
    let e = errors_of(&lake, text).await;
    for expected in [
        "bad.yaml:9:5: filters[0].column: no dataset has a column 'album_typ' (did you mean 'album_type'?)",
        "bad.yaml:13:5: panels[0].dataset: no dataset 'trakcs' (did you mean 'tracks'?)",
        "bad.yaml:19:7: panels[1].encoding.y: unknown aggregate 'averge'",
        "(did you mean 'avg'?)",
        "bad.yaml:23:17: panels[2].encoding.x: dataset 'tracks' has no column 'release_yaer' (did you mean 'release_year'?)",
        "panels[2].encoding.sort: cannot sort by 'z'",
    ] {
        assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
    }

    // SQL that does not plan, and SQL that writes.
    let e = errors_of(
        &lake,
        "id: x\ntitle: X\ndatasets:\n  t:\n    sql: SELECT nope FROM music.tracks\npanels:\n  - id: p\n    type: kpi\n    dataset: t\n    encoding: { y: count(*) }\n",
    )
    .await;
    assert!(e.contains("bad.yaml:5:5: datasets.t.sql:"), "{e}");
    assert!(e.contains("nope"), "{e}");
    let e = errors_of(
        &lake,
        "id: x\ntitle: X\ndatasets:\n  t:\n    sql: DROP TABLE music.tracks\npanels:\n  - id: p\n    type: kpi\n    dataset: t\n    encoding: { y: count(*) }\n",
    )
    .await;
    assert!(e.contains("read-only"), "{e}");

    // Type mistakes show when the panel's query is planned at load.
    let e = errors_of(
        &lake,
        "id: x\ntitle: X\ndatasets:\n  t:\n    sql: SELECT * FROM music.tracks\npanels:\n  - id: p\n    type: kpi\n    dataset: t\n    encoding: { y: sum(album_type) }\n",
    )
    .await;
    assert!(e.contains("bad.yaml:10:5: panels[0].encoding:"), "{e}");
}

#[tokio::test]
async fn a_misspelt_table_is_a_warning_with_a_hint_and_its_panels_say_so() {
    let lake = Lake::new();
    lake.commit("music", "tracks", &tracks(20, 1), "run-1")
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.yaml"),
        "id: x\ntitle: X\ndatasets:\n  t:\n    sql: SELECT * FROM music.trakcs\npanels:\n  - id: p\n    type: kpi\n    dataset: t\n    encoding: { y: count(*) }\n",
    )
    .unwrap();
    let server = serve(&lake, dir.path(), DashboardOptions::default()).await;
    let (_, body) = server.get_json("/api/dashboard-errors").await;
    let warning = body["warnings"][0].as_str().unwrap();
    assert!(warning.contains("x.yaml:5:5: datasets.t.sql"), "{warning}");
    assert!(
        warning.contains("table music.trakcs does not exist yet (did you mean 'music.tracks'?)"),
        "{warning}"
    );
    let (status, body) = server.get_json("/api/dashboards/x/panels/p/data").await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean 'music.tracks'?"),
        "{body}"
    );
}

/// `spotify.tracks` as `examples/spotify/job.yaml` writes it: the three sample CSVs
/// joined, one copy of each key.
pub(crate) async fn spotify_table(lake: &Lake) -> TableEntry {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/spotify/data");
    let ctx = SessionContext::new();
    for name in ["albums", "artists", "tracks"] {
        ctx.register_csv(
            name,
            data.join(format!("{name}.csv")).to_str().unwrap(),
            CsvReadOptions::new(),
        )
        .await
        .unwrap();
    }
    let df = ctx
        .sql(
            "SELECT a.*, ar.name, ar.artist_popularity, ar.artist_genres, ar.followers, \
             t.track_popularity, lower(CAST(t.explicit AS VARCHAR)) = 'true' AS explicit \
             FROM albums a JOIN artists ar ON a.artist_id = ar.id JOIN tracks t ON a.track_id = t.id",
        )
        .await
        .unwrap();
    let folder = lake.dir.path().join("spotify/tracks/run-1");
    std::fs::create_dir_all(&folder).unwrap();
    df.write_parquet(folder.to_str().unwrap(), Default::default(), None)
        .await
        .unwrap();
    let entry = TableEntry {
        database: "spotify".into(),
        name: "tracks".into(),
        location: format!("file://{}/", folder.display()),
        classification: "parquet".into(),
        columns: Vec::new(),
        partition_keys: Vec::new(),
        partitions: Vec::new(),
        parameters: Default::default(),
        run_id: Some("run-1".into()),
        version: 0,
        updated_at: String::new(),
    };
    lake.catalog.commit_table(entry).await.unwrap()
}

#[tokio::test]
async fn the_spotify_example_loads_and_every_panel_has_data() {
    let lake = Lake::new();
    spotify_table(&lake).await;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/spotify");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        examples.join("dashboard.yaml"),
        dir.path().join("spotify.yaml"),
    )
    .unwrap();
    let server = serve(&lake, dir.path(), DashboardOptions::default()).await;
    let (_, errors) = server.get_json("/api/dashboard-errors").await;
    assert_eq!(errors["errors"], serde_json::json!([]), "{errors}");
    let (_, list) = server.get_json("/api/dashboards").await;
    let panels = list[0]["panels"].as_array().unwrap();
    assert!(panels.len() >= 6);
    for p in panels {
        let id = p["id"].as_str().unwrap();
        let (status, body) = server
            .get_json(&format!("/api/dashboards/spotify/panels/{id}/data?album_type=album&album_type=single&year=1990..2023"))
            .await;
        assert_eq!(status, 200, "{id}: {body}");
        assert!(
            !body["rows"].as_array().unwrap().is_empty(),
            "{id}: no rows"
        );
    }
    // The page and ECharts come from the binary.
    let (status, html) = server.get("/dashboards/spotify").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("/assets/echarts.min.js") && html.contains("Spotify 2023"),
        "{html}"
    );
    let (status, js) = server.get("/assets/echarts.min.js").await;
    assert_eq!(status, 200);
    assert!(js.len() > 500_000);
}

/// Serves the Spotify example until stopped, for a look in a browser:
/// `cargo test -p sluice-dashboard --test load -- --ignored serve_the_spotify_example --nocapture`
#[tokio::test]
#[ignore = "serves until stopped: a manual look at the pages"]
async fn serve_the_spotify_example() {
    let lake = Lake::new();
    spotify_table(&lake).await;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/spotify");
    let file = examples.join("dashboard.yaml");
    let server = serve(&lake, &file, DashboardOptions::default()).await;
    println!("serving {}/dashboards/spotify", server.base);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}
