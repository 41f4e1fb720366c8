//! Registered schedules persisted in an embedded database (redb) next to the run store
//! (`schedules.redb` in the scheduler's data folder), with the bookkeeping that keeps one
//! run per tick and per upstream run across restarts.
//!
//! A tick is recorded as fired (and *pending*) in one transaction before its run is
//! submitted; the run id is recorded when the submit returns. A restart that finds a
//! pending tick looks for its run in the run store (by `triggered_by`) before firing it
//! again, so a tick never starts two runs. Conditional triggers work the same way, keyed by
//! the upstream run.

use std::path::Path;

use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sluice_proto as pb;

use super::store::StoreError;

/// name → protobuf [`pb::ScheduleEntry`] (without `next_fire_ms`, which is computed).
const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("schedules");
/// name → YAML [`ScheduleState`].
const STATES: TableDefinition<&str, &str> = TableDefinition::new("schedule_states");
/// `name\nupstream run id` → the downstream run id (empty while pending).
const AFTER: TableDefinition<&str, &str> = TableDefinition::new("after_fired");

macro_rules! db_err {
    ($e:expr) => {
        $e.map_err(|e| StoreError::Db(e.into()))
    };
}

/// Bookkeeping of a schedule beyond its entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// When it was registered (ms since the Unix epoch): no tick at or before fires, and
    /// only upstream runs that end after it trigger.
    pub created_ms: i64,
    /// A tick recorded as fired whose run id is not recorded yet.
    #[serde(default)]
    pub pending_tick_ms: Option<i64>,
    /// Why the last tick started no run (submit refused, previous run still going).
    #[serde(default)]
    pub last_error: String,
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The entry (name, spec, last fire and run).
    pub entry: pb::ScheduleEntry,
    /// Its bookkeeping.
    pub state: ScheduleState,
}

/// The schedules store.
pub struct ScheduleStore {
    db: Database,
}

fn after_key(name: &str, upstream_run: &str) -> String {
    format!("{name}\n{upstream_run}")
}

fn decode_state(name: &str, text: &str) -> Result<ScheduleState, StoreError> {
    serde_yaml::from_str(text).map_err(|e| {
        StoreError::Db(redb::Error::Corrupted(format!(
            "schedule '{name}' bookkeeping: {e}"
        )))
    })
}

fn encode_state(state: &ScheduleState) -> Result<String, StoreError> {
    serde_yaml::to_string(state)
        .map_err(|e| StoreError::Db(redb::Error::Corrupted(format!("schedule bookkeeping: {e}"))))
}

