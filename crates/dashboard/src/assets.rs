//! Static files embedded in the binary at build time: Apache ECharts (with its licence and
//! notice), the pages' scripts and their style sheet. Nothing is fetched from a CDN.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `(name, content type, bytes)` of every asset.
const ASSETS: [(&str, &str, &[u8]); 7] = [
    (
        "echarts.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/echarts.min.js"),
    ),
    (
        "echarts-LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/LICENSE"),
    ),
    (
        "echarts-NOTICE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/NOTICE"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/dashboard.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages.js"),
    ),
    (
        "playground.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/playground.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/style.css"),
    ),
];

/// `GET /assets/{name}`.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
