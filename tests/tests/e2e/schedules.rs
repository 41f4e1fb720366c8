//! Scheduled and conditional triggers: runs fire on time, never twice for one tick, also across a scheduler restart.
//!
//! The timer tests use `rate(2 seconds)`, a test-only form the scheduler and CLI accept
//! only with `SLUICE_TEST_SECOND_SCHEDULES=1` (Glue's timers fire at most once a minute,
//! which would make each test minutes long). Its ticks are the multiples of 2 s since the
//! epoch, so every tick is a number the test can check.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sluice_proto as pb;

use crate::cluster::{Cluster, SchedulerSetup};
use crate::support::*;

const SECONDS_ENV: (&str, &str) = ("SLUICE_TEST_SECOND_SCHEDULES", "1");

/// A small staging folder: `numbers.csv` with ten rows.
fn staging(dir: &Path) -> PathBuf {
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).expect("mkdir");
    let mut csv = String::from("id,v\n");
    for i in 1..=10 {
        csv.push_str(&format!("{i},{}\n", i * 10));
    }
    std::fs::write(staging.join("numbers.csv"), csv).expect("write csv");
    staging
}

/// A job over `numbers.csv` writing `test.<name>`; `query` selects from `numbers`.
fn job(dir: &Path, name: &str, query: &str, schedule: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            r#"name: {name}
staging: {staging}
max_retries: 0
sources:
  numbers: {{ path: numbers.csv }}
transforms:
  - sql:
      name: out
      inputs: [numbers]
      query: "{query}"
target:
  input: out
  table: {{ database: test, name: {table} }}
{schedule}
"#,
            staging = staging(dir).display(),
            table = name.replace('-', "_"),
        ),
    )
    .expect("write job");
    path
}

fn start(dir: &Path) -> Cluster {
    let env = vec![(SECONDS_ENV.0.to_string(), SECONDS_ENV.1.to_string())];
    Cluster::start_full(
        dir,
        &dir.join("lake").display().to_string(),
        env,
        SchedulerSetup::default(),
    )
}

/// Every run the scheduler knows, through the job service.
async fn runs(cluster: &Cluster) -> Vec<pb::JobRun> {
    let mut client = pb::job_service_client::JobServiceClient::connect(cluster.url.clone())
        .await
        .expect("connect to the job service");
    client
        .list_jobs(pb::ListJobsRequest {
            page_size: 10_000,
            ..Default::default()
        })
        .await
        .expect("ListJobs")
        .into_inner()
        .runs
}

/// The ticks of the runs schedule `name` started, one per run, in run order.
fn ticks(runs: &[pb::JobRun], name: &str) -> Vec<i64> {
    let prefix = format!("schedule:{name}@");
    let mut out: Vec<(String, i64)> = runs
        .iter()
        .filter_map(|r| {
            let tick = r.triggered_by.strip_prefix(&prefix)?;
            Some((r.id.clone(), tick.parse().expect("a tick in ms")))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, t)| t).collect()
}

/// Waits (up to `seconds`) until `done` holds for the runs; returns them.
async fn wait_runs(
    cluster: &Cluster,
    seconds: u64,
    what: &str,
    done: impl Fn(&[pb::JobRun]) -> bool,
) -> Vec<pb::JobRun> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let all = runs(cluster).await;
        if done(&all) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {seconds} s; runs: {:#?}\nscheduler log:\n{}",
            all.iter()
                .map(|r| (&r.id, &r.job_name, r.state, &r.triggered_by))
                .collect::<Vec<_>>(),
            cluster.scheduler_log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn final_state(r: &pb::JobRun) -> bool {
    pb::RunState::try_from(r.state).is_ok_and(|s| s.is_final())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A tick as `sluice status` prints it, `2026-11-26 06:00:02 UTC` (no seconds on a whole
/// minute), computed here from the civil calendar (not with the CLI's date library).
fn utc_text(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, sec) = (rest / 3600, rest % 3600 / 60, rest % 60);
    if sec == 0 {
        format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02} UTC")
    } else {
        format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{sec:02} UTC")
    }
}

/// The line of `sluice jobs` listing run `id`.
fn jobs_line(cluster: &Cluster, id: &str) -> String {
    let listed = cluster.cli(&["jobs"]).expect_ok().stdout;
    listed
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("run {id} in:\n{listed}"))
        .to_string()
}

