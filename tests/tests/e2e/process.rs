//! How the processes behave under an orchestrator: health, readiness, metrics, graceful shutdown.
//!
//! Real `sluice-scheduler` and `sluice-executor` processes on loopback ports. HTTP is read
//! with a plain socket here, gRPC health with Python's grpcio (a client Sluice did not
//! write), and the run's rows are checked by DuckDB over the raw CSVs.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{ONE_CLUSTER_AT_A_TIME, free_port, start_scheduler, submitted_id};
use crate::moto::venv;
use crate::support::*;

/// An executor process with its own ports, killed when dropped unless it has exited.
struct Executor {
    child: Child,
    log: PathBuf,
    http: u16,
}

impl Executor {
    fn start(dir: &Path, name: &str, scheduler_port: u16, env: &[(&str, &str)]) -> Self {
        let http = free_port();
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        let child = Command::new(binary("sluice-executor"))
            .args(["--scheduler-port", &scheduler_port.to_string()])
            .args(["--port", &free_port().to_string()])
            .args(["--grpc-port", &free_port().to_string()])
            .args(["--vcores", "2"])
            .args(["--http-bind", &format!("127.0.0.1:{http}")])
            .env("SLUICE_LOG", "info")
            .env_remove("SLUICE_FAILPOINT")
            .envs(env.iter().copied())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("sluice-executor starts");
        let executor = Self { child, log, http };
        wait_until(30, "the executor's health port", || {
            http_get(executor.http, "/healthz").is_some()
        });
        executor
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The id the executor logged at start.
    fn id(&self) -> String {
        self.log_text()
            .lines()
            .find_map(|l| l.split_once("Executor id: "))
            .map(|(_, id)| id.trim().to_string())
            .unwrap_or_else(|| panic!("the executor logged no id:\n{}", self.log_text()))
    }

    /// The exit status, once the process has exited by itself (within `seconds`).
    fn wait_exit(&mut self, seconds: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the executor did not exit:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(seconds: u64, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET path` over HTTP/1.1 on a plain socket: (status, body), or `None` if nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    // The health server answers with a length or chunks; the tests read small bodies.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn status_of(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(status, _)| status)
}

/// `grpc.health.v1.Health/Check` for service "" by grpcio: SERVING, NOT_SERVING, or the
/// error. The request is an empty message; the answer's field 1 is the status enum.
fn grpc_health(port: u16) -> String {
    let script = format!(
        r#"
import grpc
channel = grpc.insecure_channel('127.0.0.1:{port}')
check = channel.unary_unary('/grpc.health.v1.Health/Check')
try:
    answer = check(b'', timeout=10)
    names = {{0: 'UNKNOWN', 1: 'SERVING', 2: 'NOT_SERVING'}}
    status = answer[1] if len(answer) == 2 and answer[0] == 0x08 else 0
    print(names.get(status, 'UNKNOWN') if answer else 'UNKNOWN')
except grpc.RpcError as e:
    print('ERROR', e.code())
"#
    );
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .output()
        .expect("python starts");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `sluice-executor probe URL`: whether it exited 0.
fn probe(url: &str) -> bool {
    Command::new(binary("sluice-executor"))
        .args(["probe", url, "--timeout-seconds", "10"])
        .output()
        .expect("the probe starts")
        .status
        .success()
}

/// Parses the Prometheus text exposition format strictly: every line is a `# HELP`,
/// a `# TYPE` (counter, gauge, histogram, summary, untyped) or a sample
/// `name{label="value",...} number`, and every sample's family has a TYPE line before it.
/// Returns each sample's value keyed by `name{labels}`.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut typed = std::collections::HashSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split_whitespace().next().unwrap_or_default();
            assert!(valid_name(name), "bad HELP line: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            assert!(
                parts.len() == 2
                    && valid_name(parts[0])
                    && ["counter", "gauge", "histogram", "summary", "untyped"].contains(&parts[1]),
                "bad TYPE line: {line}"
            );
            typed.insert(parts[0].to_string());
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment line: {line}");
        let (series, value) = line.rsplit_once(' ').expect("a sample: series and value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().unwrap_or_default();
        assert!(valid_name(name), "bad metric name: {line}");
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("bad labels: {line}"));
            for pair in inner.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(
                    valid_name(k) && v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                    "bad label: {line}"
                );
            }
        }
        let family = ["_total", "_sum", "_count", "_bucket"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(
            typed.contains(family) || typed.contains(name),
            "sample without a TYPE line: {line}"
        );
        samples.insert(series.to_string(), value);
    }
    samples
}

fn metric(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {samples:?}"))
}

/// The Spotify job over the shared sample.
fn spotify_job(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("examples/spotify/job.yaml")).expect("read");
    let text = text.replace(
        "staging: data",
        &format!("staging: {}", spotify_data().display()),
    );
    let job = dir.join("spotify.yaml");
    std::fs::write(&job, text).expect("write job");
    job
}

