//! The dashboard playground in a real browser: build a panel, save it as YAML, edit the file and see the page change.
//!
//! The real `sluice run` writes the Spotify example into a temporary lake; the real
//! `sluice serve` serves a temporary copy of the dashboards folder with users (an engineer
//! and an analyst); `tests/browser_playground.py` drives Debian's Chromium: the engineer
//! builds a bar panel (album_type on x, count on y) and saves it, the script parses the
//! saved YAML, checks the saved panel's data against DuckDB over the table's Parquet
//! files, edits the file on disk and sees the page show the change; the analyst's save is
//! refused (403) and a cross-site POST is refused, the file unchanged both times.

use std::process::Command;

use crate::dashboard::{browser_available, spotify_lake};
use crate::support::*;
use crate::workbench::serve;

#[test]
fn playground_builds_a_panel_saves_yaml_and_the_file_drives_the_page() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (lake, table, _run_id) = spotify_lake(dir.path());
    let dashboards = dir.path().join("dashboards");
    std::fs::create_dir_all(&dashboards).expect("mkdir");
    std::fs::copy(
        repo().join("examples/spotify/dashboard.yaml"),
        dashboards.join("spotify.yaml"),
    )
    .expect("copy the example dashboard");
    let users = dir.path().join("users.yaml");
    std::fs::write(
        &users,
        format!(
            "users:\n  - name: eve\n    password_hash: \"{h}\"\n    role: engineer\n  - name: ana\n    password_hash: \"{h}\"\n    role: analyst\n",
            h = password_hash("s3cret-pw")
        ),
    )
    .expect("write the users file");
    let (_server, url) = serve(
        &lake,
        &[
            "--dashboards",
            &dashboards.display().to_string(),
            "--users",
            &users.display().to_string(),
        ],
    );
    let out = Command::new(crate::moto::venv().join("bin/python"))
        .arg(repo().join("tests/browser_playground.py"))
        .args([
            &url,
            &table.display().to_string(),
            &dashboards.display().to_string(),
        ])
        .args([
            "--engineer",
            "eve",
            "--analyst",
            "ana",
            "--password",
            "s3cret-pw",
        ])
        .output()
        .expect("the browser script starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the playground in Chromium failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all playground checks passed"), "{stdout}");
    // The file on disk holds the panel the browser built (the script then edited its title).
    let saved = std::fs::read_to_string(dashboards.join("spotify.yaml")).expect("read");
    assert!(saved.contains("  - id: album_types_built\n"), "{saved}");
}