fn assert_each_tick_once(ticks: &[i64]) {
    let distinct: BTreeSet<i64> = ticks.iter().copied().collect();
    assert_eq!(distinct.len(), ticks.len(), "a tick fired twice: {ticks:?}");
    assert!(
        ticks.iter().all(|t| t % 2_000 == 0),
        "every tick is a multiple of the 2 s period: {ticks:?}"
    );
    assert!(
        ticks.windows(2).all(|w| w[0] < w[1]),
        "later runs have later ticks: {ticks:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timer_fires_each_tick_once_across_a_kill_and_stops_when_unscheduled() {
    let _one = crate::cluster::ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let job = job(
        dir,
        "ticker",
        "SELECT id, v FROM numbers",
        "schedule: { cron: \"rate(2 seconds)\" }",
    );
    let job = job.to_str().expect("utf-8");
    let mut cluster = start(dir);
    let registered = cluster.cli(&["schedule", job]).expect_ok();
    assert!(
        registered.stdout.contains("schedule 'ticker' registered")
            && registered.stdout.contains("next fire 20"),
        "{}",
        registered.stdout
    );
    let started = now_ms();

    let before = wait_runs(&cluster, 120, "three ticks fire", |r| {
        ticks(r, "ticker").len() >= 3
    })
    .await;
    let first = ticks(&before, "ticker");
    assert_each_tick_once(&first);
    // What started a run, in words, in `sluice status` and `sluice jobs`.
    let ticked = before
        .iter()
        .find(|r| r.triggered_by == format!("schedule:ticker@{}", first[0]))
        .expect("the first tick's run");
    let started_by = format!("started by schedule ticker at {}", utc_text(first[0]));
    let status = cluster.cli(&["status", &ticked.id]).expect_ok().stdout;
    assert!(
        status.contains(&format!("trigger {started_by}\n")),
        "{status}"
    );
    let line = jobs_line(&cluster, &ticked.id);
    assert!(line.contains(&started_by), "{line}");
    assert!(
        first[0] > started - 2_000,
        "no tick before registering: {first:?}"
    );
    // Never more runs than ticks in the window (skipped ticks, whose previous run was still
    // going, start none).
    let window = (now_ms() - started) / 2_000 + 1;
    assert!(first.len() as i64 <= window, "{first:?} in {window} ticks");
    let listed = cluster.cli(&["schedules"]).expect_ok().stdout;
    assert!(
        listed.contains("ticker") && listed.contains("rate(2 seconds)") && listed.contains("UTC"),
        "{listed}"
    );

    // kill -9 and a new scheduler on the same data: ticks already fired stay fired, and
    // firing resumes.
    cluster.restart_dead_scheduler_without("SLUICE_NOTHING");
    let killed_at = now_ms();
    let after = wait_runs(&cluster, 180, "two ticks fire after the restart", |r| {
        ticks(r, "ticker")
            .iter()
            .filter(|t| **t > killed_at)
            .count()
            >= 2
    })
    .await;
    let all = ticks(&after, "ticker");
    assert_each_tick_once(&all);
    assert!(all.len() >= first.len() + 2, "{first:?} then {all:?}");
    assert!(
        after
            .iter()
            .filter(|r| r.triggered_by.starts_with("schedule:ticker@") && final_state(r))
            .all(|r| r.state == pb::RunState::Succeeded as i32),
        "every scheduled run succeeded"
    );

    // Unscheduled: once its runs are over, no new tick fires.
    cluster.cli(&["unschedule", "ticker"]).expect_ok();
    let removed_at = now_ms();
    assert!(
        cluster
            .cli(&["schedules"])
            .expect_ok()
            .stdout
            .contains("no schedules")
    );
    cluster.cli(&["unschedule", "ticker"]).expect_failure();
    wait_runs(&cluster, 120, "the scheduled runs end", |r| {
        r.iter().all(final_state)
    })
    .await;
    // Three more periods: a tick would have fired by now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let late: Vec<i64> = ticks(&runs(&cluster).await, "ticker")
        .into_iter()
        .filter(|t| *t > removed_at)
        .collect();
    assert!(late.is_empty(), "ticks after unschedule: {late:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conditional_trigger_follows_each_successful_upstream_run_once() {
    let _one = crate::cluster::ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let up = job(dir, "up", "SELECT id, v FROM numbers", "");
    let down = job(
        dir,
        "down",
        "SELECT count(*) AS n FROM numbers",
        "schedule:\n  after: [up]",
    );
    // The same job name, failing while it runs (a division by zero).
    let failing_dir = dir.join("failing");
    std::fs::create_dir_all(&failing_dir).expect("mkdir");
    let failing = job(
        &failing_dir,
        "up",
        "SELECT id, v / (id - id) AS boom FROM numbers",
        "",
    );
    let mut cluster = start(dir);
    cluster
        .cli(&["schedule", down.to_str().expect("utf-8")])
        .expect_ok();

    let downstream = |r: &[pb::JobRun]| -> Vec<pb::JobRun> {
        r.iter().filter(|r| r.job_name == "down").cloned().collect()
    };
    let up1 = crate::cluster::submitted_id(
        &cluster
            .cli(&["submit", up.to_str().expect("utf-8")])
            .expect_ok(),
    );
    let all = wait_runs(&cluster, 120, "the downstream run of up #1 ends", |r| {
        downstream(r).iter().any(final_state)
    })
    .await;
    let d = downstream(&all);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].triggered_by, format!("after:up/{up1}"));
    assert_eq!(d[0].state, pb::RunState::Succeeded as i32, "{:?}", d[0]);
    // What started each run, in words.
    let status = cluster.cli(&["status", &d[0].id]).expect_ok().stdout;
    assert!(
        status.contains(&format!("trigger started after job up's run {up1}\n")),
        "{status}"
    );
    let line = jobs_line(&cluster, &d[0].id);
    assert!(
        line.contains(&format!("started after job up's run {up1}")),
        "{line}"
    );
    let status = cluster.cli(&["status", &up1]).expect_ok().stdout;
    assert!(status.contains("trigger submitted\n"), "{status}");
    let line = jobs_line(&cluster, &up1);
    assert!(line.contains("  submitted"), "{line}");

    // A failed upstream run triggers nothing.
    cluster
        .cli(&["submit", failing.to_str().expect("utf-8")])
        .expect_failure();
    // A second successful one triggers a second downstream run.
    let up2 = crate::cluster::submitted_id(
        &cluster
            .cli(&["submit", up.to_str().expect("utf-8")])
            .expect_ok(),
    );
    let all = wait_runs(&cluster, 120, "the downstream run of up #2 ends", |r| {
        downstream(r).len() >= 2 && downstream(r).iter().all(final_state)
    })
    .await;
    let triggers: BTreeSet<String> = downstream(&all)
        .iter()
        .map(|r| r.triggered_by.clone())
        .collect();
    assert_eq!(
        triggers,
        BTreeSet::from([format!("after:up/{up1}"), format!("after:up/{up2}")]),
        "one downstream run per successful upstream run, none for the failed one"
    );

    // kill -9 and restart: no upstream run triggers again.
    cluster.restart_dead_scheduler_without("SLUICE_NOTHING");
    // A third upstream run after the restart triggers its own, and only its own, run.
    let up3 = crate::cluster::submitted_id(
        &cluster
            .cli(&["submit", up.to_str().expect("utf-8")])
            .expect_ok(),
    );
    let all = wait_runs(&cluster, 120, "the downstream run of up #3 ends", |r| {
        downstream(r)
            .iter()
            .any(|d| d.triggered_by == format!("after:up/{up3}") && final_state(d))
    })
    .await;
    let d = downstream(&all);
    assert_eq!(d.len(), 3, "{d:#?}");
    let distinct: BTreeSet<&str> = d.iter().map(|r| r.triggered_by.as_str()).collect();
    assert_eq!(distinct.len(), 3, "{d:#?}");
}

