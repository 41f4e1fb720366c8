//! Logins and roles against a real `sluice-scheduler`: a flood of wrong passwords keeps the
//! scheduler's memory bounded and backs off, while other users still log in; and each role
//! may do what it was given and no more (submit, cancel, schedules, bookmark resets).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use tonic::transport::Endpoint;

use crate::cluster::{Cluster, ONE_CLUSTER_AT_A_TIME, SchedulerSetup};
use crate::support::*;

/// A scheduler config with `users` as (name, password, role or "" for none).
fn config(dir: &Path, users: &[(&str, &str, &str)]) -> PathBuf {
    let mut text = String::from("users:\n");
    for (name, password, role) in users {
        text.push_str(&format!(
            "  - name: {name}\n    password_hash: \"{}\"\n",
            password_hash(password)
        ));
        if !role.is_empty() {
            text.push_str(&format!("    role: {role}\n"));
        }
    }
    let path = dir.join("scheduler.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn start(dir: &Path, config: &Path) -> Cluster {
    let setup = SchedulerSetup {
        args: vec!["--config".into(), config.display().to_string()],
        // Executors get a port of their own: the client port has logins.
        cluster_port: true,
        ..SchedulerSetup::default()
    };
    let lake = dir.join("lake");
    Cluster::start_full(dir, &lake.display().to_string(), Vec::new(), setup)
}

/// Resident memory of process `pid` in MiB (VmRSS of /proc/<pid>/status).
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or_else(|| panic!("no VmRSS in:\n{status}"))
}

/// A Flight `Handshake` with basic auth from source address `from`: the error text
/// (with the gRPC code) if refused.
async fn handshake(url: &str, from: [u8; 4], user: &str, password: &str) -> Result<(), String> {
    let channel = Endpoint::from_shared(url.to_string())
        .map_err(|e| e.to_string())?
        .local_address(Some(from.into()))
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut client = FlightSqlServiceClient::new(channel);
    client
        .handshake(user, password)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `n` concurrent wrong-password logins of `user` from `from`, while the scheduler's RSS is
/// sampled: (the refusals' texts, peak RSS in MiB).
async fn flood(url: &str, pid: u32, from: [u8; 4], user: &str, n: usize) -> (Vec<String>, u64) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let mut peak = rss_mib(pid);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(rss_mib(pid))
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let url = url.to_string();
        let user = user.to_string();
        tasks.spawn(async move { handshake(&url, from, &user, &format!("wrong {i}")).await });
    }
    let mut refusals = Vec::new();
    // Bounded: on a scheduler that hashes every attempt this would take minutes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while let Ok(Some(result)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
        match result.expect("login task") {
            Ok(()) => panic!("a wrong password logged in"),
            Err(e) => refusals.push(e),
        }
    }
    let unfinished = tasks.len();
    tasks.abort_all();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    assert_eq!(
        unfinished, 0,
        "{unfinished} of {n} logins still unanswered after 40 s (peak RSS {peak} MiB)"
    );
    (refusals, peak)
}

