//! Scheduled and conditional triggers: the job service's schedule calls (register, list,
//! remove) and the timer that starts runs.
//!
//! - **Timers.** Twice a second the timer looks for a schedule whose next tick after its
//!   last fired one (or its registration) is due, records the tick as fired in the schedule
//!   store, then submits the run with `triggered_by = "schedule:<name>@<tick ms>"`. A tick
//!   recorded but whose run the scheduler did not get to submit (a crash in between) is
//!   found pending at the next start: if the run store has its run, that run is the tick's;
//!   otherwise it is submitted then. So a tick never starts two runs, also across a restart.
//! - **Missed ticks.** Ticks that passed while the scheduler was down are not backfilled
//!   (as Glue does not): only the latest of them fires, once, as a catch-up run.
//! - **Overlap.** A tick while the schedule's previous run is still waiting or running is
//!   skipped (logged, and spent: it does not fire later).
//! - **Conditional triggers.** `after: [job]`: when a run of `job` succeeds, a run of the
//!   schedule's job starts with `triggered_by = "after:<job>/<run id>"`, once per upstream
//!   run: the pair is recorded before the submit, and a start re-checks upstream runs that
//!   succeeded after the schedule was registered. A schedule that would close a cycle of
//!   conditional triggers (`a` after `b`, `b` after `a`; or longer) is refused when it is
//!   registered: each run would start the next forever.
//! - **Errors.** Why a schedule's last tick or trigger started no run (its submit was
//!   refused, or the previous run was still going) is kept in the store and listed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sluice_job::schedule::Timer;
use sluice_proto as pb;
use sluice_proto::RunState;
use tokio::sync::Notify;
use tonic::Status;

use super::jobs::{JobError, JobManager};
use super::schedule_store::{ScheduleStore, Stored};
use super::store::StoreError;

/// How often the timer looks for due ticks.
const POLL: Duration = Duration::from_millis(500);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The `triggered_by` of a timer's tick.
pub fn tick_trigger(name: &str, tick_ms: i64) -> String {
    format!("schedule:{name}@{tick_ms}")
}

/// The `triggered_by` of a conditional trigger.
pub fn after_trigger(job: &str, run_id: &str) -> String {
    format!("after:{job}/{run_id}")
}

/// The registered schedules and their timer.
pub struct Schedules {
    manager: Weak<JobManager>,
    store: ScheduleStore,
    /// One firing at a time (timer, restart checks and conditional triggers), so the
    /// store's check-and-record of a tick or an upstream run is never interleaved.
    firing: tokio::sync::Mutex<()>,
    /// Wakes the timer when a schedule is registered.
    wake: Notify,
    /// One registration at a time, so two schedules registered together cannot close a
    /// cycle of conditional triggers that neither closes alone.
    registering: std::sync::Mutex<()>,
}

fn run_state(run: &pb::JobRun) -> RunState {
    RunState::try_from(run.state).unwrap_or(RunState::Unspecified)
}

fn store_status(e: StoreError) -> Status {
    Status::internal(e.to_string())
}

/// Letters, digits, `_`, `-` and `.` (names go into `triggered_by` and file listings).
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a schedule name is required".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "schedule name '{name}': '{c}' is not allowed (letters, digits, _ - . only)"
        ));
    }
    Ok(())
}

impl Schedules {
    /// Opens the schedules store in `data_dir`, hooks the schedules into `manager` and
    /// starts the timer (which first settles what a previous process left pending).
    pub fn start(
        manager: &Arc<JobManager>,
        data_dir: &std::path::Path,
    ) -> Result<Arc<Self>, StoreError> {
        let store = ScheduleStore::open(data_dir)?;
        let schedules = Arc::new(Self {
            manager: Arc::downgrade(manager),
            store,
            firing: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            registering: std::sync::Mutex::new(()),
        });
        manager.set_schedules(Arc::clone(&schedules));
        let me = Arc::clone(&schedules);
        tokio::spawn(async move { me.run_timer().await });
        Ok(schedules)
    }

    fn manager(&self) -> Option<Arc<JobManager>> {
        self.manager.upgrade()
    }