#[test]
fn an_invalid_cron_or_zone_is_reported_at_its_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let bad = job(
        dir,
        "bad-cron",
        "SELECT id FROM numbers",
        "schedule: \"cron(0 25 * * ? *)\"",
    );
    let line = std::fs::read_to_string(&bad)
        .expect("read")
        .lines()
        .position(|l| l.starts_with("schedule:"))
        .expect("a schedule line")
        + 1;
    let out = sluice(
        &["validate", "--offline", bad.to_str().expect("utf-8")],
        &[],
    )
    .expect_failure();
    assert!(
        out.stderr.contains(&format!("bad-cron.yaml:{line}:"))
            && out.stderr.contains("invalid cron 'cron(0 25 * * ? *)'"),
        "{}",
        out.stderr
    );
    let zone = job(
        dir,
        "bad-zone",
        "SELECT id FROM numbers",
        "schedule:\n  cron: \"0 6 * * *\"\n  timezone: Europe/Atlantis",
    );
    let zone_line = std::fs::read_to_string(&zone)
        .expect("read")
        .lines()
        .position(|l| l.contains("timezone:"))
        .expect("a timezone line")
        + 1;
    let out = sluice(&["schedule", zone.to_str().expect("utf-8")], &[]).expect_failure();
    assert!(
        out.stderr.contains(&format!("bad-zone.yaml:{zone_line}:"))
            && out.stderr.contains("unknown time zone 'Europe/Atlantis'"),
        "{}",
        out.stderr
    );
    // Seconds are refused without the test switch.
    let fast = job(
        dir,
        "fast",
        "SELECT id FROM numbers",
        "schedule: \"rate(2 seconds)\"",
    );
    let out = sluice(
        &["validate", "--offline", fast.to_str().expect("utf-8")],
        &[],
    )
    .expect_failure();
    assert!(out.stderr.contains("for tests only"), "{}", out.stderr);
    // Glue's form and the five-field form both pass.
    for (name, cron) in [("glue", "cron(0 6 * * ? *)"), ("five", "30 7 * * 1-5")] {
        let ok = job(
            dir,
            name,
            "SELECT id FROM numbers",
            &format!("schedule: {{ cron: \"{cron}\", timezone: Europe/Berlin }}"),
        );
        sluice(&["validate", "--offline", ok.to_str().expect("utf-8")], &[]).expect_ok();
    }
}