const CHECKED: &str = "invalid user name or password";
const BUSY: &str = "too many logins are being checked at once";
/// How arrow-flight's client error shows gRPC's RESOURCE_EXHAUSTED.
const RESOURCE_EXHAUSTED: &str = "Some resource has been exhausted";
const BACKED_OFF: &str = "too many failed logins for this user or from this address";

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_wrong_passwords_keeps_memory_bounded_and_backs_off() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = config(
        tmp.path(),
        &[
            ("target", "the target's password", ""),
            ("bob", "bob's password", ""),
        ],
    );
    let cluster = start(tmp.path(), &config);
    let pid = cluster.scheduler_pid();
    let url = cluster.url.clone();
    // The attacker floods from 127.0.0.2; bob logs in from 127.0.0.1.
    let (attacker, bob) = ([127, 0, 0, 2], [127, 0, 0, 1]);

    handshake(&url, bob, "bob", "bob's password")
        .await
        .expect("bob logs in");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = rss_mib(pid);

    // First burst: a few attempts are checked, the rest refused at once (queue full) or
    // backed off; nothing makes the scheduler grow by a hash's memory per attempt.
    let started = Instant::now();
    let (first, peak1) = flood(&url, pid, attacker, "target", 200).await;
    let first_took = started.elapsed();
    // The old scheduler hashed every attempt on its own blocking thread with its own 19 MiB
    // of Argon2 memory: 200 attempts took it from ~340 MB to 4 GB, kept after the flood.
    assert!(
        peak1 < baseline + 200,
        "RSS grew from {baseline} MiB to {peak1} MiB during the first flood"
    );
    let checked = first.iter().filter(|e| e.contains(CHECKED)).count();
    let busy = first.iter().filter(|e| e.contains(BUSY)).count();
    let backed_off = first.iter().filter(|e| e.contains(BACKED_OFF)).count();
    assert!(
        checked + busy + backed_off == first.len() && checked >= 1 && busy + backed_off >= 150,
        "checked {checked}, busy {busy}, backed off {backed_off} of {}; e.g. {:?}",
        first.len(),
        first.iter().find(|e| !e.contains(CHECKED))
    );
    assert!(
        first
            .iter()
            .filter(|e| !e.contains(CHECKED))
            .all(|e| e.contains(RESOURCE_EXHAUSTED)),
        "{:?}",
        first.iter().find(|e| !e.contains(RESOURCE_EXHAUSTED))
    );

    // Second burst: the user and the address are backed off (for 30 s after ten failures),
    // so next to nothing is hashed; the refusals say when to try again.
    let (second, peak2) = flood(&url, pid, attacker, "target", 200).await;
    let second_backed_off = second.iter().filter(|e| e.contains(BACKED_OFF)).count();
    assert!(
        second_backed_off >= 190
            && second
                .iter()
                .all(|e| e.contains(BACKED_OFF) || e.contains(BUSY) || e.contains(CHECKED)),
        "{second_backed_off} of {} backed off; e.g. {:?}",
        second.len(),
        second.iter().find(|e| !e.contains(BACKED_OFF))
    );
    assert!(
        second
            .iter()
            .filter(|e| e.contains(BACKED_OFF))
            .all(|e| e.contains("try again in") && e.contains(RESOURCE_EXHAUSTED)),
        "{:?}",
        second.first()
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_mib(pid);
    eprintln!(
        "scheduler RSS: baseline {baseline} MiB, peaks {peak1} / {peak2} MiB, after {after} MiB; \
         first burst {first_took:?}: {checked} checked, {busy} busy, {backed_off} backed off"
    );
    assert!(
        peak2 < baseline + 200,
        "RSS grew from {baseline} MiB to {peak2} MiB during the second flood"
    );
    assert!(
        after < baseline + 100,
        "RSS stayed at {after} MiB after the floods (baseline {baseline} MiB)"
    );

    // Another user, from another address, logs in promptly.
    let started = Instant::now();
    handshake(&url, bob, "bob", "bob's password")
        .await
        .expect("bob logs in after the flood");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bob's login took {:?}",
        started.elapsed()
    );
    // The flooded user is backed off from anywhere, and told when to retry, even with the
    // right password (it is not checked).
    let refused = handshake(&url, bob, "target", "the target's password")
        .await
        .expect_err("backed off");
    assert!(
        refused.contains(BACKED_OFF) && refused.contains("try again in"),
        "{refused}"
    );
    // Over the CLI too.
    let cli = sluice(
        &["jobs", "--scheduler", &url, "--user", "target"],
        &[("SLUICE_PASSWORD", "wrong")],
    )
    .expect_failure();
    assert!(
        cli.stderr.contains(BACKED_OFF) && cli.stderr.contains(RESOURCE_EXHAUSTED),
        "{}",
        cli.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_analyst_queries_but_cannot_submit_and_an_engineer_submits() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    // ana has no role: the default is analyst.
    let config = config(
        tmp.path(),
        &[
            ("ana", "ana's password", ""),
            ("eve", "eve's password", "engineer"),
        ],
    );
    let cluster = start(tmp.path(), &config);
    let lake = tmp.path().join("lake");
    let job = repo().join("examples/spotify/job.yaml");
    let job = job.to_str().expect("utf-8");
    let as_user = |user: &str, password: &str, args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--scheduler", &cluster.url]);
        sluice(
            &all,
            &[("SLUICE_USER", user), ("SLUICE_PASSWORD", password)],
        )
    };

    let refused = as_user("ana", "ana's password", &["submit", job]).expect_failure();
    assert!(
        refused.stderr.contains("PermissionDenied")
            && refused
                .stderr
                .contains("user `ana` has role `analyst`, which may not submit jobs")
            && refused.stderr.contains("query and read job runs"),
        "{}",
        refused.stderr
    );
    assert!(!lake.join("spotify").exists());

    let submitted = as_user("eve", "eve's password", &["submit", job]).expect_ok();
    assert!(
        submitted.stdout.contains("state   SUCCEEDED"),
        "{}",
        submitted.stdout
    );
    let run_id = submitted
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("submitted run "))
        .expect("a run id")
        .trim()
        .to_string();

    // The analyst reads run state and queries the table...
    let jobs = as_user("ana", "ana's password", &["jobs"]).expect_ok();
    assert!(jobs.stdout.contains(&run_id), "{}", jobs.stdout);
    let sql = "SELECT count(*) AS n FROM spotify.tracks";
    let counted = as_user("ana", "ana's password", &["query", sql, "--format", "csv"]).expect_ok();
    assert!(csv_count(&counted) > 0);
    // ...but cancels nothing.
    let cancel = as_user("ana", "ana's password", &["cancel", &run_id]).expect_failure();
    assert!(
        cancel.stderr.contains("PermissionDenied") && cancel.stderr.contains("may not cancel jobs"),
        "{}",
        cancel.stderr
    );
}