    /// The entry with its next fire time and why its last firing started no run.
    fn shown(&self, stored: &Stored, now: i64) -> pb::ScheduleEntry {
        let mut entry = stored.entry.clone();
        entry.last_error = stored.state.last_error.clone();
        entry.next_fire_ms = entry
            .spec
            .as_ref()
            .and_then(|s| s.schedule.as_ref())
            .filter(|s| !s.cron.trim().is_empty())
            .and_then(|s| Timer::parse(&s.cron, &s.timezone).ok())
            .and_then(|t| t.next_after(entry.last_fire_ms.max(stored.state.created_ms).max(now)))
            .unwrap_or(0);
        entry
    }

    async fn run_timer(self: Arc<Self>) {
        self.settle_pending().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = self.wake.notified() => {}
            }
            let Some(manager) = self.manager() else {
                return;
            };
            if manager.is_shutting_down() {
                return;
            }
            if let Err(e) = self.fire_due(&manager).await {
                tracing::error!(error = %e, "schedules: cannot read the schedule store");
            }
        }
    }

    /// At start: pending ticks and conditional triggers of a previous process get their run
    /// (the one the run store has, or a new one), and upstream runs that succeeded while no
    /// trigger was recorded trigger now.
    async fn settle_pending(&self) {
        let Some(manager) = self.manager() else {
            return;
        };
        let _firing = self.firing.lock().await;
        let (schedules, runs) = match (self.store.list(), manager.list()) {
            (Ok(s), Ok(r)) => (s, r),
            (Err(e), _) => {
                tracing::error!(error = %e, "schedules: cannot read the schedule store");
                return;
            }
            (_, Err(e)) => {
                tracing::error!(error = %e, "schedules: cannot read the run store");
                return;
            }
        };
        for s in &schedules {
            let Some(tick) = s.state.pending_tick_ms else {
                continue;
            };
            let name = &s.entry.name;
            let trigger = tick_trigger(name, tick);
            if let Some(run) = runs.iter().find(|r| r.triggered_by == trigger) {
                tracing::info!(schedule = %name, tick, run = %run.id, "schedules: the pending tick's run was submitted before the restart");
                self.log_store(self.store.settle_tick(name, tick, Ok(&run.id)));
            } else {
                tracing::info!(schedule = %name, tick, "schedules: the pending tick's run was never submitted; submitting it now");
                self.submit_tick(&manager, s, tick).await;
            }
        }
        match self.store.pending_after() {
            Ok(pending) => {
                for (name, upstream) in pending {
                    let Some(s) = schedules.iter().find(|s| s.entry.name == name) else {
                        continue;
                    };
                    let Some(up) = runs.iter().find(|r| r.id == upstream) else {
                        continue;
                    };
                    let trigger = after_trigger(&up.job_name, &up.id);
                    if let Some(run) = runs.iter().find(|r| r.triggered_by == trigger) {
                        self.log_store(self.store.settle_after(&name, &upstream, &run.id));
                    } else {
                        self.submit_after(&manager, s, up).await;
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "schedules: cannot read the schedule store"),
        }
        // Upstream runs that succeeded with no trigger recorded (the scheduler stopped
        // between recording the run's end and recording the trigger).
        for s in &schedules {
            let after = s
                .entry
                .spec
                .as_ref()
                .and_then(|spec| spec.schedule.as_ref())
                .map(|sch| sch.after.clone())
                .unwrap_or_default();
            for up in runs.iter().rev() {
                if after.contains(&up.job_name)
                    && run_state(up) == RunState::Succeeded
                    && up.ended_at_ms >= s.state.created_ms
                    && matches!(self.store.after_fired(&s.entry.name, &up.id), Ok(None))
                {
                    self.fire_after(&manager, s, up).await;
                }
            }
        }
    }

    fn log_store<T>(&self, r: Result<T, StoreError>) {
        if let Err(e) = r {
            tracing::error!(error = %e, "schedules: cannot write the schedule store");
        }
    }

    /// Fires every due tick: the latest tick after the last fired one, if it has come.
    async fn fire_due(&self, manager: &Arc<JobManager>) -> Result<(), StoreError> {
        let now = now_ms();
        let _firing = self.firing.lock().await;
        let mut runs: Option<Vec<pb::JobRun>> = None;
        for s in self.store.list()? {
            let Some(schedule) = s
                .entry
                .spec
                .as_ref()
                .and_then(|spec| spec.schedule.as_ref())
            else {
                continue;
            };
            if schedule.cron.trim().is_empty() || s.state.pending_tick_ms.is_some() {
                continue;
            }
            let timer = match Timer::parse(&schedule.cron, &schedule.timezone) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(schedule = %s.entry.name, error = %e, "schedules: cannot read the timer");
                    continue;
                }
            };
            let since = s.entry.last_fire_ms.max(s.state.created_ms);
            let Some((tick, missed)) = timer.latest_due(since, now) else {
                continue;
            };
            let name = &s.entry.name;
            if missed > 0 {
                tracing::warn!(schedule = %name, missed, tick, "schedules: ticks missed while the scheduler was down are not backfilled; firing one catch-up run");
            }
            if runs.is_none() {
                runs = Some(manager.list().map_err(|e| match e {
                    JobError::Store(e) => e,
                    other => StoreError::Db(redb::Error::Corrupted(other.to_string())),
                })?);
            }
            let Some(runs) = runs.as_ref() else {
                continue;
            };
            let prefix = format!("schedule:{name}@");
            if let Some(previous) = runs
                .iter()
                .find(|r| r.triggered_by.starts_with(&prefix) && !run_state(r).is_final())
            {
                let why = format!(
                    "tick skipped: the previous scheduled run {} is still {}",
                    previous.id,
                    run_state(previous).as_str_name()
                );
                tracing::warn!(schedule = %name, tick, previous = %previous.id, "schedules: {why}");
                self.store.skip_tick(name, tick, &why)?;
                continue;
            }
            if self.store.mark_tick(name, tick)? {
                self.submit_tick(manager, &s, tick).await;
            }
        }
        Ok(())
    }

    /// Submits the run of a tick recorded as pending, and records its outcome.
    async fn submit_tick(&self, manager: &Arc<JobManager>, s: &Stored, tick: i64) {
        let name = &s.entry.name;
        let Some(spec) = s.entry.spec.clone() else {
            return;
        };
        match manager
            .submit_triggered(spec, tick_trigger(name, tick))
            .await
        {
            Ok(run) => {
                tracing::info!(schedule = %name, tick, run = %run.id, "schedules: tick fired");
                self.log_store(self.store.settle_tick(name, tick, Ok(&run.id)));
            }
            // Left pending: the next start submits it.
            Err(JobError::ShuttingDown) => {}
            Err(e) => {
                tracing::error!(schedule = %name, tick, error = %e, "schedules: the tick's run was refused");
                self.log_store(self.store.settle_tick(
                    name,
                    tick,
                    Err(&format!("the tick's run was refused: {e}")),
                ));
            }
        }
    }

    /// Told by the manager of every run that ends: a success triggers the schedules that
    /// name its job in `after`.
    pub fn run_ended(self: &Arc<Self>, run: &pb::JobRun) {
        if run_state(run) != RunState::Succeeded {
            return;
        }
        let me = Arc::clone(self);
        let run = run.clone();
        tokio::spawn(async move {
            let Some(manager) = me.manager() else {
                return;
            };
            let _firing = me.firing.lock().await;
            let schedules = match me.store.list() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "schedules: cannot read the schedule store");
                    return;
                }
            };
            for s in &schedules {
                let triggered = s
                    .entry
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.schedule.as_ref())
                    .is_some_and(|sch| sch.after.contains(&run.job_name));
                if triggered && run.ended_at_ms >= s.state.created_ms {
                    me.fire_after(&manager, s, &run).await;
                }
            }
        });
    }

    /// Records the trigger by `upstream` (once) and submits the downstream run.
    async fn fire_after(&self, manager: &Arc<JobManager>, s: &Stored, upstream: &pb::JobRun) {
        match self.store.mark_after(&s.entry.name, &upstream.id) {
            Ok(true) => self.submit_after(manager, s, upstream).await,
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "schedules: cannot write the schedule store"),
        }
    }

    async fn submit_after(&self, manager: &Arc<JobManager>, s: &Stored, upstream: &pb::JobRun) {
        let name = &s.entry.name;
        let Some(spec) = s.entry.spec.clone() else {
            return;
        };
        let trigger = after_trigger(&upstream.job_name, &upstream.id);
        match manager.submit_triggered(spec, trigger).await {
            Ok(run) => {
                tracing::info!(schedule = %name, upstream = %upstream.id, run = %run.id, "schedules: conditional trigger fired");
                self.log_store(self.store.settle_after(name, &upstream.id, &run.id));
                self.log_store(self.store.set_last_error(name, ""));
            }
            Err(JobError::ShuttingDown) => {}
            Err(e) => {
                tracing::error!(schedule = %name, upstream = %upstream.id, error = %e, "schedules: the triggered run was refused");
                self.log_store(
                    self.store
                        .settle_after(name, &upstream.id, &format!("- {e}")),
                );
                self.log_store(self.store.set_last_error(
                    name,
                    &format!(
                        "the run after {}'s run {} was refused: {e}",
                        upstream.job_name, upstream.id
                    ),
                ));
            }
        }
    }

    /// Registers (or replaces) a schedule.
    pub fn create(&self, request: pb::CreateScheduleRequest) -> Result<pb::ScheduleEntry, Status> {
        let spec = request
            .spec
            .ok_or_else(|| Status::invalid_argument("invalid job: spec: a job spec is required"))?;
        let Some(schedule) = &spec.schedule else {
            return Err(Status::invalid_argument(format!(
                "invalid job: schedule: job '{}' has no `schedule:` (a cron timer or `after:` jobs)",
                spec.name
            )));
        };
        if schedule.cron.trim().is_empty() && schedule.after.is_empty() {
            return Err(Status::invalid_argument(
                "invalid job: schedule: a schedule needs a cron timer, an `after:` list of jobs, or both",
            ));
        }
        if schedule.after.contains(&spec.name) {
            return Err(Status::invalid_argument(format!(
                "invalid job: schedule.after: job '{}' cannot follow itself (each run would start the next)",
                spec.name
            )));
        }
        if !schedule.cron.trim().is_empty()
            && let Err(e) = Timer::parse(&schedule.cron, &schedule.timezone)
        {
            return Err(Status::invalid_argument(format!(
                "invalid job: schedule: {e}"
            )));
        }
        let name = if request.name.is_empty() {
            spec.name.clone()
        } else {
            request.name
        };
        check_name(&name).map_err(Status::invalid_argument)?;
        let _registering = self
            .registering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !schedule.after.is_empty() {
            // The conditional triggers of every other schedule (one registered again under
            // this name is replaced, so its old `after` does not count).
            let registered: Vec<(String, Vec<String>)> = self
                .store
                .list()
                .map_err(store_status)?
                .into_iter()
                .filter(|s| s.entry.name != name)
                .filter_map(|s| {
                    let spec = s.entry.spec?;
                    let after = spec.schedule?.after;
                    Some((spec.name, after))
                })
                .collect();
            if let Some(cycle) = trigger_cycle(&registered, &spec.name, &schedule.after) {
                return Err(Status::invalid_argument(format!(
                    "invalid job: schedule.after: it would close a cycle of conditional triggers, {} \
                     (a success of each job starts the next), so every run would start another \
                     forever; unschedule one of them first",
                    cycle.join(" -> ")
                )));
            }
        }
        let now = now_ms();
        let stored = self
            .store
            .put(
                pb::ScheduleEntry {
                    name,
                    spec: Some(spec),
                    ..Default::default()
                },
                now,
            )
            .map_err(store_status)?;
        self.wake.notify_one();
        Ok(self.shown(&stored, now))
    }

    /// Every schedule with its next fire time.
    pub fn list(&self) -> Result<Vec<pb::ScheduleEntry>, Status> {
        let now = now_ms();
        Ok(self
            .store
            .list()
            .map_err(store_status)?
            .iter()
            .map(|s| self.shown(s, now))
            .collect())
    }

    /// Removes a schedule (its runs go on).
    pub fn delete(&self, name: &str) -> Result<pb::ScheduleEntry, Status> {
        self.store
            .delete(name)
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found(format!("no schedule named '{name}'")))
    }
}