/// A tick whose run the scheduler refuses (the job's source file is missing) starts no
/// run, and `sluice schedules` says why. A conditional trigger that would close a cycle
/// (two jobs, or three) is refused when it is registered, naming the cycle at the job
/// file's `schedule` line.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_tick_is_listed_and_trigger_cycles_are_refused() {
    let _one = crate::cluster::ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broken = job(
        dir,
        "broken",
        "SELECT id, v FROM numbers",
        "schedule: { cron: \"rate(2 seconds)\" }",
    );
    let text = std::fs::read_to_string(&broken)
        .expect("read")
        .replace("path: numbers.csv", "path: gone.csv");
    std::fs::write(&broken, text).expect("write");
    let cluster = start(dir);
    cluster
        .cli(&["schedule", broken.to_str().expect("utf-8")])
        .expect_ok();
    let deadline = Instant::now() + Duration::from_secs(120);
    let listed = loop {
        let listed = cluster.cli(&["schedules"]).expect_ok().stdout;
        let row = listed
            .lines()
            .find(|l| l.starts_with("broken"))
            .unwrap_or("");
        if row.contains("refused") {
            break listed;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal listed within 120 s:\n{listed}\nscheduler log:\n{}",
            cluster.scheduler_log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        listed
            .lines()
            .next()
            .is_some_and(|h| h.contains("LAST ERROR")),
        "{listed}"
    );
    let row = listed
        .lines()
        .find(|l| l.starts_with("broken"))
        .expect("the schedule's row");
    assert!(
        row.contains("the tick's run was refused") && row.contains("gone.csv"),
        "{listed}"
    );
    assert!(
        runs(&cluster).await.iter().all(|r| r.job_name != "broken"),
        "a refused tick starts no run"
    );
    cluster.cli(&["unschedule", "broken"]).expect_ok();

    // Cycles: b after a, then a after b closes a -> b -> a.
    let after = |name: &str, up: &str| {
        job(
            dir,
            name,
            "SELECT id FROM numbers",
            &format!("schedule:\n  after: [{up}]"),
        )
    };
    let schedule = |path: &Path| cluster.cli(&["schedule", path.to_str().expect("utf-8")]);
    schedule(&after("b", "a")).expect_ok();
    let closing = after("a", "b");
    let line = std::fs::read_to_string(&closing)
        .expect("read")
        .lines()
        .position(|l| l.trim_start().starts_with("after:"))
        .expect("an after line")
        + 1;
    let refused = schedule(&closing).expect_failure();
    assert!(
        refused.stderr.contains(&format!("a.yaml:{line}:"))
            && refused
                .stderr
                .contains("cycle of conditional triggers, a -> b -> a"),
        "{}",
        refused.stderr
    );
    // Three jobs: y after x, z after y; x after z closes x -> y -> z -> x.
    schedule(&after("y", "x")).expect_ok();
    schedule(&after("z", "y")).expect_ok();
    let refused = schedule(&after("x", "z")).expect_failure();
    assert!(
        refused.stderr.contains("x -> y -> z -> x"),
        "{}",
        refused.stderr
    );
    // Registering a schedule again under its name is no cycle with itself; the refused
    // ones were not registered; once the chain is broken, x after z is accepted.
    schedule(&after("z", "y")).expect_ok();
    let listed = cluster.cli(&["schedules"]).expect_ok().stdout;
    let names: BTreeSet<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, BTreeSet::from(["b", "y", "z"]), "{listed}");
    cluster.cli(&["unschedule", "y"]).expect_ok();
    schedule(&after("x", "z")).expect_ok();
}
