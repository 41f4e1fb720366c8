//! Job bookmarks: which source files the committed runs of a job processed.
//!
//! The bookmark a run starts from is the one sealed into the `_SUCCESS` manifest of the
//! version the catalog points at, so the catalog swap that publishes a version also
//! publishes its bookmark: a run that fails before the swap leaves the bookmark where it
//! was. History that must outlive version pruning lives under `<table root>/_bookmarks/`:
//! a snapshot `<run id>.json` of the bookmark each committed run left (written right after
//! its catalog swap), and a reset marker `_reset.json` (forget everything, or rewind to an
//! earlier run's snapshot) that the next run honours and whose committing `enable` run
//! removes. Only the newest [`BOOKMARK_SNAPSHOTS_KEPT`] snapshots are kept (and the one a
//! pending reset rewinds to): each new snapshot deletes the older ones.

use std::collections::{BTreeMap, HashSet};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sluice_proto as pb;

use sluice_catalog::TableEntry;

use crate::{Lake, LakeError, RUN_PREFIX, TableLocation};

/// Folder under a table root holding bookmark snapshots and the reset marker.
pub const BOOKMARK_FOLDER: &str = "_bookmarks";
/// Name of the reset marker in [`BOOKMARK_FOLDER`].
const RESET_MARKER: &str = "_reset.json";
/// How many bookmark snapshots (rewind points) a table keeps: those of its last 20
/// committed `enable` runs. Each run's commit deletes older ones (except the one a pending
/// reset rewinds to), so `_bookmarks/` stays bounded however often the job runs, and
/// `sluice bookmark show` lists only runs that can still be rewound to.
pub(crate) const BOOKMARK_SNAPSHOTS_KEPT: usize = 20;

/// One source file a committed run processed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessedFile {
    /// Full URL of the file.
    pub url: String,
    /// Size in bytes when it was read.
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch (0 when unknown).
    #[serde(default)]
    pub modified_ms: i64,
    /// The object store's ETag when it was read (empty when unknown).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etag: String,
    /// The run that processed it.
    pub run_id: String,
}

impl ProcessedFile {
    /// What identifies this version of the file: a file whose size, modification time or
    /// ETag changed is a new file.
    pub fn key(&self) -> FileKey {
        (
            self.url.clone(),
            self.size,
            self.modified_ms,
            self.etag.clone(),
        )
    }
}

/// (url, size, modified ms, ETag): one version of a source file.
pub type FileKey = (String, u64, i64, String);

/// A job's bookmark: per tracked source, the files committed runs processed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BookmarkState {
    /// The job the bookmark belongs to (a table written by another job starts afresh).
    pub job: String,
    /// Source name -> files processed, in the order they were recorded.
    #[serde(default)]
    pub sources: BTreeMap<String, Vec<ProcessedFile>>,
}

impl BookmarkState {
    /// The keys of the files `source` has processed.
    pub fn seen(&self, source: &str) -> HashSet<FileKey> {
        self.sources
            .get(source)
            .map(|files| files.iter().map(ProcessedFile::key).collect())
            .unwrap_or_default()
    }

    /// Records `files` as processed by `source` (a changed file replaces its older entry).
    pub fn record(&mut self, source: &str, files: Vec<ProcessedFile>) {
        let entry = self.sources.entry(source.to_string()).or_default();
        let urls: HashSet<&str> = files.iter().map(|f| f.url.as_str()).collect();
        entry.retain(|f| !urls.contains(f.url.as_str()));
        entry.extend(files);
    }

    /// The bookmark as the job service returns it.
    pub fn to_proto(&self, run_id: &str, earlier_runs: Vec<String>) -> pb::Bookmark {
        pb::Bookmark {
            job_name: self.job.clone(),
            run_id: run_id.to_string(),
            sources: self
                .sources
                .iter()
                .map(|(name, files)| pb::SourceBookmark {
                    source: name.clone(),
                    files: files
                        .iter()
                        .map(|f| pb::BookmarkFile {
                            url: f.url.clone(),
                            size: f.size,
                            modified_ms: f.modified_ms,
                            etag: f.etag.clone(),
                            run_id: f.run_id.clone(),
                        })
                        .collect(),
                })
                .collect(),
            earlier_runs,
        }
    }
}