/// The cycle that registering job `job` to follow `after` would close, given the registered
/// schedules' (job, after) pairs: the jobs in trigger order, from `job` back to it
/// (`["b", "a", "b"]`: a success of `b` starts `a`, whose success starts `b`). The shortest
/// such cycle; `None` when there is none.
pub fn trigger_cycle(
    registered: &[(String, Vec<String>)],
    job: &str,
    after: &[String],
) -> Option<Vec<String>> {
    // upstream job -> the jobs a success of it starts.
    let mut starts: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (downstream, ups) in registered {
        for up in ups {
            starts
                .entry(up.as_str())
                .or_default()
                .insert(downstream.as_str());
        }
    }
    let closing: BTreeSet<&str> = after.iter().map(String::as_str).collect();
    if closing.contains(job) {
        return Some(vec![job.to_string(), job.to_string()]);
    }
    // Breadth first from `job` along the registered triggers, to one of `after`.
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([job]);
    while let Some(at) = queue.pop_front() {
        for &next in starts.get(at).into_iter().flatten() {
            if next == job || came_from.contains_key(next) {
                continue;
            }
            came_from.insert(next, at);
            if closing.contains(next) {
                let mut path = vec![next.to_string()];
                let mut back = next;
                while let Some(&prev) = came_from.get(back) {
                    path.push(prev.to_string());
                    back = prev;
                }
                path.reverse();
                path.push(job.to_string());
                return Some(path);
            }
            queue.push_back(next);
        }
    }
    None
}