/// An analyst may list schedules and read a job's bookmark, but not register or remove a
/// schedule, nor reset a bookmark; an engineer may. Each refusal changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_analyst_may_not_schedule_unschedule_or_reset_bookmarks() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = config(
        tmp.path(),
        &[
            ("ana", "ana's password", "analyst"),
            ("eve", "eve's password", "engineer"),
        ],
    );
    let cluster = start(tmp.path(), &config);
    let lake = tmp.path().join("lake");
    let text = std::fs::read_to_string(repo().join("examples/spotify/job.yaml")).expect("read");
    let job = tmp.path().join("spotify.yaml");
    std::fs::write(
        &job,
        format!(
            "{}\nschedule: {{ cron: \"0 6 1 1 *\" }}\n",
            text.replace(
                "staging: data",
                &format!("staging: {}", spotify_data().display())
            )
        ),
    )
    .expect("write job");
    let job = job.to_str().expect("utf-8");
    let as_user = |user: &str, args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--scheduler", &cluster.url]);
        let password = format!("{user}'s password");
        sluice(
            &all,
            &[
                ("SLUICE_USER", user),
                ("SLUICE_PASSWORD", password.as_str()),
            ],
        )
    };
    let refused = |run: Run, what: &str| {
        // The role check's own words (`bookmark` prints the message without the code).
        let run = run.expect_failure();
        assert!(
            run.stderr
                .contains("user `ana` has role `analyst`, which may not submit jobs"),
            "{what}: {}",
            run.stderr
        );
    };
    let schedules = |user: &str| as_user(user, &["schedules"]).expect_ok().stdout;

    refused(as_user("ana", &["schedule", job]), "schedule");
    assert!(
        !schedules("ana").contains("spotify"),
        "{}",
        schedules("ana")
    );
    as_user("eve", &["schedule", job]).expect_ok();
    assert!(schedules("ana").contains("spotify"), "{}", schedules("ana"));
    refused(as_user("ana", &["unschedule", "spotify"]), "unschedule");
    assert!(schedules("eve").contains("spotify"), "{}", schedules("eve"));
    as_user("eve", &["unschedule", "spotify"]).expect_ok();
    assert!(
        !schedules("ana").contains("spotify"),
        "{}",
        schedules("ana")
    );

    // Bookmarks: the scheduler knows the job by its runs.
    as_user("eve", &["submit", job]).expect_ok();
    let table = lake.join("spotify/tracks");
    let before = crate::faults::files_under(&table);
    assert!(!before.is_empty());
    as_user("ana", &["bookmark", "show", "spotify"]).expect_ok();
    refused(
        as_user("ana", &["bookmark", "reset", "spotify"]),
        "bookmark reset",
    );
    assert_eq!(
        crate::faults::files_under(&table),
        before,
        "the refused reset changed the table's folder"
    );
    as_user("eve", &["bookmark", "reset", "spotify"]).expect_ok();
}
