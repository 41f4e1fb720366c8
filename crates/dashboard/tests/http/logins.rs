//! Logins with the same users as Flight SQL: session cookies, redirects, 401s, cross-site
//! POSTs refused; and the runs page over a runs backend.

// Helpers panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use sluice_dashboard::{DashboardOptions, QueryError, RunSummary, RunsBackend};
use sluice_flight_sql::{Authenticator, Role, User, hash_password};
use support::{Lake, Server, serve, tracks};

const DASHBOARD: &str = "id: music\ntitle: Music\ndatasets:\n  t:\n    sql: SELECT * FROM music.tracks\npanels:\n  - id: n\n    type: kpi\n    dataset: t\n    encoding: { y: count(*) }\n";

async fn server(secure: bool) -> (Lake, tempfile::TempDir, Server) {
    let lake = Lake::new();
    lake.commit("music", "tracks", &tracks(50, 3), "run-1")
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("music.yaml"), DASHBOARD).unwrap();
    let users = vec![User {
        name: "ana".into(),
        password_hash: hash_password("s3cret").unwrap(),
        role: Role::Analyst,
    }];
    let auth = Arc::new(Authenticator::new(users, Duration::from_secs(3600)).unwrap());
    let options = DashboardOptions {
        auth: Some(auth),
        secure_cookies: secure,
        ..DashboardOptions::default()
    };
    let server = serve(&lake, dir.path(), options).await;
    (lake, dir, server)
}

async fn login(server: &Server, password: &str) -> reqwest::Response {
    server
        .client
        .post(format!("{}/login", server.base))
        .header("origin", &server.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "user=ana&password={password}&next=%2Fdashboards%2Fmusic"
        ))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn pages_and_api_need_a_session_from_the_login_page() {
    let (_lake, _dir, server) = server(false).await;

    // Without a session: pages redirect to the login page, the API says 401.
    let (status, _) = server.get("/dashboards/music?x=1").await;
    assert_eq!(status, 303);
    let r = server
        .client
        .get(format!("{}/dashboards/music", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        "/login?next=/dashboards/music"
    );
    let (status, body) = server.get_json("/api/dashboards").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["kind"], "unauthenticated");
    let (status, _) = server.get("/api/dashboards/music/panels/n/data").await;
    assert_eq!(status, 401);
    // The login page and the scripts are open.
    let (status, html) = server.get("/login").await;
    assert_eq!(status, 200);
    assert!(html.contains("type=\"password\""));
    assert_eq!(server.get("/assets/dashboard.js").await.0, 200);

    // A wrong password.
    let r = login(&server, "nope").await;
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("set-cookie").is_none());

    // The right one: an HttpOnly, SameSite=Strict cookie (not Secure without TLS).
    let r = login(&server, "s3cret").await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/dashboards/music");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();

    let with = |path: &str| {
        server
            .client
            .get(format!("{}{path}", server.base))
            .header("cookie", &session)
            .send()
    };
    let r = with("/api/dashboards/music/panels/n/data").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["rows"], serde_json::json!([[50]]));
    let r = with("/dashboards/music").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("ana (analyst)"));

    // A forged cookie is no session.
    let r = server
        .client
        .get(format!("{}/api/dashboards", server.base))
        .header("cookie", "sluice_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // POSTs from another site are refused even with the session; from this one they run.
    let sql = |origin: &'static str| {
        server
            .client
            .post(format!("{}/api/sql", server.base))
            .header("cookie", &session)
            .header("origin", origin)
            .header("content-type", "application/json")
            .body(r#"{"sql": "SELECT count(*) FROM music.tracks"}"#)
            .send()
    };
    let r = sql("http://evil.example").await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("cross_site"));
    let own: &'static str = Box::leak(server.base.clone().into_boxed_str());
    let r = sql(own).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Logging out clears the cookie.
    let r = server
        .client
        .post(format!("{}/logout", server.base))
        .header("cookie", &session)
        .header("origin", &server.base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn cookies_are_secure_under_tls() {
    let (_lake, _dir, server) = server(true).await;
    let r = login(&server, "s3cret").await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

struct FixedRuns(Vec<RunSummary>);

#[async_trait::async_trait]
impl RunsBackend for FixedRuns {
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunSummary>, QueryError> {
        Ok(self.0.iter().take(limit).cloned().collect())
    }
}

#[tokio::test]
async fn the_runs_page_lists_runs_or_says_there_are_none() {
    let lake = Lake::new();
    let dir = tempfile::tempdir().unwrap();
    let open = serve(&lake, dir.path(), DashboardOptions::default()).await;
    let (status, html) = open.get("/runs").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"no-runs\""), "{html}");
    assert_eq!(open.get_json("/api/runs").await.0, 404);

    let runs = vec![
        RunSummary {
            id: "run-2".into(),
            job: "spotify".into(),
            state: "RUNNING".into(),
            started_at: Some("2026-11-26T09:00:00Z".into()),
            finished_at: None,
            progress: Some("stage 2/3".into()),
            error: None,
        },
        RunSummary {
            id: "run-1".into(),
            job: "spotify".into(),
            state: "FAILED".into(),
            started_at: Some("2026-11-26T08:00:00Z".into()),
            finished_at: Some("2026-11-26T08:01:00Z".into()),
            progress: None,
            error: Some("<file missing>".into()),
        },
    ];
    let options = DashboardOptions {
        runs: Some(Arc::new(FixedRuns(runs))),
        ..DashboardOptions::default()
    };
    let server = serve(&lake, dir.path(), options).await;
    let (status, html) = server.get("/runs").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("run-2") && html.contains("stage 2/3"),
        "{html}"
    );
    assert!(
        html.contains("&lt;file missing&gt;"),
        "errors are escaped: {html}"
    );
    assert!(
        html.contains("http-equiv=\"refresh\""),
        "a live run refreshes the page"
    );
    let (_, body) = server.get_json("/api/runs").await;
    assert_eq!(body["runs"][1]["state"], "FAILED");
}
