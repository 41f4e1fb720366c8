//! The cluster: a real `sluice-scheduler` and two `sluice-executor` processes on loopback
//! ports, driven through the `sluice` CLI over gRPC.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::support::*;

/// A port no one listens on, for a server a test starts next.
///
/// Ports come from 20000-32767, below Linux's ephemeral range (32768-60999): a port the kernel
/// hands out for `bind(0)` or as an outgoing connection's source port could be taken again
/// between this check and the server's own bind, failing a test now and then. Each test
/// process walks the range from its own offset, so no two calls in it return the same port.
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() % 64) * 199,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        let free = |host: &str| std::net::TcpListener::bind((host, port)).is_ok();
        if free("127.0.0.1") && free("0.0.0.0") {
            return port;
        }
    }
    panic!("no free port in {FIRST}-{}", FIRST + COUNT - 1)
}

/// Cluster tests run one at a time: each starts three processes that run CPU-heavy jobs,
/// and on a 2-core machine overlapping clusters starve executor heartbeats.
pub(crate) static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A process that is killed when dropped.
pub(crate) struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    pub(crate) fn spawn(
        bin: &str,
        args: &[String],
        env: &[(String, String)],
        log: PathBuf,
    ) -> Self {
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        let child = Command::new(binary(bin))
            .args(args)
            .env("SLUICE_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} starts: {e}"));
        Self { child, log }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn wait_for_log(&self, needle: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what} did not say '{needle}':\n{}", self.log_text());
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a test wants its scheduler started.
#[derive(Default, Clone)]
pub(crate) struct SchedulerSetup {
    /// Extra `sluice-scheduler` arguments (config file, TLS files, limits).
    pub args: Vec<String>,
    /// Serve executors on a port of their own (`--cluster-bind`).
    pub cluster_port: bool,
    /// URL clients use, `{port}` standing for the client port (default `http://127.0.0.1:{port}`).
    pub url: Option<String>,
}

/// A scheduler and two executors with their own lake and data folder.
pub(crate) struct Cluster {
    dir: PathBuf,
    lake: String,
    env: Vec<(String, String)>,
    /// The scheduler's client URL.
    pub url: String,
    port: u16,
    setup: SchedulerSetup,
    cluster_port: u16,
    scheduler: Proc,
    executors: Vec<Proc>,
}

impl Cluster {
    pub(crate) fn start(dir: &Path) -> Self {
        Self::start_with(dir, &dir.join("lake").display().to_string(), Vec::new())
    }

    /// A cluster whose lake is `lake` (a folder or URL), its processes run with `env`.
    fn start_with(dir: &Path, lake: &str, env: Vec<(String, String)>) -> Self {
        Self::start_full(dir, lake, env, SchedulerSetup::default())
    }

    /// A cluster whose scheduler is started as `setup` says.
    pub(crate) fn start_full(
        dir: &Path,
        lake: &str,
        env: Vec<(String, String)>,
        setup: SchedulerSetup,
    ) -> Self {
        let port = free_port();
        let cluster_port = if setup.cluster_port {
            free_port()
        } else {
            port
        };
        let scheduler = start_scheduler(dir, port, cluster_port, lake, &env, &setup.args);
        let executors = (0..2)
            .map(|i| {
                let args = vec![
                    "--scheduler-port".to_string(),
                    cluster_port.to_string(),
                    "--port".into(),
                    free_port().to_string(),
                    "--grpc-port".into(),
                    free_port().to_string(),
                    "--vcores".into(),
                    "2".into(),
                    "--heartbeat-seconds".into(),
                    "1".into(),
                    // Each executor's health port on a port of its own.
                    "--http-bind".into(),
                    "127.0.0.1:0".into(),
                ];
                let p = Proc::spawn(
                    "sluice-executor",
                    &args,
                    &env,
                    dir.join(format!("executor{i}.log")),
                );
                p.wait_for_log("Starting poll work loop", "executor");
                p
            })
            .collect();
        Self {
            dir: dir.to_path_buf(),
            lake: lake.to_string(),
            env,
            url: setup
                .url
                .as_deref()
                .unwrap_or("http://127.0.0.1:{port}")
                .replace("{port}", &port.to_string()),
            port,
            setup,
            cluster_port,
            scheduler,
            executors,
        }
    }