fn schedules(manager: &Arc<JobManager>) -> Result<&Arc<Schedules>, Status> {
    manager
        .schedules()
        .ok_or_else(|| Status::unavailable("the scheduler's schedules are not running"))
}

/// Registers (or replaces) the schedule in `request`.
pub async fn create_schedule(
    manager: &Arc<JobManager>,
    request: pb::CreateScheduleRequest,
) -> Result<pb::ScheduleEntry, Status> {
    schedules(manager)?.create(request)
}

/// Every registered schedule.
pub async fn list_schedules(
    manager: &Arc<JobManager>,
    _request: pb::ListSchedulesRequest,
) -> Result<pb::ListSchedulesResponse, Status> {
    Ok(pb::ListSchedulesResponse {
        schedules: schedules(manager)?.list()?,
    })
}

/// Removes the schedule named in `request`.
pub async fn delete_schedule(
    manager: &Arc<JobManager>,
    request: pb::DeleteScheduleRequest,
) -> Result<pb::ScheduleEntry, Status> {
    schedules(manager)?.delete(&request.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_triggers() {
        assert!(check_name("nightly-spotify_1.0").is_ok());
        assert!(check_name("").is_err());
        assert!(
            check_name("a@b")
                .expect_err("refused")
                .contains("'@' is not allowed")
        );
        assert_eq!(tick_trigger("n", 60_000), "schedule:n@60000");
        assert_eq!(after_trigger("up", "r1"), "after:up/r1");
    }

    fn registered(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        pairs
            .iter()
            .map(|(job, after)| {
                (
                    job.to_string(),
                    after.iter().map(|a| a.to_string()).collect(),
                )
            })
            .collect()
    }

    fn after(jobs: &[&str]) -> Vec<String> {
        jobs.iter().map(|j| j.to_string()).collect()
    }

    #[test]
    fn cycles_of_conditional_triggers_are_found() {
        // b after a; registering a after b closes a -> b -> a.
        let two = registered(&[("b", &["a"])]);
        assert_eq!(
            trigger_cycle(&two, "a", &after(&["b"])),
            Some(after(&["a", "b", "a"]))
        );
        // a after c, b after a; registering c after b closes c -> a -> b -> c.
        let three = registered(&[("a", &["c"]), ("b", &["a"])]);
        assert_eq!(
            trigger_cycle(&three, "c", &after(&["x", "b"])),
            Some(after(&["c", "a", "b", "c"]))
        );
        // A chain, a fan-in and a diamond are no cycle.
        let dag = registered(&[("b", &["a"]), ("c", &["a", "b"]), ("d", &["b", "c"])]);
        assert_eq!(trigger_cycle(&dag, "e", &after(&["d", "a"])), None);
        assert_eq!(trigger_cycle(&dag, "a", &after(&["x"])), None);
        // The shortest cycle is named when several would close.
        assert_eq!(
            trigger_cycle(&dag, "a", &after(&["d", "b"])),
            Some(after(&["a", "b", "a"]))
        );
        assert_eq!(
            trigger_cycle(&[], "a", &after(&["a"])),
            Some(after(&["a", "a"]))
        );
    }
}
