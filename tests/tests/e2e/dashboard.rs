//! The dashboard pages and API against real lakes, in a real browser (Chromium via Playwright).
//!
//! The real `sluice run` writes the Spotify example into a temporary lake, the real
//! `sluice serve` serves it on a free loopback port, and `tests/browser_dashboard.py` drives
//! Debian's Chromium through every panel, filter, a bar click, the SQL workbench, the runs
//! page and an injection-shaped filter value, checking what the page fetched and drew against DuckDB
//! over the table's Parquet files. Without Chromium or Playwright the tests say they skipped,
//! unless `SLUICE_REQUIRE_BROWSER=1` (then they fail).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::support::*;

/// Debian's Chromium, the browser Playwright is pointed at.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether the browser and Playwright are here; panics when they are required but missing.
pub(crate) fn browser_available() -> bool {
    let python = crate::moto::venv().join("bin/python");
    let playwright = Command::new(&python)
        .args(["-c", "import playwright.sync_api"])
        .output()
        .is_ok_and(|o| o.status.success());
    let chromium = Path::new(CHROMIUM).exists();
    if playwright && chromium {
        return true;
    }
    let missing = match (chromium, playwright) {
        (false, false) => {
            "Chromium (apt-get install chromium) and Playwright (tests/requirements.txt)"
        }
        (false, true) => "Chromium (apt-get install chromium)",
        _ => "Playwright for Python in the test venv (tests/requirements.txt)",
    };
    assert!(
        std::env::var("SLUICE_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "SLUICE_REQUIRE_BROWSER=1 but {missing} is missing"
    );
    eprintln!("skipped: the browser test needs {missing}");
    false
}

/// A `sluice serve` process, stopped when dropped.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    url: String,
}

impl Server {
    /// Starts `sluice serve` over `lake` on a free loopback port; waits for its URL.
    fn start(lake: &Path, extra: &[&str]) -> Self {
        Self::start_with(&lake.display().to_string(), extra, &[])
    }