    /// Starts a new scheduler on the same port and data after the old one died, without
    /// the environment variable `unset` (such as a failpoint that crashed it).
    pub(crate) fn restart_dead_scheduler_without(&mut self, unset: &str) {
        self.scheduler.kill();
        self.env.retain(|(k, _)| k != unset);
        self.scheduler = start_scheduler(
            &self.dir,
            self.port,
            self.cluster_port,
            &self.lake,
            &self.env,
            &self.setup.args,
        );
    }

    /// What the scheduler has logged so far.
    pub(crate) fn scheduler_log(&self) -> String {
        self.scheduler.log_text()
    }

    /// Kills the scheduler with SIGKILL and starts a new one on the same port and data.
    fn restart_scheduler(&mut self) {
        self.scheduler.kill();
        self.scheduler = start_scheduler(
            &self.dir,
            self.port,
            self.cluster_port,
            &self.lake,
            &self.env,
            &self.setup.args,
        );
    }

    /// Runs `sluice ARGS` (no `--scheduler`) with the cluster's environment.
    fn cli_local(&self, args: &[&str]) -> Run {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        sluice(args, &env)
    }

    /// The scheduler's process id.
    pub(crate) fn scheduler_pid(&self) -> u32 {
        self.scheduler.pid()
    }

    pub(crate) fn lake(&self) -> PathBuf {
        self.dir.join("lake")
    }

    /// The scheduler's client port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The port executors reach Ballista's scheduler service at.
    pub(crate) fn cluster_port(&self) -> u16 {
        self.cluster_port
    }

    /// The process id of executor `i`.
    pub(crate) fn executor_pid(&self, i: usize) -> u32 {
        self.executors[i].pid()
    }

    /// What each executor has logged so far.
    pub(crate) fn executor_logs(&self) -> Vec<String> {
        self.executors.iter().map(Proc::log_text).collect()
    }

    /// The last `lines` lines of the scheduler's and each executor's log, for a failure
    /// message.
    pub(crate) fn log_tails(&self, lines: usize) -> String {
        let tail = |text: String| {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        };
        let mut out = format!(
            "--- scheduler log (tail) ---\n{}",
            tail(self.scheduler_log())
        );
        for (i, log) in self.executor_logs().into_iter().enumerate() {
            out.push_str(&format!("\n--- executor {i} log (tail) ---\n{}", tail(log)));
        }
        out
    }

    /// [`Cluster::cli`] with `extra` added to the environment.
    pub(crate) fn cli_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--scheduler", &self.url]);
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.extend_from_slice(extra);
        sluice(&all, &env)
    }

    /// Runs `sluice ARGS --scheduler URL` with the cluster's environment.
    pub(crate) fn cli(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--scheduler", &self.url]);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        sluice(&all, &env)
    }
}

pub(crate) fn start_scheduler(
    dir: &Path,
    port: u16,
    cluster_port: u16,
    lake: &str,
    env: &[(String, String)],
    extra: &[String],
) -> Proc {
    let mut args = vec![
        "--bind".to_string(),
        format!("127.0.0.1:{port}"),
        "--lake".into(),
        lake.to_string(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "--executor-timeout-seconds".into(),
        "8".into(),
        // Many output partitions, so the tasks of a stage spread over both executors.
        "--partitions".into(),
        "8".into(),
    ];
    if cluster_port != port {
        args.extend(["--cluster-bind".into(), format!("127.0.0.1:{cluster_port}")]);
    }
    // A free HTTP port (health, metrics, dashboards) unless the test names one: its
    // default, 127.0.0.1:8080, would be shared by schedulers started in parallel.
    if !extra.iter().any(|a| a == "--http-bind") {
        args.extend(["--http-bind".into(), format!("127.0.0.1:{}", free_port())]);
    }
    args.extend(extra.iter().cloned());
    crate::trust::add_staging_roots(dir, &mut args);
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let p = Proc::spawn(
        "sluice-scheduler",
        &args,
        env,
        dir.join(format!("scheduler{n}.log")),
    );
    p.wait_for_log("sluice-scheduler listening", "scheduler");
    p
}

pub(crate) fn state(cluster: &Cluster, run_id: &str) -> String {
    let out = cluster.cli(&["status", run_id]).expect_ok().stdout;
    out.lines()
        .find_map(|l| l.strip_prefix("state   "))
        .unwrap_or("?")
        .trim()
        .to_string()
}

pub(crate) fn wait_for_state(
    cluster: &Cluster,
    run_id: &str,
    wanted: &[&str],
    seconds: u64,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let s = state(cluster, run_id);
        if wanted.contains(&s.as_str()) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn submitted_id(run: &Run) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("submitted run "))
        .expect("a run id")
        .trim()
        .to_string()
}