impl ScheduleStore {
    /// Opens (or creates) `dir/schedules.redb`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(redb::Error::Io(e)))?;
        let db = db_err!(Database::create(dir.join("schedules.redb")))?;
        let txn = db_err!(db.begin_write())?;
        db_err!(txn.open_table(ENTRIES))?;
        db_err!(txn.open_table(STATES))?;
        db_err!(txn.open_table(AFTER))?;
        db_err!(txn.commit())?;
        Ok(Self { db })
    }

    /// Every schedule, by name.
    pub fn list(&self) -> Result<Vec<Stored>, StoreError> {
        let txn = db_err!(self.db.begin_read())?;
        let entries = db_err!(txn.open_table(ENTRIES))?;
        let states = db_err!(txn.open_table(STATES))?;
        let mut out = Vec::new();
        for item in db_err!(entries.iter())? {
            let (k, v) = db_err!(item)?;
            let name = k.value().to_string();
            let entry = pb::ScheduleEntry::decode(v.value())
                .map_err(|e| StoreError::Decode(format!("schedule {name}"), e))?;
            let state = match db_err!(states.get(name.as_str()))? {
                Some(s) => decode_state(&name, s.value())?,
                None => ScheduleState::default(),
            };
            out.push(Stored { entry, state });
        }
        Ok(out)
    }

    /// One schedule.
    pub fn get(&self, name: &str) -> Result<Option<Stored>, StoreError> {
        Ok(self.list()?.into_iter().find(|s| s.entry.name == name))
    }

    /// Registers `entry` (replacing one of the same name, whose last fire is kept so its
    /// fired ticks stay fired), registered at `now_ms`.
    pub fn put(&self, mut entry: pb::ScheduleEntry, now_ms: i64) -> Result<Stored, StoreError> {
        let txn = db_err!(self.db.begin_write())?;
        let stored = {
            let mut entries = db_err!(txn.open_table(ENTRIES))?;
            let mut states = db_err!(txn.open_table(STATES))?;
            if let Some(old) = db_err!(entries.get(entry.name.as_str()))? {
                let old = pb::ScheduleEntry::decode(old.value())
                    .map_err(|e| StoreError::Decode(format!("schedule {}", entry.name), e))?;
                entry.last_fire_ms = old.last_fire_ms;
                entry.last_run_id = old.last_run_id;
            }
            entry.next_fire_ms = 0;
            let state = ScheduleState {
                created_ms: now_ms,
                ..ScheduleState::default()
            };
            let bytes = entry.encode_to_vec();
            db_err!(entries.insert(entry.name.as_str(), bytes.as_slice()))?;
            let text = encode_state(&state)?;
            db_err!(states.insert(entry.name.as_str(), text.as_str()))?;
            Stored { entry, state }
        };
        db_err!(txn.commit())?;
        Ok(stored)
    }

    /// Removes a schedule and its bookkeeping; `None` when there is none of that name.
    pub fn delete(&self, name: &str) -> Result<Option<pb::ScheduleEntry>, StoreError> {
        let txn = db_err!(self.db.begin_write())?;
        let removed = {
            let mut entries = db_err!(txn.open_table(ENTRIES))?;
            let mut states = db_err!(txn.open_table(STATES))?;
            let mut after = db_err!(txn.open_table(AFTER))?;
            let removed = match db_err!(entries.remove(name))? {
                Some(v) => Some(
                    pb::ScheduleEntry::decode(v.value())
                        .map_err(|e| StoreError::Decode(format!("schedule {name}"), e))?,
                ),
                None => None,
            };
            db_err!(states.remove(name))?;
            let prefix = format!("{name}\n");
            let keys: Vec<String> = db_err!(after.iter())?
                .filter_map(|i| i.ok())
                .map(|(k, _)| k.value().to_string())
                .filter(|k| k.starts_with(&prefix))
                .collect();
            for k in keys {
                db_err!(after.remove(k.as_str()))?;
            }
            removed
        };
        db_err!(txn.commit())?;
        Ok(removed)
    }

    /// Changes a schedule's entry and state in one transaction; `false` (nothing written)
    /// when the schedule is gone or `f` declines.
    fn update(
        &self,
        name: &str,
        f: impl FnOnce(&mut pb::ScheduleEntry, &mut ScheduleState) -> bool,
    ) -> Result<bool, StoreError> {
        let txn = db_err!(self.db.begin_write())?;
        let changed = {
            let mut entries = db_err!(txn.open_table(ENTRIES))?;
            let mut states = db_err!(txn.open_table(STATES))?;
            let entry = match db_err!(entries.get(name))? {
                Some(v) => pb::ScheduleEntry::decode(v.value())
                    .map_err(|e| StoreError::Decode(format!("schedule {name}"), e))?,
                None => return Ok(false),
            };
            let state = match db_err!(states.get(name))? {
                Some(s) => decode_state(name, s.value())?,
                None => ScheduleState::default(),
            };
            let (mut entry, mut state) = (entry, state);
            if f(&mut entry, &mut state) {
                let bytes = entry.encode_to_vec();
                db_err!(entries.insert(name, bytes.as_slice()))?;
                let text = encode_state(&state)?;
                db_err!(states.insert(name, text.as_str()))?;
                true
            } else {
                false
            }
        };
        if changed {
            db_err!(txn.commit())?;
        }
        Ok(changed)
    }

    /// Records `tick_ms` as fired and pending (before its run is submitted). `false` when
    /// the tick is not after the last fired one (it fired already) or the schedule is gone.
    pub fn mark_tick(&self, name: &str, tick_ms: i64) -> Result<bool, StoreError> {
        self.update(name, |entry, state| {
            if tick_ms <= entry.last_fire_ms {
                return false;
            }
            entry.last_fire_ms = tick_ms;
            entry.last_run_id.clear();
            state.pending_tick_ms = Some(tick_ms);
            state.last_error.clear();
            true
        })
    }

    /// Records a tick that starts no run (skipped or refused), with why.
    pub fn skip_tick(&self, name: &str, tick_ms: i64, why: &str) -> Result<bool, StoreError> {
        self.update(name, |entry, state| {
            if tick_ms <= entry.last_fire_ms {
                return false;
            }
            entry.last_fire_ms = tick_ms;
            entry.last_run_id.clear();
            state.pending_tick_ms = None;
            state.last_error = why.to_string();
            true
        })
    }

    /// Records the outcome of the pending tick `tick_ms`: its run, or why it has none.
    pub fn settle_tick(
        &self,
        name: &str,
        tick_ms: i64,
        outcome: Result<&str, &str>,
    ) -> Result<bool, StoreError> {
        self.update(name, |entry, state| {
            if state.pending_tick_ms != Some(tick_ms) {
                return false;
            }
            state.pending_tick_ms = None;
            match outcome {
                Ok(run_id) => {
                    entry.last_run_id = run_id.to_string();
                    state.last_error.clear();
                }
                Err(why) => state.last_error = why.to_string(),
            }
            true
        })
    }

    /// Records why the schedule's last firing started no run (a conditional trigger whose
    /// submit was refused), or clears it (`why` empty: the last firing started its run).
    /// `false` when nothing changed or the schedule is gone.
    pub fn set_last_error(&self, name: &str, why: &str) -> Result<bool, StoreError> {
        self.update(name, |_, state| {
            if state.last_error == why {
                return false;
            }
            state.last_error = why.to_string();
            true
        })
    }

    /// The downstream run recorded for `upstream_run` (empty string: pending), if any.
    pub fn after_fired(
        &self,
        name: &str,
        upstream_run: &str,
    ) -> Result<Option<String>, StoreError> {
        let txn = db_err!(self.db.begin_read())?;
        let after = db_err!(txn.open_table(AFTER))?;
        Ok(db_err!(after.get(after_key(name, upstream_run).as_str()))?
            .map(|v| v.value().to_string()))
    }

    /// Records that `upstream_run` triggers `name` (pending until [`Self::settle_after`]).
    /// `false` when it was recorded already (it triggered once).
    pub fn mark_after(&self, name: &str, upstream_run: &str) -> Result<bool, StoreError> {
        let txn = db_err!(self.db.begin_write())?;
        let fresh = {
            let entries = db_err!(txn.open_table(ENTRIES))?;
            if db_err!(entries.get(name))?.is_none() {
                return Ok(false);
            }
            let mut after = db_err!(txn.open_table(AFTER))?;
            let key = after_key(name, upstream_run);
            if db_err!(after.get(key.as_str()))?.is_some() {
                false
            } else {
                db_err!(after.insert(key.as_str(), ""))?;
                true
            }
        };
        if fresh {
            db_err!(txn.commit())?;
        }
        Ok(fresh)
    }

    /// Records the downstream run (or `-` and why there is none) of a pending trigger.
    pub fn settle_after(
        &self,
        name: &str,
        upstream_run: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let txn = db_err!(self.db.begin_write())?;
        {
            let mut after = db_err!(txn.open_table(AFTER))?;
            db_err!(after.insert(after_key(name, upstream_run).as_str(), outcome))?;
        }
        db_err!(txn.commit())
    }

    /// Every pending conditional trigger: (schedule, upstream run).
    pub fn pending_after(&self) -> Result<Vec<(String, String)>, StoreError> {
        let txn = db_err!(self.db.begin_read())?;
        let after = db_err!(txn.open_table(AFTER))?;
        let mut out = Vec::new();
        for item in db_err!(after.iter())? {
            let (k, v) = db_err!(item)?;
            if v.value().is_empty()
                && let Some((name, run)) = k.value().split_once('\n')
            {
                out.push((name.to_string(), run.to_string()));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temporary folder (removed when dropped).
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tempdir() -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        TempDir(
            std::env::temp_dir().join(format!("sluice-schedule-store-{}-{n}", std::process::id())),
        )
    }

    fn entry(name: &str) -> pb::ScheduleEntry {
        pb::ScheduleEntry {
            name: name.into(),
            spec: Some(pb::JobSpec {
                name: "job".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_tick_fires_once_and_survives_a_reopen() {
        let dir = tempdir();
        {
            let store = ScheduleStore::open(dir.path()).expect("open");
            store.put(entry("nightly"), 1_000).expect("put");
            assert!(store.mark_tick("nightly", 60_000).expect("mark"));
            // The same tick, or an earlier one, never again.
            assert!(!store.mark_tick("nightly", 60_000).expect("mark"));
            assert!(!store.mark_tick("nightly", 30_000).expect("mark"));
            let s = store.get("nightly").expect("get").expect("there");
            assert_eq!(s.state.pending_tick_ms, Some(60_000));
            assert_eq!(s.entry.last_fire_ms, 60_000);
        }
        // As after a kill -9 between the mark and the submit: the pending tick is there.
        let store = ScheduleStore::open(dir.path()).expect("reopen");
        let s = store.get("nightly").expect("get").expect("there");
        assert_eq!(s.state.pending_tick_ms, Some(60_000));
        assert!(!store.mark_tick("nightly", 60_000).expect("mark"));
        assert!(
            store
                .settle_tick("nightly", 60_000, Ok("run-1"))
                .expect("settle")
        );
        // Settling twice, or another tick, changes nothing.
        assert!(
            !store
                .settle_tick("nightly", 60_000, Ok("run-2"))
                .expect("settle")
        );
        let s = store.get("nightly").expect("get").expect("there");
        assert_eq!(s.state.pending_tick_ms, None);
        assert_eq!(s.entry.last_run_id, "run-1");
        assert!(store.mark_tick("nightly", 120_000).expect("next tick"));
    }

    #[test]
    fn replacing_keeps_fired_ticks_and_deleting_forgets_everything() {
        let dir = tempdir();
        let store = ScheduleStore::open(dir.path()).expect("open");
        store.put(entry("s"), 1_000).expect("put");
        assert!(store.mark_tick("s", 60_000).expect("mark"));
        assert!(store.settle_tick("s", 60_000, Ok("r1")).expect("settle"));
        let replaced = store.put(entry("s"), 70_000).expect("replace");
        assert_eq!(replaced.entry.last_fire_ms, 60_000);
        assert_eq!(replaced.state.created_ms, 70_000);
        assert!(!store.mark_tick("s", 60_000).expect("mark"));
        assert!(
            store
                .skip_tick("s", 120_000, "still running")
                .expect("skip")
        );
        assert!(
            !store
                .mark_tick("s", 120_000)
                .expect("skipped ticks are spent")
        );
        assert!(store.mark_after("s", "up-1").expect("after"));
        assert!(store.delete("s").expect("delete").is_some());
        assert!(store.get("s").expect("get").is_none());
        assert!(store.delete("s").expect("delete").is_none());
        assert!(!store.mark_tick("s", 180_000).expect("gone"));
        assert!(!store.mark_after("s", "up-2").expect("gone"));
        assert!(store.pending_after().expect("pending").is_empty());
    }

    #[test]
    fn why_a_firing_started_no_run_is_kept_until_one_starts() {
        let dir = tempdir();
        let store = ScheduleStore::open(dir.path()).expect("open");
        store.put(entry("s"), 1_000).expect("put");
        assert!(store.mark_tick("s", 60_000).expect("mark"));
        assert!(
            store
                .settle_tick("s", 60_000, Err("invalid job: no file"))
                .expect("settle")
        );
        let s = store.get("s").expect("get").expect("there");
        assert_eq!(s.state.last_error, "invalid job: no file");
        assert_eq!(s.entry.last_run_id, "");
        // A refused conditional trigger replaces it; a run that starts clears it.
        assert!(store.set_last_error("s", "refused").expect("set"));
        assert!(!store.set_last_error("s", "refused").expect("unchanged"));
        assert_eq!(
            store
                .get("s")
                .expect("get")
                .expect("there")
                .state
                .last_error,
            "refused"
        );
        assert!(store.mark_tick("s", 120_000).expect("mark"));
        assert!(store.settle_tick("s", 120_000, Ok("r2")).expect("settle"));
        assert_eq!(
            store
                .get("s")
                .expect("get")
                .expect("there")
                .state
                .last_error,
            ""
        );
        assert!(!store.set_last_error("gone", "x").expect("no such schedule"));
    }

    #[test]
    fn an_upstream_run_triggers_once() {
        let dir = tempdir();
        {
            let store = ScheduleStore::open(dir.path()).expect("open");
            store.put(entry("down"), 1_000).expect("put");
            assert!(store.mark_after("down", "up-1").expect("mark"));
            assert!(!store.mark_after("down", "up-1").expect("again"));
        }
        let store = ScheduleStore::open(dir.path()).expect("reopen");
        assert_eq!(
            store.pending_after().expect("pending"),
            vec![("down".to_string(), "up-1".to_string())]
        );
        assert!(!store.mark_after("down", "up-1").expect("after a restart"));
        store.settle_after("down", "up-1", "run-9").expect("settle");
        assert!(store.pending_after().expect("pending").is_empty());
        assert_eq!(
            store.after_fired("down", "up-1").expect("read"),
            Some("run-9".to_string())
        );
        assert!(
            store
                .mark_after("down", "up-2")
                .expect("another upstream run")
        );
    }
}