    /// Starts `sluice serve` over the lake URL `lake` with extra environment variables.
    fn start_with(lake: &str, extra: &[&str], env: &[(String, String)]) -> Self {
        let mut child = Command::new(binary("sluice"))
            .arg("serve")
            .args(["--lake", lake])
            .args(["--http-bind", "127.0.0.1:0"])
            .args(["--partitions", "2"])
            .args(extra)
            // The example dashboard is the default when the server starts in the repository.
            .current_dir(repo())
            .env_remove("SLUICE_LAKE")
            .env_remove("SLUICE_DASHBOARDS")
            .envs(env.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sluice serve starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut printed = String::new();
        let url = loop {
            let mut line = String::new();
            let n = stdout
                .read_line(&mut line)
                .expect("read sluice serve's output");
            assert!(n > 0, "sluice serve exited before serving:\n{printed}");
            printed.push_str(&line);
            if let Some(rest) = line.trim().strip_prefix("open ") {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("a URL after 'open'")
                    .to_string();
            }
        };
        assert!(
            printed.contains("serving 1 dashboard(s) from examples/spotify/dashboard.yaml"),
            "the example dashboard is not the default:\n{printed}"
        );
        Self { child, stdout, url }
    }

    /// Stops it with SIGTERM and checks it shut down cleanly.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {pid}");
        let exit = self.child.wait().expect("wait for sluice serve");
        let mut rest = String::new();
        for line in (&mut self.stdout).lines() {
            rest.push_str(&line.unwrap_or_default());
            rest.push('\n');
        }
        assert!(exit.success(), "sluice serve exited {exit:?}:\n{rest}");
        assert!(rest.contains("stopped"), "no clean stop:\n{rest}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the Spotify job into `dir/lake`; returns the lake, its table's version folder and
/// the run that wrote it.
pub(crate) fn spotify_lake(dir: &Path) -> (PathBuf, PathBuf, String) {
    let job = copy_example(dir);
    let lake = dir.join("lake");
    let (table, run_id) = run_spotify(&job, &lake);
    (lake, table, run_id)
}

/// Runs the job file `job` into `lake`; returns the table's version folder and the run.
fn run_spotify(job: &Path, lake: &Path) -> (PathBuf, String) {
    sluice(
        &[
            "run",
            &job.display().to_string(),
            "--lake",
            &lake.display().to_string(),
            "--preview",
            "0",
        ],
        &[],
    )
    .expect_ok();
    let table = table_dir(lake, "spotify", "tracks");
    let entry = catalog_entry(lake, "spotify", "tracks").expect("the table is registered");
    let run_id = entry["run_id"]
        .as_str()
        .expect("the run that wrote the table")
        .to_string();
    (table, run_id)
}

/// Runs the browser script against `url`; panics with its output unless every check passed.
fn browse(url: &str, table: &Path, run_id: &str, extra: &[&str]) {
    let out = Command::new(crate::moto::venv().join("bin/python"))
        .arg(repo().join("tests/browser_dashboard.py"))
        .arg(url)
        .arg(table)
        .arg(run_id)
        .args(extra)
        .output()
        .expect("the browser script starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the dashboard in Chromium differs from DuckDB:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all browser checks passed"), "{stdout}");
}

/// Keeps the first `rows` tracks of the staging CSV (its rows hold no line breaks).
fn keep_first_tracks(staging: &Path, rows: usize) {
    let path = staging.join("tracks.csv");
    let text = std::fs::read_to_string(&path).expect("read tracks.csv");
    let kept: Vec<&str> = text.lines().take(rows + 1).collect();
    std::fs::write(&path, kept.join("\n") + "\n").expect("write tracks.csv");
}

#[test]
fn serve_renders_every_panel_with_duckdbs_aggregates_in_chromium_and_sees_a_new_commit() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (lake, table, run_id) = spotify_lake(dir.path());
    let server = Server::start(&lake, &[]);
    let shot = dir.path().join("dashboard.png");
    browse(
        &server.url,
        &table,
        &run_id,
        &["--screenshot", &shot.display().to_string()],
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");

    // A run commits other data while the server runs (its results cached): the same pages
    // show the new version at once, equal to DuckDB over the new version's files.
    keep_first_tracks(&dir.path().join("data"), 5000);
    let (new_table, new_run) = run_spotify(&dir.path().join("job.yaml"), &lake);
    assert_ne!(new_run, run_id, "the second run has its own id");
    assert_ne!(new_table, table, "the second run wrote a new version");
    browse(&server.url, &new_table, &new_run, &[]);
    server.stop();
}

#[test]
fn serve_with_users_requires_a_login_then_serves_the_same_data() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (lake, table, run_id) = spotify_lake(dir.path());
    let users = dir.path().join("users.yaml");
    std::fs::write(
        &users,
        format!(
            "users:\n  - name: ana\n    password_hash: \"{}\"\n    role: analyst\n",
            password_hash("s3cret-pw")
        ),
    )
    .expect("write the users file");
    let server = Server::start(&lake, &["--users", &users.display().to_string()]);
    browse(
        &server.url,
        &table,
        &run_id,
        &["--user", "ana", "--password", "s3cret-pw"],
    );
    server.stop();
}

#[test]
fn serve_refuses_a_public_address_without_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = sluice(
        &[
            "serve",
            "--lake",
            &dir.path().join("lake").display().to_string(),
            "--http-bind",
            "0.0.0.0:0",
        ],
        &[],
    )
    .expect_failure();
    assert!(
        run.stderr.contains("without logins"),
        "unexpected refusal:\n{}",
        run.stderr
    );
}

#[test]
fn serve_over_an_s3_lake_shows_the_same_data_as_duckdb() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = crate::moto::Moto::start();
    moto.python("s3.create_bucket(Bucket='lake')");
    let env = moto.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let job = copy_example(dir.path());
    let lake = "s3://lake/warehouse";
    let job_arg = job.display().to_string();
    sluice(&["run", &job_arg, "--lake", lake, "--preview", "0"], &pairs).expect_ok();
    let tables = sluice(&["tables", "--lake", lake, "--format", "json"], &pairs).expect_ok();
    let entry: serde_json::Value = tables
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .find(|t| t["database"] == "spotify" && t["name"] == "tracks")
        .expect("spotify.tracks is listed");
    let location = entry["location"].as_str().expect("a location");
    let run_id = entry["run_id"].as_str().expect("the run that wrote it");
    let local = dir.path().join("downloaded");
    download_table(&moto, location, &local);

    let server = Server::start_with(lake, &[], &env);
    browse(&server.url, &local, run_id, &[]);
    server.stop();
}