/// A job whose self-join takes a while: `modulo` sets how long (smaller is longer).
pub(crate) fn self_join_job(dir: &Path, name: &str, modulo: u32) -> PathBuf {
    self_join_job_with(dir, name, modulo, "")
}

/// [`self_join_job`] with extra top-level YAML (such as `timeout_seconds: 3`).
pub(crate) fn self_join_job_with(dir: &Path, name: &str, modulo: u32, extra: &str) -> PathBuf {
    let job = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &job,
        format!(
            r#"
name: {name}
staging: {staging}
{extra}
sources:
  albums: {{ path: albums.csv }}
transforms:
  - sql:
      name: pairs
      inputs: [albums]
      query: "{query}"
target:
  input: pairs
  table: {{ database: test, name: {table} }}
"#,
            staging = spotify_data().display(),
            query = self_join_sql(modulo),
            table = name.replace('-', "_"),
        ),
    )
    .expect("write job");
    job
}

/// The self-join's query over `albums`: Sluice runs it, and DuckDB too as the oracle.
pub(crate) fn self_join_sql(modulo: u32) -> String {
    format!(
        "SELECT a.album_type, count(*) AS pairs, sum(a.duration_ms - b.duration_ms) AS diff \
         FROM albums a JOIN albums b \
         ON a.album_type = b.album_type AND a.track_number % {modulo} = b.track_number % {modulo} \
         GROUP BY a.album_type"
    )
}

/// Checks the self-join's table in `lake` against DuckDB running the same query over the
/// raw albums.csv (whole rows).
pub(crate) fn assert_self_join_oracle(lake: &Path, table: &str, modulo: u32) {
    let albums = spotify_data().join("albums.csv");
    let rows = assert_sql_oracle(
        &table_dir(lake, "test", table),
        &self_join_sql(modulo),
        &[("albums", albums.as_path())],
    );
    assert_eq!(rows, 3, "one row per album type");
}

/// Runs `job` embedded into a fresh local lake and checks the cluster's table equals it.
async fn assert_same_as_embedded(cluster: &Cluster, job: &Path, database: &str, table: &str) {
    let embedded_lake = cluster.dir.join("embedded-lake");
    let job = job.to_str().expect("utf-8");
    let lake = embedded_lake.to_str().expect("utf-8");
    sluice(&["run", job, "--lake", lake], &[]).expect_ok();
    assert_eq!(
        table_fingerprint(&cluster.lake(), database, table).await,
        table_fingerprint(&embedded_lake, database, table).await,
        "the cluster's output equals the embedded run's"
    );
}