/// A pending reset: the next run starts from this instead of the committed bookmark.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BookmarkReset {
    /// Rewind to the bookmark this run left; `None` forgets every file.
    #[serde(default)]
    pub to_run_id: Option<String>,
    /// When the reset was asked for (a new id, so a run clears only the marker it read).
    pub requested: String,
}

impl TableLocation {
    fn bookmark_path(&self, name: &str) -> Path {
        self.root.clone().join(BOOKMARK_FOLDER).join(name)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
    ) -> Result<Option<T>, LakeError> {
        match self.store.get(path).await {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(|e| self.err(path, e))?;
                let value = serde_json::from_slice(&bytes).map_err(|e| LakeError::Corrupt {
                    location: format!("{}{}", self.store_url, path),
                    source: e,
                })?;
                Ok(Some(value))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(path, e)),
        }
    }

    async fn put_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), LakeError> {
        let body = serde_json::to_vec_pretty(value)?;
        self.store
            .put(path, PutPayload::from(body))
            .await
            .map_err(|e| self.err(path, e))?;
        Ok(())
    }

    /// Saves the bookmark run `run_id` committed, for later rewinds, then deletes the
    /// snapshots older than the newest [`BOOKMARK_SNAPSHOTS_KEPT`] (see
    /// [`Self::prune_bookmark_snapshots`]). The snapshot is written before anything is
    /// deleted.
    pub async fn write_bookmark_snapshot(
        &self,
        run_id: &str,
        state: &BookmarkState,
    ) -> Result<(), LakeError> {
        self.put_json(&self.bookmark_path(&format!("{run_id}.json")), state)
            .await?;
        self.prune_bookmark_snapshots(BOOKMARK_SNAPSHOTS_KEPT)
            .await?;
        Ok(())
    }

    /// Deletes every bookmark snapshot but the newest `keep` and the one a pending reset
    /// rewinds to (the next run starts from it). Returns the run ids whose snapshot was
    /// deleted, oldest first.
    pub async fn prune_bookmark_snapshots(&self, keep: usize) -> Result<Vec<String>, LakeError> {
        let snapshots = self.bookmark_snapshots().await?;
        let Some(cut) = snapshots.len().checked_sub(keep).filter(|n| *n > 0) else {
            return Ok(Vec::new());
        };
        let pending = self.bookmark_reset().await?.and_then(|r| r.to_run_id);
        let mut removed = Vec::new();
        for id in &snapshots[..cut] {
            if pending.as_deref() == Some(id.as_str()) {
                continue;
            }
            let path = self.bookmark_path(&format!("{id}.json"));
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed.push(id.clone()),
                Err(e) => return Err(self.err(&path, e)),
            }
        }
        Ok(removed)
    }

    /// The bookmark run `run_id` committed, if its snapshot exists.
    pub async fn bookmark_snapshot(
        &self,
        run_id: &str,
    ) -> Result<Option<BookmarkState>, LakeError> {
        self.get_json(&self.bookmark_path(&format!("{run_id}.json")))
            .await
    }

    /// Run ids with a bookmark snapshot, oldest first.
    pub async fn bookmark_snapshots(&self) -> Result<Vec<String>, LakeError> {
        let prefix = self.root.clone().join(BOOKMARK_FOLDER);
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.err(&prefix, e))?;
        let mut ids: Vec<String> = metas
            .iter()
            .filter_map(|m| {
                let name = m.location.filename()?;
                if name.starts_with('_') {
                    return None;
                }
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The pending reset, if any.
    pub async fn bookmark_reset(&self) -> Result<Option<BookmarkReset>, LakeError> {
        self.get_json(&self.bookmark_path(RESET_MARKER)).await
    }

    /// Asks the next run to start from `reset` instead of the committed bookmark.
    pub async fn write_bookmark_reset(&self, reset: &BookmarkReset) -> Result<(), LakeError> {
        self.put_json(&self.bookmark_path(RESET_MARKER), reset)
            .await
    }

    /// Removes the reset marker if it is still `applied` (a newer reset stays pending).
    pub async fn clear_bookmark_reset(&self, applied: &BookmarkReset) -> Result<(), LakeError> {
        if self.bookmark_reset().await?.as_ref() != Some(applied) {
            return Ok(());
        }
        let path = self.bookmark_path(RESET_MARKER);
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(&path, e)),
        }
    }

    /// The manifest of version `run_id`, if it is sealed.
    pub async fn read_manifest(&self, run_id: &str) -> Result<Option<crate::Manifest>, LakeError> {
        let path = self.version_path(run_id).join(crate::SUCCESS_MARKER);
        self.get_json(&path).await
    }

    /// The bookmark job `job` starts from: the pending reset's (forgotten, or an earlier
    /// run's snapshot) when there is one, else the one sealed into the current version
    /// `current` (the catalog's), else none. Also returns the reset it applied.
    pub async fn starting_bookmark(
        &self,
        job: &str,
        current: Option<&crate::Manifest>,
    ) -> Result<(BookmarkState, Option<BookmarkReset>), LakeError> {
        let fresh = || BookmarkState {
            job: job.to_string(),
            sources: BTreeMap::new(),
        };
        if let Some(reset) = self.bookmark_reset().await? {
            let state = match &reset.to_run_id {
                Some(id) => self.bookmark_snapshot(id).await?.unwrap_or_else(fresh),
                None => fresh(),
            };
            return Ok((state, Some(reset)));
        }
        let state = current
            .and_then(|m| m.bookmark.clone())
            .filter(|b| b.job == job)
            .unwrap_or_else(fresh);
        Ok((state, None))
    }

    /// The bookmark of `job` as `sluice bookmark show` gives it: where the next run starts
    /// (`current_run` is the run the catalog points at), with the earlier runs it can be
    /// rewound to, newest first.
    pub async fn show_bookmark(
        &self,
        job: &str,
        current_run: Option<&str>,
    ) -> Result<pb::Bookmark, LakeError> {
        let manifest = match current_run {
            Some(id) => self.read_manifest(id).await?,
            None => None,
        };
        let (state, reset) = self.starting_bookmark(job, manifest.as_ref()).await?;
        let as_of = match &reset {
            Some(r) => r.to_run_id.clone().unwrap_or_default(),
            None if manifest
                .as_ref()
                .and_then(|m| m.bookmark.as_ref())
                .is_some() =>
            {
                current_run.unwrap_or_default().to_string()
            }
            None => String::new(),
        };
        let mut earlier: Vec<String> = self
            .bookmark_snapshots()
            .await?
            .into_iter()
            .filter(|id| as_of.is_empty() || id.as_str() < as_of.as_str())
            .collect();
        earlier.reverse();
        let mut out = state.to_proto(&as_of, earlier);
        out.job_name = job.to_string();
        Ok(out)
    }

    /// Resets the bookmark of the table's job: the next run reads every file (`to_run_id`
    /// `None`) or starts from the bookmark run `to_run_id` left. Refuses a run without a
    /// snapshot.
    pub async fn reset_bookmark(&self, to_run_id: Option<&str>) -> Result<(), LakeError> {
        if let Some(id) = to_run_id
            && self.bookmark_snapshot(id).await?.is_none()
        {
            let known = self.bookmark_snapshots().await?;
            return Err(LakeError::NoSuchRun {
                run_id: id.to_string(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
        self.write_bookmark_reset(&BookmarkReset {
            to_run_id: to_run_id.map(str::to_string),
            requested: crate::new_run_id(),
        })
        .await
    }
}

/// The root of the table whose version folder is `location` (`…/db/t/run-<id>/` gives
/// `…/db/t/`), if `location` is that run's version folder.
fn table_root_of_version(location: &str, run_id: &str) -> Option<String> {
    let folder = format!("{RUN_PREFIX}{run_id}");
    let root = location.trim_end_matches('/').strip_suffix(&folder)?;
    root.ends_with('/').then(|| root.to_string())
}

impl Lake {
    /// Of the catalog's `tables`, those whose current version is a Sluice version in this
    /// lake sealed with a bookmark of job `job`: where that job's bookmark lives (a job's
    /// bookmark is in its target table's manifest, and names the job). Each comes with its
    /// location in the lake. Tables outside the lake, not written by a Sluice run, or whose
    /// version carries no bookmark (or another job's) are left out.
    pub async fn bookmarked_tables(
        &self,
        job: &str,
        tables: Vec<TableEntry>,
    ) -> Result<Vec<(TableEntry, TableLocation)>, LakeError> {
        let mut found = Vec::new();
        for entry in tables {
            let Some(run_id) = entry.run_id.clone() else {
                continue;
            };
            let Some(root) = table_root_of_version(&entry.location, &run_id) else {
                continue;
            };
            let Ok(table) = TableLocation::new(self.store.clone(), &self.store_url, &root) else {
                continue;
            };
            let holds = table
                .read_manifest(&run_id)
                .await?
                .and_then(|m| m.bookmark)
                .is_some_and(|b| b.job == job);
            if holds {
                found.push((entry, table));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::*;

    fn file(url: &str, size: u64, run: &str) -> ProcessedFile {
        ProcessedFile {
            url: url.into(),
            size,
            modified_ms: 1,
            etag: String::new(),
            run_id: run.into(),
        }
    }

    /// A changed file replaces its older entry; resets and rewinds are what the next run
    /// starts from, and only the marker a run read is cleared.
    #[tokio::test]
    async fn resets_and_rewinds_are_what_the_next_run_starts_from() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let table = TableLocation::new(store, "memory:///", "memory:///lake/db/t/").unwrap();
        let mut state = BookmarkState {
            job: "j".into(),
            ..Default::default()
        };
        state.record("s", vec![file("a", 1, "r1")]);
        table.write_bookmark_snapshot("r1", &state).await.unwrap();
        let first = state.clone();
        state.record("s", vec![file("a", 2, "r2"), file("b", 1, "r2")]);
        assert_eq!(state.sources["s"].len(), 2);
        assert!(state.seen("s").contains(&("a".into(), 2, 1, String::new())));
        table.write_bookmark_snapshot("r2", &state).await.unwrap();
        let manifest = crate::Manifest {
            run_id: "r2".into(),
            rows: 0,
            files: vec![],
            bookmark: Some(state.clone()),
        };
        let (start, reset) = table.starting_bookmark("j", Some(&manifest)).await.unwrap();
        assert_eq!((start, reset), (state.clone(), None));
        let (other, _) = table.starting_bookmark("k", Some(&manifest)).await.unwrap();
        assert!(
            other.sources.is_empty(),
            "another job's bookmark is not ours"
        );
        assert!(table.reset_bookmark(Some("r0")).await.is_err());
        table.reset_bookmark(Some("r1")).await.unwrap();
        let (start, reset) = table.starting_bookmark("j", Some(&manifest)).await.unwrap();
        assert_eq!(start, first);
        let reset = reset.unwrap();
        table.reset_bookmark(None).await.unwrap();
        table.clear_bookmark_reset(&reset).await.unwrap();
        let (start, newer) = table.starting_bookmark("j", Some(&manifest)).await.unwrap();
        assert!(start.sources.is_empty(), "the newer reset stays pending");
        table.clear_bookmark_reset(&newer.unwrap()).await.unwrap();
        assert_eq!(table.bookmark_reset().await.unwrap(), None);
        assert_eq!(table.bookmark_snapshots().await.unwrap(), ["r1", "r2"]);
    }

    /// Each new snapshot deletes all but the newest [`BOOKMARK_SNAPSHOTS_KEPT`], except the
    /// one a pending reset rewinds to; show lists only the snapshots left.
    #[tokio::test]
    async fn snapshots_are_pruned_to_the_newest_kept() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let table = TableLocation::new(store, "memory:///", "memory:///lake/db/t/").unwrap();
        let state = BookmarkState {
            job: "j".into(),
            ..Default::default()
        };
        let id = |n: usize| format!("2026112{}T{n:09}-0000", n / 100);
        let total = BOOKMARK_SNAPSHOTS_KEPT + 5;
        for n in 1..=total {
            table.write_bookmark_snapshot(&id(n), &state).await.unwrap();
            let kept = table.bookmark_snapshots().await.unwrap();
            assert_eq!(kept.len(), n.min(BOOKMARK_SNAPSHOTS_KEPT));
            assert_eq!(kept.last(), Some(&id(n)));
        }
        let expected: Vec<String> = (total - BOOKMARK_SNAPSHOTS_KEPT + 1..=total)
            .map(id)
            .collect();
        assert_eq!(table.bookmark_snapshots().await.unwrap(), expected);
        // A pending rewind to the oldest kept snapshot keeps it past its turn.
        let oldest = expected[0].clone();
        table.reset_bookmark(Some(oldest.as_str())).await.unwrap();
        table
            .write_bookmark_snapshot(&id(total + 1), &state)
            .await
            .unwrap();
        let kept = table.bookmark_snapshots().await.unwrap();
        assert_eq!(kept.len(), BOOKMARK_SNAPSHOTS_KEPT + 1);
        assert!(kept.contains(&oldest), "{kept:?}");
        // Show lists the rewind points left (newest first, the current one excluded).
        let shown = table.show_bookmark("j", None).await.unwrap();
        assert_eq!(shown.run_id, oldest);
        assert!(shown.earlier_runs.is_empty(), "{:?}", shown.earlier_runs);
        let reset = table.bookmark_reset().await.unwrap().unwrap();
        table.clear_bookmark_reset(&reset).await.unwrap();
        let shown = table.show_bookmark("j", None).await.unwrap();
        assert_eq!(shown.earlier_runs.len(), BOOKMARK_SNAPSHOTS_KEPT + 1);
        assert_eq!(shown.earlier_runs.first(), Some(&id(total + 1)));
        // Rewinding to a pruned run is refused.
        assert!(table.reset_bookmark(Some(id(1).as_str())).await.is_err());
        // Once the reset is gone, the next snapshot prunes the rewind point it kept.
        table
            .write_bookmark_snapshot(&id(total + 2), &state)
            .await
            .unwrap();
        let kept = table.bookmark_snapshots().await.unwrap();
        assert_eq!(kept.len(), BOOKMARK_SNAPSHOTS_KEPT);
        assert!(!kept.contains(&oldest), "{kept:?}");
    }

    /// A job's table is found by the bookmark its current version's manifest holds.
    #[tokio::test]
    async fn a_jobs_table_is_found_by_its_bookmark() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let lake = Lake {
            url: "memory:///lake/".into(),
            store: store.clone(),
            store_url: "memory:///".into(),
        };
        let entry = |db: &str, name: &str, location: String, run: Option<&str>| TableEntry {
            database: db.into(),
            name: name.into(),
            location,
            classification: "parquet".into(),
            columns: vec![],
            partition_keys: vec![],
            partitions: vec![],
            parameters: Default::default(),
            run_id: run.map(str::to_string),
            version: 1,
            updated_at: String::new(),
        };
        let mut tables = Vec::new();
        for (name, job) in [("a", Some("j")), ("b", Some("k")), ("c", None)] {
            let root = format!("memory:///lake/db/{name}/");
            let t = TableLocation::new(store.clone(), "memory:///", &root).unwrap();
            t.seal(&crate::Manifest {
                run_id: "r1".into(),
                rows: 0,
                files: vec![],
                bookmark: job.map(|j| BookmarkState {
                    job: j.into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
            tables.push(entry("db", name, t.version_url("r1"), Some("r1")));
        }
        // Crawled (no run) and outside the lake: never a job's.
        tables.push(entry("db", "crawled", "memory:///lake/db/a/".into(), None));
        tables.push(entry("db", "far", "s3://b/x/run-r1/".into(), Some("r1")));
        let found = lake.bookmarked_tables("j", tables.clone()).await.unwrap();
        let names: Vec<&str> = found.iter().map(|(e, _)| e.name.as_str()).collect();
        assert_eq!(names, ["a"]);
        assert_eq!(found[0].1.root_url(), "memory:///lake/db/a/");
        assert!(
            lake.bookmarked_tables("x", tables)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            table_root_of_version("file:///l/db/t/run-r9/", "r9").as_deref(),
            Some("file:///l/db/t/")
        );
        assert_eq!(table_root_of_version("file:///l/db/t/", "r9"), None);
        assert_eq!(table_root_of_version("file:///l/db/xrun-r9/", "r9"), None);
    }
}