/// `sluice ARGS --scheduler http://127.0.0.1:PORT`.
fn cli(port: u16, args: &[&str]) -> Run {
    let url = format!("http://127.0.0.1:{port}");
    let mut all = args.to_vec();
    all.extend(["--scheduler", &url]);
    sluice(&all, &[])
}

fn run_state(port: u16, id: &str) -> String {
    cli(port, &["status", id])
        .expect_ok()
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("state   "))
        .unwrap_or("?")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn executor_readiness_health_and_metrics_follow_its_registration() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();

    // No scheduler yet: alive, not ready, and the probes say so.
    let executor = Executor::start(tmp.path(), "executor", port, &[]);
    assert_eq!(status_of(executor.http, "/healthz"), Some(200));
    assert_eq!(status_of(executor.http, "/readyz"), Some(503));
    assert_eq!(grpc_health(executor.http), "NOT_SERVING");
    assert!(probe(&executor.url("/healthz")));
    assert!(!probe(&executor.url("/readyz")));
    assert!(!probe(&format!("grpc://127.0.0.1:{}", executor.http)));
    assert!(!probe(&format!("http://127.0.0.1:{}/readyz", free_port())));

    // The scheduler comes up: the executor registers and becomes ready.
    let lake = tmp.path().join("lake");
    let scheduler = start_scheduler(
        tmp.path(),
        port,
        port,
        &lake.display().to_string(),
        &[],
        &[],
    );
    wait_until(60, "readiness after registration", || {
        status_of(executor.http, "/readyz") == Some(200)
    });
    wait_until(10, "gRPC SERVING", || {
        grpc_health(executor.http) == "SERVING"
    });
    assert!(probe(&executor.url("/readyz")));
    assert!(probe(&format!("grpc://127.0.0.1:{}", executor.http)));

    // A real job: every task ran on this executor, and /metrics counts them.
    let before = parse_prometheus(&http_get(executor.http, "/metrics").expect("metrics").1);
    assert_eq!(metric(&before, "sluice_executor_tasks_finished_total"), 0.0);
    let job = spotify_job(tmp.path());
    let run = cli(port, &["submit", job.to_str().expect("utf-8")]).expect_ok();
    assert!(run.stdout.contains("19,621 rows"), "{}", run.stdout);
    let received = executor.log_text().matches("Received task: [TID ").count();
    let finished = executor.log_text().matches("Finished task : [TID ").count();
    assert!(received > 0, "{}", executor.log_text());
    let (status, text) = http_get(executor.http, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    let after = parse_prometheus(&text);
    assert_eq!(
        metric(&after, "sluice_executor_tasks_finished_total"),
        finished as f64,
        "{text}"
    );
    assert_eq!(finished, received, "{}", executor.log_text());
    assert_eq!(metric(&after, "sluice_executor_tasks_failed_total"), 0.0);
    assert_eq!(metric(&after, "sluice_executor_tasks_running"), 0.0);
    assert!(metric(&after, "sluice_executor_shuffle_bytes_written_total") > 0.0);
    let id = executor.id();
    assert!(
        after.keys().any(|k| k.starts_with("sluice_executor_info{")
            && k.contains(&format!("executor_id=\"{id}\""))
            && k.contains("vcores=\"2\"")),
        "{text}"
    );
    let table = table_dir(&lake, "spotify", "tracks");
    assert_eq!(assert_spotify_oracle(&spotify_data(), &table), 19621);

    // The scheduler goes away: not ready any more.
    drop(scheduler);
    wait_until(60, "not ready without a scheduler", || {
        status_of(executor.http, "/readyz") == Some(503)
    });
    assert_eq!(status_of(executor.http, "/healthz"), Some(200));

    // SIGTERM with no scheduler to report to: it leaves without waiting out its grace.
    let mut executor = executor;
    sigterm(executor.pid());
    let exit = executor.wait_exit(20);
    assert!(exit.success(), "exit {exit:?}:\n{}", executor.log_text());
}

fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {pid}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_held_task_and_leaves_the_cluster() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let lake = tmp.path().join("lake");
    let scheduler = start_scheduler(
        tmp.path(),
        port,
        port,
        &lake.display().to_string(),
        &[],
        &[],
    );
    // Executor `slow` announces and holds every task 3 s; `steady` runs the rest.
    let mut slow = Executor::start(
        tmp.path(),
        "slow",
        port,
        &[("SLUICE_FAILPOINT", "slow_tasks")],
    );
    let steady = Executor::start(tmp.path(), "steady", port, &[]);
    for e in [&slow, &steady] {
        wait_until(60, "both executors ready", || {
            status_of(e.http, "/readyz") == Some(200)
        });
    }
    let slow_id = slow.id();

    let job = spotify_job(tmp.path());
    let submitted = cli(port, &["submit", job.to_str().expect("utf-8"), "--detach"]).expect_ok();
    let run_id = submitted_id(&submitted);

    // SIGTERM while the slow executor provably holds a task.
    let holds = format!("failpoint slow_tasks: pid {} holds task", slow.pid());
    wait_until(120, "the slow executor to hold a task", || {
        slow.log_text().contains(&holds)
    });
    sigterm(slow.pid());

    // Draining: not ready at once (the held task takes 3 s more).
    let mut saw_draining = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match status_of(slow.http, "/readyz") {
            Some(503) => {
                saw_draining = true;
                break;
            }
            Some(_) => std::thread::sleep(Duration::from_millis(20)),
            None => break,
        }
    }
    assert!(saw_draining, "readyz never said 503:\n{}", slow.log_text());

    let exit = slow.wait_exit(60);
    let log = slow.log_text();
    assert!(exit.success(), "exit {exit:?}:\n{log}");
    // Every task it received finished before it left.
    let received: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("Received task: [TID "))
        .filter_map(|(_, rest)| rest.split_once(']'))
        .map(|(id, _)| id)
        .collect();
    assert!(!received.is_empty(), "{log}");
    for task in &received {
        assert!(
            log.contains(&format!("Finished task : [TID {task}]")),
            "task {task} did not finish before the executor left:\n{log}"
        );
    }

    // The scheduler took it out of the cluster at once (well before its 8 s heartbeat
    // timeout could have), and the run succeeds with DuckDB's rows.
    wait_until(10, "the scheduler to remove the executor", || {
        scheduler
            .log_text()
            .contains(&format!("Removing executor {slow_id}"))
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    let state = loop {
        let s = run_state(port, &run_id);
        if ["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED"].contains(&s.as_str())
            || Instant::now() > deadline
        {
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        state,
        "SUCCEEDED",
        "{}\n{}",
        cli(port, &["status", &run_id]).stdout,
        scheduler.log_text()
    );
    let table = table_dir(&lake, "spotify", "tracks");
    assert_eq!(assert_spotify_oracle(&spotify_data(), &table), 19621);
    assert_eq!(status_of(steady.http, "/readyz"), Some(200));
}

/// A scheduler process owned by the test (so it can be signalled and its exit status
/// read), on loopback ports, killed when dropped unless it has exited.
struct SchedulerChild {
    child: Child,
    log: PathBuf,
}

impl SchedulerChild {
    /// Starts a scheduler whose executors share the client port `port`, with its HTTP port
    /// on `http`, its lake and run store under `dir`, and `extra` flags.
    fn start(dir: &Path, port: u16, http: u16, extra: &[String]) -> Self {
        Self::start_with_env(dir, port, http, extra, &[])
    }

    /// [`SchedulerChild::start`] with `env` added to its environment.
    fn start_with_env(
        dir: &Path,
        port: u16,
        http: u16,
        extra: &[String],
        env: &[(&str, &str)],
    ) -> Self {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("scheduler{n}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        let mut args: Vec<String> = vec![
            "--bind".into(),
            format!("127.0.0.1:{port}"),
            "--http-bind".into(),
            format!("127.0.0.1:{http}"),
            "--lake".into(),
            dir.join("lake").display().to_string(),
            "--data-dir".into(),
            dir.join("data").display().to_string(),
            "--executor-timeout-seconds".into(),
            "8".into(),
            "--partitions".into(),
            "8".into(),
        ];
        args.extend(extra.iter().cloned());
        crate::trust::add_staging_roots(dir, &mut args);
        let child = Command::new(binary("sluice-scheduler"))
            .args(&args)
            .env("SLUICE_LOG", "info")
            .env_remove("SLUICE_FAILPOINT")
            .envs(env.iter().copied())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("sluice-scheduler starts");
        let scheduler = Self { child, log };
        wait_until(60, "the scheduler's health port", || {
            status_of(http, "/healthz") == Some(200)
        });
        scheduler
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, once the process has exited by itself (within `seconds`).
    fn wait_exit(&mut self, seconds: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the scheduler did not exit:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SchedulerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gRPC status code grpcio gets for `method` called without a token (an empty request
/// message), e.g. `StatusCode.UNAUTHENTICATED`, or `OK`.
fn grpc_code_without_token(port: u16, method: &str) -> String {
    let script = format!(
        r#"
import grpc
channel = grpc.insecure_channel('127.0.0.1:{port}')
call = channel.unary_unary('{method}')
try:
    call(b'', timeout=10)
    print('OK')
except grpc.RpcError as e:
    print(e.code())
"#
    );
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .output()
        .expect("python starts");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Logs in to the dashboards on `http` (after checking the panel's data is refused without
/// a session), reads one panel's data from the scheduler and compares it with DuckDB's
/// aggregate over the table's Parquet files; returns the number of groups.
fn assert_panel_matches_duckdb(http: u16, table: &Path) -> usize {
    let script = r#"
import http.client, json, sys, urllib.parse
import duckdb
port, user, password, table = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
path = '/api/dashboards/spotify/panels/tracks_per_album_type/data'
c = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
c.request('GET', path)
r = c.getresponse(); r.read()
assert r.status == 401, f'without a session: {r.status}'
body = urllib.parse.urlencode({'user': user, 'password': password})
c.request('POST', '/login', body, {'Content-Type': 'application/x-www-form-urlencoded'})
r = c.getresponse(); r.read()
cookie = r.getheader('Set-Cookie')
assert cookie, f'no session cookie ({r.status})'
c.request('GET', path, headers={'Cookie': cookie.split(';')[0]})
r = c.getresponse(); text = r.read().decode()
assert r.status == 200, f'{r.status}: {text}'
data = json.loads(text)
names = [col if isinstance(col, str) else col.get('name') for col in data['columns']]
assert len(names) == 2, names
key = names.index('album_type')
got = sorted(((row[key], int(row[1 - key])) for row in data['rows']), key=repr)
want = sorted(((a, int(n)) for a, n in duckdb.sql(
    f"SELECT album_type, count(*) FROM read_parquet('{table}/**/*.parquet') GROUP BY 1"
).fetchall()), key=repr)
assert got == want, f'the panel {got} != DuckDB {want}'
print('groups', len(got))
"#;
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(http.to_string())
        .arg(crate::flight_sql::USER)
        .arg(crate::flight_sql::PASSWORD)
        .arg(table)
        .output()
        .expect("python starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("groups "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no group count:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_health_metrics_grpc_health_and_dashboards() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let cluster_port = free_port();
    let http = free_port();
    let config = crate::flight_sql::config_with_user(tmp.path(), "");
    let scheduler = start_scheduler(
        tmp.path(),
        port,
        cluster_port,
        &tmp.path().join("lake").display().to_string(),
        &[],
        &[
            "--config".into(),
            config.display().to_string(),
            "--http-bind".into(),
            format!("127.0.0.1:{http}"),
            "--dashboards".into(),
            repo()
                .join("examples/spotify/dashboard.yaml")
                .display()
                .to_string(),
        ],
    );

    // Ready with no executor at all: executors find the scheduler through its readiness.
    assert_eq!(status_of(http, "/healthz"), Some(200));
    wait_until(10, "the scheduler's readiness", || {
        status_of(http, "/readyz") == Some(200)
    });
    assert!(probe(&format!("http://127.0.0.1:{http}/readyz")));
    // grpc.health.v1 on the client port answers without a token; the job service does not.
    wait_until(10, "gRPC SERVING on the client port", || {
        grpc_health(port) == "SERVING"
    });
    assert!(probe(&format!("grpc://127.0.0.1:{port}")));
    assert_eq!(
        grpc_code_without_token(port, "/sluice.v1.JobService/ListJobs"),
        "StatusCode.UNAUTHENTICATED"
    );
    assert_eq!(
        grpc_code_without_token(port, "/arrow.flight.protocol.FlightService/ListFlights"),
        "StatusCode.UNAUTHENTICATED"
    );

    let before = parse_prometheus(&http_get(http, "/metrics").expect("metrics").1);
    assert_eq!(metric(&before, "sluice_job_runs{state=\"SUCCEEDED\"}"), 0.0);
    assert_eq!(metric(&before, "sluice_executors_alive"), 0.0);

    // A real run, logged in, on one executor.
    let executor = Executor::start(tmp.path(), "executor", cluster_port, &[]);
    wait_until(60, "the executor's registration", || {
        status_of(executor.http, "/readyz") == Some(200)
    });
    let job = spotify_job(tmp.path());
    let url = format!("http://127.0.0.1:{port}");
    let login = [("SLUICE_PASSWORD", crate::flight_sql::PASSWORD)];
    let user = ["--scheduler", &url, "--user", crate::flight_sql::USER];
    let mut submit = vec!["submit", job.to_str().expect("utf-8")];
    submit.extend(user);
    let run = sluice(&submit, &login).expect_ok();
    assert!(run.stdout.contains("19,621 rows"), "{}", run.stdout);
    let mut query = vec!["query", "SELECT count(*) AS n FROM spotify.tracks"];
    query.extend(user);
    let counted = sluice(&query, &login).expect_ok();
    assert!(counted.stdout.contains("19621"), "{}", counted.stdout);

    let table = table_dir(&tmp.path().join("lake"), "spotify", "tracks");
    assert_eq!(assert_spotify_oracle(&spotify_data(), &table), 19621);
    // The dashboard's panel, served by the scheduler through the cluster, equals DuckDB.
    assert!(assert_panel_matches_duckdb(http, &table) > 0);

    let (status, text) = http_get(http, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    let after = parse_prometheus(&text);
    assert_eq!(
        metric(&after, "sluice_job_runs{state=\"SUCCEEDED\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(metric(&after, "sluice_job_runs{state=\"FAILED\"}"), 0.0);
    assert_eq!(
        metric(
            &after,
            "sluice_job_run_duration_seconds_count{state=\"SUCCEEDED\"}"
        ),
        1.0
    );
    assert_eq!(metric(&after, "sluice_job_run_rows_written_total"), 19621.0);
    assert!(metric(&after, "sluice_job_run_tasks_total") > 0.0, "{text}");
    assert!(
        metric(&after, "sluice_job_run_bytes_read_total") > 0.0,
        "{text}"
    );
    assert!(
        metric(&after, "sluice_job_run_bytes_written_total") > 0.0,
        "{text}"
    );
    // The one statement `sluice query` ran over Flight SQL: counted once, and timed.
    assert_eq!(
        metric(&after, "sluice_queries_total{path=\"flight_sql\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &after,
            "sluice_query_duration_seconds_count{path=\"flight_sql\"}"
        ),
        1.0,
        "{text}"
    );
    assert!(
        metric(&after, "sluice_queries_total{path=\"dashboard\"}") >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &after,
            "sluice_query_duration_seconds_count{path=\"dashboard\"}"
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(metric(&after, "sluice_executors_alive"), 1.0, "{text}");

    // A new run over the same table (albums only): the panel shows its data at once, not
    // the cached answer over the previous version.
    let text = std::fs::read_to_string(&job).expect("read the job");
    let albums_only = text.replace(
        "      input: albums_artists_tracks\n\ntarget:\n  input: spotify",
        "      input: albums_artists_tracks\n  - filter: { name: albums_only, input: spotify, \
         predicate: \"album_type = 'album'\" }\n\ntarget:\n  input: albums_only",
    );
    assert_ne!(albums_only, text, "the job file changed shape");
    let second = tmp.path().join("albums_only.yaml");
    std::fs::write(&second, albums_only).expect("write the job");
    let mut submit = vec!["submit", second.to_str().expect("utf-8")];
    submit.extend(user);
    sluice(&submit, &login).expect_ok();
    let table = table_dir(&tmp.path().join("lake"), "spotify", "tracks");
    assert_eq!(assert_panel_matches_duckdb(http, &table), 1);
    drop(scheduler);
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_sigterm_leaves_the_held_run_for_the_next_start() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let http = free_port();
    let lake = tmp.path().join("lake");
    let mut scheduler = SchedulerChild::start(tmp.path(), port, http, &[]);
    // Executor `slow` announces and holds every task 3 s.
    let slow = Executor::start(
        tmp.path(),
        "slow",
        port,
        &[("SLUICE_FAILPOINT", "slow_tasks")],
    );
    wait_until(60, "the executor's registration", || {
        status_of(slow.http, "/readyz") == Some(200)
    });

    let job = spotify_job(tmp.path());
    let submitted = cli(port, &["submit", job.to_str().expect("utf-8"), "--detach"]).expect_ok();
    let run_id = submitted_id(&submitted);
    let holds = format!("failpoint slow_tasks: pid {} holds task", slow.pid());
    wait_until(120, "the slow executor to hold a task", || {
        slow.log_text().contains(&holds)
    });
    assert_eq!(run_state(port, &run_id), "RUNNING");

    // SIGTERM while the run's task is provably held: the scheduler exits 0, no version of
    // the table is published, and the run is left unfinished.
    let status = Command::new("kill")
        .args(["-TERM", &scheduler.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = scheduler.wait_exit(60);
    let log = scheduler.log_text();
    assert!(exit.success(), "exit {exit:?}:\n{log}");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    assert!(log.contains("runs left for the next start"), "{log}");
    assert!(catalog_entry(&lake, "spotify", "tracks").is_none());

    // The next start resubmits the run at once, and it succeeds with DuckDB's rows.
    let restarted = SchedulerChild::start(tmp.path(), port, http, &[]);
    wait_until(10, "readiness after the restart", || {
        status_of(http, "/readyz") == Some(200)
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let state = loop {
        let s = run_state(port, &run_id);
        if ["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED"].contains(&s.as_str())
            || Instant::now() > deadline
        {
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        state,
        "SUCCEEDED",
        "{}\n{}",
        cli(port, &["status", &run_id]).stdout,
        restarted.log_text()
    );
    assert!(
        restarted.log_text().contains("recovered=1"),
        "{}",
        restarted.log_text()
    );
    let table = table_dir(&lake, "spotify", "tracks");
    assert_eq!(assert_spotify_oracle(&spotify_data(), &table), 19621);
    let metrics = parse_prometheus(&http_get(http, "/metrics").expect("metrics").1);
    assert_eq!(
        metric(&metrics, "sluice_job_runs{state=\"SUCCEEDED\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_sigterm_during_a_commit_refuses_submissions_and_lets_it_finish() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let http = free_port();
    let lake = tmp.path().join("lake");
    let mut scheduler = SchedulerChild::start_with_env(
        tmp.path(),
        port,
        http,
        &[],
        &[("SLUICE_FAILPOINT", "slow_commit")],
    );
    let executor = Executor::start(tmp.path(), "executor", port, &[]);
    wait_until(60, "the executor's registration", || {
        status_of(executor.http, "/readyz") == Some(200)
    });
    let job = spotify_job(tmp.path());
    let submitted = cli(port, &["submit", job.to_str().expect("utf-8"), "--detach"]).expect_ok();
    let run_id = submitted_id(&submitted);
    wait_until(180, "the run's commit to be held", || {
        scheduler
            .log_text()
            .contains("failpoint slow_commit: holding the commit")
    });

    // SIGTERM inside the commit: not ready at once, new submissions refused, and the
    // commit finishes before the process exits 0.
    let status = Command::new("kill")
        .args(["-TERM", &scheduler.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    wait_until(5, "readyz to say 503", || {
        status_of(http, "/readyz") == Some(503)
    });
    let refused = cli(port, &["submit", job.to_str().expect("utf-8"), "--detach"]);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(!refused.ok && said.contains("shutting down"), "{said}");
    let exit = scheduler.wait_exit(60);
    let log = scheduler.log_text();
    assert!(exit.success(), "exit {exit:?}:\n{log}");
    let entry = catalog_entry(&lake, "spotify", "tracks").expect("the commit finished");
    assert_eq!(entry["run_id"].as_str(), Some(run_id.as_str()), "{entry}");
    let table = table_dir(&lake, "spotify", "tracks");
    assert_eq!(assert_spotify_oracle(&spotify_data(), &table), 19621);

    // The next start finds the run SUCCEEDED (it resubmits nothing).
    let restarted = SchedulerChild::start_with_env(tmp.path(), port, http, &[], &[]);
    assert_eq!(
        run_state(port, &run_id),
        "SUCCEEDED",
        "{}",
        restarted.log_text()
    );
    assert!(
        restarted.log_text().contains("recovered=0"),
        "{}",
        restarted.log_text()
    );
}

/// Dashboards serve data: without users, a non-loopback HTTP port is refused (unless
/// --insecure-no-auth); health and metrics alone may be open.
#[tokio::test(flavor = "multi_thread")]
async fn scheduler_refuses_open_dashboards_without_users() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dashboards = repo().join("examples/spotify/dashboard.yaml");
    let out = Command::new(binary("sluice-scheduler"))
        .args(["--bind", &format!("127.0.0.1:{}", free_port())])
        .args(["--http-bind", "0.0.0.0:0"])
        .arg("--dashboards")
        .arg(&dashboards)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("--lake")
        .arg(tmp.path().join("lake"))
        .output()
        .expect("sluice-scheduler starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("serves dashboards"),
        "{stderr}"
    );

    // Without dashboards the same open HTTP port is accepted: it serves health and metrics.
    let port = free_port();
    let http = free_port();
    let mut open = Command::new(binary("sluice-scheduler"))
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--http-bind", &format!("0.0.0.0:{http}")])
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("--lake")
        .arg(tmp.path().join("lake"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("open.log")).expect("log file"))
        .spawn()
        .expect("sluice-scheduler starts");
    wait_until(60, "the open health port", || {
        if let Ok(Some(status)) = open.try_wait() {
            panic!(
                "the scheduler with an open HTTP port exited ({status}):\n{}",
                std::fs::read_to_string(tmp.path().join("open.log")).unwrap_or_default()
            );
        }
        status_of(http, "/readyz") == Some(200)
    });
    assert_eq!(status_of(http, "/api/dashboards"), Some(404));
    let _ = open.kill();
    let _ = open.wait();
}