async fn table_fingerprint(lake: &Path, database: &str, table: &str) -> String {
    let entry = catalog_entry(lake, database, table).expect("registered");
    let location = entry["location"]
        .as_str()
        .expect("location")
        .trim_start_matches("file://")
        .to_string();
    let ctx = SessionContext::new();
    ctx.register_parquet("t", &location, ParquetReadOptions::default())
        .await
        .expect("read parquet");
    let schema = ctx.table("t").await.expect("t").schema().as_arrow().clone();
    let cols: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    fingerprint(&ctx, "t", &cols).await
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_runs_jobs_like_the_embedded_mode_and_refuses_bad_ones() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(tmp.path());
    let job = repo().join("examples/spotify/job.yaml");
    let submitted = cluster
        .cli(&["submit", job.to_str().expect("utf-8")])
        .expect_ok();
    assert!(
        submitted.stdout.contains("state   SUCCEEDED"),
        "{}",
        submitted.stdout
    );
    assert!(
        submitted.stdout.contains("wrote   19,621 rows"),
        "{}",
        submitted.stdout
    );
    // Ballista broadcasts the small join sides: three stages (artists, tracks, then albums
    // joined and written), albums never shuffled.
    assert!(
        submitted.stdout.contains("(3 stages, ") && submitted.stdout.contains(" ms after submit)"),
        "reports stages and job start: {}",
        submitted.stdout
    );

    assert_same_as_embedded(&cluster, &job, "spotify", "tracks").await;
    // ...and both equal DuckDB's join of the raw CSVs, whole rows.
    let tracks = table_dir(&cluster.lake(), "spotify", "tracks");
    assert_eq!(assert_spotify_oracle(&spotify_data(), &tracks), 19621);

    // An invalid spec is refused up front with the field and a suggestion; no run is left.
    let bad = tmp.path().join("bad.yaml");
    let text = std::fs::read_to_string(&job).expect("read");
    std::fs::write(
        &bad,
        text.replace("left: artist_id", "left: artist_idd").replace(
            "staging: data",
            &format!("staging: {}", spotify_data().display()),
        ),
    )
    .expect("write");
    let refused = cluster
        .cli(&["submit", bad.to_str().expect("utf-8")])
        .expect_failure();
    assert!(
        refused.stderr.contains("the scheduler refused the job")
            && refused.stderr.contains("bad.yaml:29:13: transforms[0].join.on[0].left: no column 'artist_idd' in 'albums' (did you mean 'artist_id'?)"),
        "{}",
        refused.stderr
    );
    let listed = cluster.cli(&["jobs"]).expect_ok().stdout;
    assert_eq!(
        listed.lines().count(),
        2,
        "header and the one good run:\n{listed}"
    );

    // A job that fails while running is retried max_retries times, then ends FAILED.
    let failing = tmp.path().join("failing.yaml");
    std::fs::write(
        &failing,
        format!(
            r#"
name: failing
staging: {}
max_retries: 2
sources:
  albums: {{ path: albums.csv }}
transforms:
  - sql:
      name: boom
      inputs: [albums]
      query: SELECT track_id, track_number / (track_number - track_number) AS boom FROM albums
target:
  input: boom
  table: {{ database: test, name: failing }}
"#,
            spotify_data().display()
        ),
    )
    .expect("write");
    let failed = cluster
        .cli(&["submit", failing.to_str().expect("utf-8")])
        .expect_failure();
    assert!(
        failed.stdout.contains("attempt 3")
            && failed.stderr.contains("ended FAILED")
            && failed.stderr.contains("DivideByZero"),
        "stdout:\n{}\nstderr:\n{}",
        failed.stdout,
        failed.stderr
    );
    assert!(catalog_entry(&cluster.lake(), "test", "failing").is_none());

    // A missing source file is refused the same way.
    let missing = tmp.path().join("missing.yaml");
    std::fs::write(
        &missing,
        text.replace("staging: data", "staging: /nonexistent/staging"),
    )
    .expect("write");
    let refused = cluster
        .cli(&["submit", missing.to_str().expect("utf-8")])
        .expect_failure();
    assert!(
        refused.stderr.contains("no file matches"),
        "{}",
        refused.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_runs_stop_and_runs_survive_a_scheduler_restart() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cluster = Cluster::start(tmp.path());
    let spotify = repo().join("examples/spotify/job.yaml");
    let done = cluster
        .cli(&["submit", spotify.to_str().expect("utf-8")])
        .expect_ok();
    let done_id = submitted_id(&done);

    let long = self_join_job(tmp.path(), "long-job", 1);
    let submitted = cluster
        .cli(&["submit", long.to_str().expect("utf-8"), "--detach"])
        .expect_ok();
    let long_id = submitted_id(&submitted);
    assert_eq!(
        wait_for_state(&cluster, &long_id, &["RUNNING"], 30),
        "RUNNING"
    );
    // The cancel must reach tasks already running on the executors.
    let held = wait_for_held_tasks(&cluster, 60);
    let cancelled = cluster.cli(&["cancel", &long_id]).expect_ok();
    assert!(cancelled.stdout.contains("STOPPED"), "{}", cancelled.stdout);
    wait_until_released(&cluster, &held, "the job failed or was cancelled");
    assert_eq!(state(&cluster, &long_id), "STOPPED");
    assert!(
        catalog_entry(&cluster.lake(), "test", "long_job").is_none(),
        "nothing published"
    );
    assert!(
        versions(&cluster.lake(), "test", "long_job").is_empty(),
        "no version left"
    );
    let watched = cluster.cli(&["watch", &long_id]).expect_failure();
    assert!(
        watched.stderr.contains("ended STOPPED"),
        "{}",
        watched.stderr
    );

    // A run past its `timeout_seconds` ends TIMEOUT, not before, and publishes nothing.
    let slow = self_join_job_with(tmp.path(), "slow-job", 1, "timeout_seconds: 3");
    let started = Instant::now();
    let submitted = cluster
        .cli(&["submit", slow.to_str().expect("utf-8"), "--detach"])
        .expect_ok();
    let slow_id = submitted_id(&submitted);
    assert_eq!(
        wait_for_state(
            &cluster,
            &slow_id,
            &["TIMEOUT", "SUCCEEDED", "FAILED", "STOPPED"],
            60
        ),
        "TIMEOUT",
        "{}",
        cluster.cli(&["status", &slow_id]).stdout
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(30),
        "ended TIMEOUT after {took:?}"
    );
    assert!(
        catalog_entry(&cluster.lake(), "test", "slow_job").is_none(),
        "nothing published"
    );
    assert!(
        versions(&cluster.lake(), "test", "slow_job").is_empty(),
        "no version left"
    );
    let watched = cluster.cli(&["watch", &slow_id]).expect_failure();
    assert!(
        watched.stderr.contains("ended TIMEOUT"),
        "{}",
        watched.stderr
    );

    // A run in flight when the scheduler dies is resubmitted when it comes back.
    let medium = self_join_job(tmp.path(), "medium-job", 8);
    let submitted = cluster
        .cli(&["submit", medium.to_str().expect("utf-8"), "--detach"])
        .expect_ok();
    let medium_id = submitted_id(&submitted);
    assert_eq!(
        wait_for_state(&cluster, &medium_id, &["RUNNING"], 30),
        "RUNNING"
    );
    let held = wait_for_held_tasks(&cluster, 60);
    let old_data = job_folders(&cluster, &held);
    assert!(
        !old_data.is_empty(),
        "no executor holds data of the first attempt's jobs {held:?}"
    );
    cluster.restart_scheduler();
    // The restarted scheduler does not know the first attempt's jobs: the executors stop
    // their tasks instead of holding their slots until they end, and remove their data.
    wait_until_released(&cluster, &held, "the scheduler does not know the job");
    let deadline = Instant::now() + Duration::from_secs(40);
    while old_data.iter().any(|folder| folder.exists()) {
        assert!(
            Instant::now() < deadline,
            "the first attempt's data is still in {old_data:?} 40 s after the restart:\n{}",
            cluster.log_tails(40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed = cluster.cli(&["jobs"]).expect_ok().stdout;
    for (id, _) in [
        (&done_id, "SUCCEEDED"),
        (&long_id, "STOPPED"),
        (&medium_id, ""),
    ] {
        assert!(
            listed.contains(id.as_str()),
            "{id} listed after the restart:\n{listed}"
        );
    }
    assert_eq!(state(&cluster, &done_id), "SUCCEEDED");
    assert_eq!(state(&cluster, &long_id), "STOPPED");
    assert_eq!(
        wait_for_state(&cluster, &medium_id, &["SUCCEEDED", "FAILED"], 120),
        "SUCCEEDED",
        "resubmitted after the restart:\n{}\n{}",
        cluster.cli(&["status", &medium_id]).stdout,
        cluster.log_tails(60)
    );
    let status = cluster.cli(&["status", &medium_id]).expect_ok().stdout;
    assert!(
        status.contains("attempt 2") || status.contains("resubmitted"),
        "{status}"
    );
    assert_self_join_oracle(&cluster.lake(), "medium_job", 8);
}

/// Waits up to `seconds` until an executor's log shows it has held a task for 4 s (a task
/// of a long stage, not a quick scan that ends by itself); returns the tasks held that long
/// (`executor index`, task id).
fn wait_for_held_tasks(cluster: &Cluster, seconds: u64) -> Vec<(usize, String)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut first_seen: HashMap<(usize, String), Instant> = HashMap::new();
    loop {
        let now: Vec<(usize, String)> = cluster
            .executor_logs()
            .iter()
            .enumerate()
            .flat_map(|(i, log)| unfinished_tasks(log).into_iter().map(move |t| (i, t)))
            .collect();
        first_seen.retain(|task, _| now.contains(task));
        for task in &now {
            first_seen.entry(task.clone()).or_insert_with(Instant::now);
        }
        let long: Vec<(usize, String)> = first_seen
            .iter()
            .filter(|(_, since)| since.elapsed() >= Duration::from_secs(4))
            .map(|(task, _)| task.clone())
            .collect();
        if !long.is_empty() {
            return long;
        }
        assert!(
            Instant::now() < deadline,
            "no executor held a task for 4 s:\n{}",
            cluster.log_tails(40)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every task of `held` has finished in its executor's log (within 20 s, ten
/// times the executors' job watch interval), and checks that an executor said it stopped
/// tasks because of `reason`.
fn wait_until_released(cluster: &Cluster, held: &[(usize, String)], reason: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = cluster.executor_logs();
        let still: Vec<&(usize, String)> = held
            .iter()
            .filter(|(i, task)| unfinished_tasks(&logs[*i]).contains(task))
            .collect();
        if still.is_empty() {
            // Each held task's executor said why it stopped the task's job.
            for (i, task) in held {
                let job = task.split('/').next().unwrap_or_default();
                let said = format!("of job {job}: {reason}");
                assert!(
                    logs[*i]
                        .lines()
                        .any(|l| l.contains("stopping") && l.contains(&said)),
                    "task {task} ended, but executor {i} did not say it stopped it ({said}):\n{}",
                    cluster.log_tails(40)
                );
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tasks {still:?} still held 20 s later:\n{}",
            cluster.log_tails(40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The folders in the executors' work folders (named in their logs) of the Ballista jobs of
/// `tasks` that exist now.
fn job_folders(cluster: &Cluster, tasks: &[(usize, String)]) -> Vec<PathBuf> {
    let jobs: Vec<&str> = tasks
        .iter()
        .filter_map(|(_, task)| task.split('/').next())
        .collect();
    cluster
        .executor_logs()
        .iter()
        .filter_map(|log| {
            log.lines()
                .find_map(|l| l.split_once("work folder "))
                .map(|(_, dir)| PathBuf::from(dir.trim()))
        })
        .flat_map(|dir| jobs.iter().map(move |job| dir.join(job)))
        .filter(|folder| folder.is_dir())
        .collect()
}

/// The Ballista task ids (`job/stage.attempt/task.attempt`) an executor's log says it
/// received and has not (yet) finished.
fn unfinished_tasks(log: &str) -> Vec<String> {
    let ids = |marker: &str| -> Vec<String> {
        log.lines()
            .filter_map(|l| l.split_once(marker))
            .filter_map(|(_, rest)| rest.split_once(']'))
            .map(|(id, _)| id.to_string())
            .collect()
    };
    let finished = ids("Finished task : [TID ");
    ids("Received task: [TID ")
        .into_iter()
        .filter(|id| !finished.contains(id))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_survives_losing_an_executor() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cluster = Cluster::start(tmp.path());
    let job = self_join_job(tmp.path(), "resilient", 16);
    let submitted = cluster
        .cli(&["submit", job.to_str().expect("utf-8"), "--detach"])
        .expect_ok();
    let id = submitted_id(&submitted);
    assert_eq!(wait_for_state(&cluster, &id, &["RUNNING"], 30), "RUNNING");

    // Kill executor 0 while its log shows it holds a task of the run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while unfinished_tasks(&cluster.executors[0].log_text()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "executor 0 never held a task:\n{}",
            cluster.executors[0].log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.executors[0].kill();
    // The log is complete now: the task must still be unfinished in it.
    let killed_log = cluster.executors[0].log_text();
    let held = unfinished_tasks(&killed_log);
    assert!(
        !held.is_empty(),
        "the kill came after the executor's last task finished:\n{killed_log}"
    );

    assert_eq!(
        wait_for_state(&cluster, &id, &["SUCCEEDED", "FAILED"], 240),
        "SUCCEEDED",
        "{}\nscheduler log:\n{}",
        cluster.cli(&["status", &id]).stdout,
        cluster.scheduler.log_text()
    );
    // Recovery happened: the scheduler removed the killed executor (by the id it logged at
    // start), and Sluice ran the job again rather than commit Ballista's recovered output.
    let killed_id = killed_log
        .lines()
        .find_map(|l| l.split_once("Executor id: "))
        .map(|(_, id)| id.trim().to_string())
        .unwrap_or_else(|| panic!("the executor logged no id:\n{killed_log}"));
    let log = cluster.scheduler.log_text();
    assert!(
        log.contains(&format!("Removing executor {killed_id}")),
        "the scheduler never removed the killed executor {killed_id} (it held {held:?}):\n{log}"
    );
    let status = cluster.cli(&["status", &id]).expect_ok().stdout;
    assert!(
        status
            .lines()
            .next()
            .is_some_and(|l| !l.contains("attempt 1)") && l.contains("attempt ")),
        "the run was attempted again after the loss:\n{status}"
    );
    assert_self_join_oracle(&cluster.lake(), "resilient", 16);
    assert_same_as_embedded(&cluster, &job, "test", "resilient").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_staging_and_lake_on_the_cluster() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let moto = crate::moto::Moto::start();
    let data = spotify_data();
    moto.python(&format!(
        "for b in ['staging', 'lake']:\n    s3.create_bucket(Bucket=b)\n\
         for t in ['albums', 'artists', 'tracks']:\n    s3.upload_file('{}/' + t + '.csv', 'staging', 'spotify/' + t + '.csv')",
        data.display()
    ));
    let cluster = Cluster::start_with(tmp.path(), "s3://lake/warehouse", moto.env());
    let job = tmp.path().join("job.yaml");
    let text = std::fs::read_to_string(repo().join("examples/spotify/job.yaml")).expect("read");
    std::fs::write(
        &job,
        text.replace("staging: data", "staging: s3://staging/spotify/"),
    )
    .expect("write");
    let run = cluster
        .cli(&["submit", job.to_str().expect("utf-8")])
        .expect_ok();
    assert!(run.stdout.contains("wrote   19,621 rows"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("to s3://lake/warehouse/spotify/tracks/run-"),
        "{}",
        run.stdout
    );

    // The files are in the bucket, sealed, and the catalog entry is there too.
    let keys = moto.python(
        "r = s3.list_objects_v2(Bucket='lake', Prefix='warehouse/')\nprint('\\n'.join(o['Key'] for o in r.get('Contents', [])))",
    );
    assert!(
        keys.contains("warehouse/_sluice_catalog/spotify/tracks.json"),
        "{keys}"
    );
    assert!(
        keys.contains("/_SUCCESS") && keys.contains(".parquet"),
        "{keys}"
    );

    // The rows in the bucket are DuckDB's join of the raw CSVs, whole rows.
    let location = run
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("s3://lake/warehouse/spotify/tracks/run-"))
        .expect("the version's location")
        .to_string();
    let copy = tmp.path().join("from-s3");
    download_table(&moto, &location, &copy);
    assert_eq!(assert_spotify_oracle(&data, &copy), 19621);

    // Same answers as the embedded run over local folders.
    let local_lake = tmp.path().join("local-lake");
    sluice(
        &[
            "run",
            repo()
                .join("examples/spotify/job.yaml")
                .to_str()
                .expect("utf-8"),
            "--lake",
            local_lake.to_str().expect("utf-8"),
        ],
        &[],
    )
    .expect_ok();
    let sql = "SELECT count(*) AS n, count(DISTINCT artist_id) AS artists, sum(duration_ms) AS ms, \
               sum(followers) AS followers, min(track_name) AS first, max(release_date) AS latest FROM spotify.tracks";
    let on_s3 = cluster
        .cli_local(&[
            "query",
            sql,
            "--lake",
            "s3://lake/warehouse",
            "--format",
            "csv",
        ])
        .expect_ok();
    let local = sluice(
        &[
            "query",
            sql,
            "--lake",
            local_lake.to_str().expect("utf-8"),
            "--format",
            "csv",
        ],
        &[],
    )
    .expect_ok();
    assert_eq!(on_s3.stdout, local.stdout);

    // A bucket that does not exist is refused at submit.
    let missing = tmp.path().join("missing.yaml");
    std::fs::write(
        &missing,
        text.replace("staging: data", "staging: s3://no-such-bucket/spotify/"),
    )
    .expect("write");
    let refused = cluster
        .cli(&["submit", missing.to_str().expect("utf-8")])
        .expect_failure();
    assert!(
        refused.stderr.contains("sources.albums.path") && refused.stderr.contains("does not exist"),
        "{}",
        refused.stderr
    );
}

/// Runs the Spotify job on a cluster whose processes export spans to a local OTLP/gRPC
/// collector (`tests/otlp_collector.py`); returns the spans received and what the
/// executors logged.
fn spotify_run_traced(tmp: &Path) -> (Vec<serde_json::Value>, String) {
    let spans = tmp.join("spans.jsonl");
    let mut receiver = Command::new(crate::moto::venv().join("bin/python"))
        .arg(repo().join("tests/otlp_collector.py"))
        .arg(&spans)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the OTLP receiver starts");
    let mut port = String::new();
    {
        use std::io::BufRead;
        let stdout = receiver.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut port)
            .expect("the receiver prints its port");
    }
    let endpoint = format!("http://127.0.0.1:{}", port.trim());
    let lake = tmp.join("lake").display().to_string();
    let cluster = Cluster::start_with(
        tmp,
        &lake,
        vec![("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), endpoint)],
    );
    let job = repo().join("examples/spotify/job.yaml");
    cluster
        .cli(&["submit", job.to_str().expect("utf-8")])
        .expect_ok();

    // The batch exporter sends within seconds; wait for the run's spans.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received: Vec<serde_json::Value> = Vec::new();
    while Instant::now() < deadline {
        received = std::fs::read_to_string(&spans)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let names: Vec<&str> = received.iter().filter_map(|s| s["name"].as_str()).collect();
        if ["job_run", "plan", "execute", "stage"]
            .iter()
            .all(|n| names.contains(n))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = receiver.kill();
    let _ = receiver.wait();
    (received, cluster.executor_logs().join("\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_spans_reach_an_otlp_endpoint() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (received, _) = spotify_run_traced(tmp.path());
    let find = |name: &str| -> Vec<&serde_json::Value> {
        received
            .iter()
            .filter(|s| s["name"] == name && s["service"] == "sluice-scheduler")
            .collect()
    };
    let runs = find("job_run");
    assert_eq!(runs.len(), 1, "one job_run span: {received:?}");
    let trace = runs[0]["trace_id"].clone();
    for child in ["plan", "execute", "stage"] {
        let spans = find(child);
        assert!(!spans.is_empty(), "no {child} span: {received:?}");
        assert!(
            spans.iter().all(|s| s["trace_id"] == trace),
            "{child} is in the run's trace"
        );
    }
    let execute = find("execute")[0]["span_id"].clone();
    assert!(
        find("stage").iter().all(|s| s["parent_span_id"] == execute),
        "stages are children of the execute span: {received:?}"
    );
}

/// README: each `stage` span has "a `task finished` event per task and its duration".
#[tokio::test(flavor = "multi_thread")]
async fn every_finished_task_is_a_task_finished_event() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (received, executor_logs) = spotify_run_traced(tmp.path());
    let find = |name: &str| -> Vec<&serde_json::Value> {
        received
            .iter()
            .filter(|s| s["name"] == name && s["service"] == "sluice-scheduler")
            .collect()
    };
    // Every task the executors say they finished is a `task finished` event, with its
    // duration, on its stage's span; and nothing else is.
    let mut logged: Vec<(String, u64, u64)> = executor_logs
        .lines()
        .filter_map(|l| l.split_once("Finished task : [TID "))
        .filter_map(|(_, rest)| rest.split_once(']'))
        .map(|(tid, _)| {
            // job/stage.stage_attempt/task.task_attempt
            let mut parts = tid.split('/');
            let job = parts.next().expect("job").to_string();
            let stage = parts
                .next()
                .and_then(|s| s.split('.').next())
                .expect("stage");
            let task = parts
                .next()
                .and_then(|t| t.split('.').next())
                .expect("task");
            (
                job,
                stage.parse().expect("stage id"),
                task.parse().expect("task id"),
            )
        })
        .collect();
    logged.sort();
    // Integer attributes may arrive as OTLP ints or as decimal strings.
    let number = |v: &serde_json::Value| -> Option<u64> {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    let mut reported: Vec<(String, u64, u64)> = Vec::new();
    for stage in find("stage") {
        let job = stage["attributes"]["job"]
            .as_str()
            .unwrap_or_else(|| panic!("a job attribute: {stage}"));
        let stage_id = number(&stage["attributes"]["stage"])
            .unwrap_or_else(|| panic!("a stage attribute: {stage}"));
        let events: Vec<&serde_json::Value> = stage["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["name"] == "task finished")
            .collect();
        for e in events {
            assert!(
                number(&e["attributes"]["duration_ms"]).is_some(),
                "a duration: {e}"
            );
            let task = number(&e["attributes"]["task"]).expect("task attribute");
            reported.push((job.to_string(), stage_id, task));
        }
    }
    reported.sort();
    assert!(
        !logged.is_empty(),
        "no finished task in the executors' logs"
    );
    let missing: Vec<_> = logged.iter().filter(|t| !reported.contains(t)).collect();
    let mut repeated = reported.clone();
    repeated.dedup();
    let repeated: Vec<_> = repeated
        .iter()
        .filter(|t| reported.iter().filter(|r| r == t).count() > 1)
        .collect();
    assert_eq!(
        reported, logged,
        "the events must name exactly the tasks the executors finished \
         (job, stage, task): missing {missing:?}, reported more than once {repeated:?}"
    );
}
