//! The data lake's layout and its commit protocol.
//!
//! A table lives under a root prefix (`<lake>/<database>/<table>/`). A run's tasks write
//! their files into the run's staging folder, `<root>/_attempts/run-<id>/`, never into a
//! folder a reader lists. When the run has finished, the committer moves exactly the files
//! its successful tasks reported into the version folder `<root>/run-<id>/` (a rename on a
//! local disk, a server-side copy on S3), seals it with a `_SUCCESS` marker listing them, and
//! only then points the catalog at it. A task attempt that was superseded (its executor
//! paused or cut off, its job cancelled) can only ever write into the staging folder, which
//! no reader lists and which later commits delete: no late write can enter a committed
//! version. The staging folder holds a live marker while the run lasts; whoever clears the
//! folder (a commit, a failure, a cancel) removes the marker first, and a task that closes
//! its files after that deletes them itself, so nothing of an ended run stays behind. Old
//! versions are removed once the catalog has moved on, keeping the previous one for readers
//! still in flight.

mod bookmark;
mod root;

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

pub use bookmark::{BOOKMARK_FOLDER, BookmarkReset, BookmarkState, FileKey, ProcessedFile};
pub use root::{BoxError, Lake, StoreSource};

/// Name of the marker written into a complete version.
pub const SUCCESS_MARKER: &str = "_SUCCESS";
/// Prefix of version folders.
pub const RUN_PREFIX: &str = "run-";
/// Folder under a table root holding the runs' staging folders.
pub const STAGING_FOLDER: &str = "_attempts";
/// The file a run's staging folder holds while its tasks may keep files there (see
/// [`TableLocation::open_staging`]).
pub const LIVE_MARKER: &str = "_LIVE";
/// Files moved into a version at once.
const MOVE_CONCURRENCY: usize = 16;

/// Errors from lake operations.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The object store failed.
    #[error("lake storage error at {location}: {source}")]
    Store {
        /// The object the failure concerns.
        location: String,
        #[source]
        /// The underlying error.
        source: object_store::Error,
    },
    /// A URL could not be parsed.
    #[error("invalid lake URL '{0}'")]
    Url(String),
    /// No object store serves the lake's URL.
    #[error("no object store serves the lake at {url}")]
    Unreachable {
        /// The lake's URL.
        url: String,
        /// Why its store could not be had.
        #[source]
        source: BoxError,
    },
    /// A marker could not be encoded.
    #[error("cannot encode the commit marker: {0}")]
    Encode(#[from] serde_json::Error),
    /// A marker or bookmark file could not be decoded.
    #[error("{location} is corrupt: {source}")]
    Corrupt {
        /// The object.
        location: String,
        /// Why it does not decode.
        #[source]
        source: serde_json::Error,
    },
    /// A bookmark rewind named a run that left no bookmark snapshot.
    #[error("no bookmark snapshot of run '{run_id}' (runs with one: {known})")]
    NoSuchRun {
        /// The run asked for.
        run_id: String,
        /// The runs that have one.
        known: String,
    },
}

/// A new, sortable run id: `20261124T231500-1a2b3c4d`.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%3f");
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{now}-{}", &id[id.len() - 8..])
}

/// One data file of a version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataFile {
    /// Path relative to the version folder (`genre=pop/part-0.parquet`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Rows in the file, when the writer reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// What a complete version holds, written as its `_SUCCESS` marker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// The run that wrote it.
    pub run_id: String,
    /// Rows in all files.
    pub rows: u64,
    /// The data files.
    pub files: Vec<DataFile>,
    /// The job's bookmark as of this version: published by the same catalog swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bookmark: Option<BookmarkState>,
}

impl Manifest {
    /// Total bytes of the data files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// A table's place in the lake.
#[derive(Clone)]
pub struct TableLocation {
    store: Arc<dyn ObjectStore>,
    /// URL of the store's root (`file:///` or `s3://bucket/`).
    store_url: String,
    /// Path of the table root inside the store, without a trailing slash.
    root: Path,
}

impl std::fmt::Debug for TableLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TableLocation({})", self.root_url())
    }
}

impl TableLocation {
    /// The table rooted at `root_url` (`file:///lake/db/table/`, `s3://b/lake/db/table/`),
    /// stored in `store`, whose own root is `store_url` (`file:///`, `s3://b/`).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        store_url: &str,
        root_url: &str,
    ) -> Result<Self, LakeError> {
        let store_url = if store_url.ends_with('/') {
            store_url.to_string()
        } else {
            format!("{store_url}/")
        };
        let rest = root_url
            .strip_prefix(&store_url)
            .ok_or_else(|| LakeError::Url(root_url.to_string()))?;
        let root = Path::parse(rest.trim_end_matches('/'))
            .map_err(|_| LakeError::Url(root_url.to_string()))?;
        Ok(Self {
            store,
            store_url,
            root,
        })
    }

    /// URL of the table root, ending in `/`.
    pub fn root_url(&self) -> String {
        format!("{}{}/", self.store_url, self.root)
    }

    fn version_path(&self, run_id: &str) -> Path {
        self.root
            .clone()
            .join(format!("{RUN_PREFIX}{run_id}").as_str())
    }

    /// URL of the version folder a run's commit fills, ending in `/`.
    pub fn version_url(&self, run_id: &str) -> String {
        format!("{}{}/", self.store_url, self.version_path(run_id))
    }

    fn staging_root(&self) -> Path {
        self.root.clone().join(STAGING_FOLDER)
    }

    fn staging_path(&self, run_id: &str) -> Path {
        self.staging_root()
            .join(format!("{RUN_PREFIX}{run_id}").as_str())
    }

    /// URL of the staging folder a run's tasks write into, ending in `/`.
    pub fn staging_url(&self, run_id: &str) -> String {
        format!("{}{}/", self.store_url, self.staging_path(run_id))
    }

    /// Moves `files` (paths relative to the run's staging folder) into its version folder,
    /// keeping their relative paths. Nothing else in the staging folder moves.
    pub async fn publish(&self, run_id: &str, files: &[DataFile]) -> Result<(), LakeError> {
        let staging = self.staging_path(run_id);
        let version = self.version_path(run_id);
        let mut moves = Vec::with_capacity(files.len());
        for f in files {
            let from = Path::parse(format!("{staging}/{}", f.path));
            let to = Path::parse(format!("{version}/{}", f.path));
            match (from, to) {
                (Ok(from), Ok(to)) => moves.push((from, to)),
                _ => return Err(LakeError::Url(f.path.clone())),
            }
        }
        let store = Arc::clone(&self.store);
        let moves = moves.into_iter().map(move |(from, to)| {
            let store = Arc::clone(&store);
            async move { store.rename(&from, &to).await.map_err(|e| (from, e)) }
        });
        futures::stream::iter(moves)
            .buffer_unordered(MOVE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map_err(|(from, source)| self.err(&from, source))?;
        Ok(())
    }

    /// Copies `files` of version `from_run` into version `to_run` under the same relative
    /// paths, without reading them: a hard link on a local folder, a server-side copy on S3.
    /// An append run's version holds the previous version's files this way, so every
    /// version folder stays complete on its own.
    pub async fn copy_from_version(
        &self,
        from_run: &str,
        to_run: &str,
        files: &[DataFile],
    ) -> Result<(), LakeError> {
        let from_root = self.version_path(from_run);
        let to_root = self.version_path(to_run);
        let mut copies = Vec::with_capacity(files.len());
        for f in files {
            let from = Path::parse(format!("{from_root}/{}", f.path));
            let to = Path::parse(format!("{to_root}/{}", f.path));
            match (from, to) {
                (Ok(from), Ok(to)) => copies.push((from, to)),
                _ => return Err(LakeError::Url(f.path.clone())),
            }
        }
        let store = Arc::clone(&self.store);
        let copies = copies.into_iter().map(move |(from, to)| {
            let store = Arc::clone(&store);
            async move { store.copy(&from, &to).await.map_err(|e| (from, e)) }
        });
        futures::stream::iter(copies)
            .buffer_unordered(MOVE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map_err(|(from, source)| self.err(&from, source))?;
        Ok(())
    }

    /// Writes `bytes` as the file `path` (relative) of a run's staging folder.
    pub async fn put_staged(
        &self,
        run_id: &str,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<DataFile, LakeError> {
        let location = Path::parse(format!("{}/{path}", self.staging_path(run_id)))
            .map_err(|_| LakeError::Url(path.to_string()))?;
        let size = bytes.len() as u64;
        self.store
            .put(&location, PutPayload::from(bytes))
            .await
            .map_err(|source| self.err(&location, source))?;
        Ok(DataFile {
            path: path.to_string(),
            size,
            rows: None,
        })
    }

    /// Marks a run's staging folder live with [`LIVE_MARKER`]: its write tasks keep their
    /// files only while the marker exists, and delete what they close after it is gone.
    pub async fn open_staging(&self, run_id: &str) -> Result<(), LakeError> {
        let marker = self.staging_path(run_id).join(LIVE_MARKER);
        self.store
            .put(&marker, PutPayload::new())
            .await
            .map_err(|source| self.err(&marker, source))?;
        Ok(())
    }

    /// Deletes a run's staging folder, with whatever superseded task attempts left there.
    /// Its [`LIVE_MARKER`] goes first: a task that closes a file after this listed the
    /// folder finds the marker gone and deletes the file itself.
    pub async fn delete_staging(&self, run_id: &str) -> Result<(), LakeError> {
        let marker = self.staging_path(run_id).join(LIVE_MARKER);
        match self.store.delete(&marker).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => return Err(self.err(&marker, source)),
        }
        self.delete_prefix(&self.staging_path(run_id)).await?;
        if self.store_url == "file:///" {
            // Local folders outlive their files; drop the parent once no run stages there.
            // Not logged: it fails whenever another run still stages there (the folder is
            // not empty), which is the expected case, not a failed cleanup.
            let dir = std::path::Path::new("/").join(self.staging_root().as_ref());
            let _ = std::fs::remove_dir(dir);
        }
        Ok(())
    }

    /// Run ids of every staging folder, oldest first.
    pub async fn staged_runs(&self) -> Result<Vec<String>, LakeError> {
        self.run_folders(&self.staging_root()).await
    }

    /// Lists the data files a run wrote (everything but `_` and `.` files).
    pub async fn list_version(&self, run_id: &str) -> Result<Vec<DataFile>, LakeError> {
        let prefix = self.version_path(run_id);
        let metas: Vec<ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| self.err(&prefix, source))?;
        let prefix_text = format!("{prefix}/");
        let mut files: Vec<DataFile> = metas
            .into_iter()
            .filter_map(|m| {
                let rel = m.location.as_ref().strip_prefix(&prefix_text)?.to_string();
                let hidden = rel
                    .split('/')
                    .any(|part| part.starts_with('_') || part.starts_with('.'));
                (!hidden).then_some(DataFile {
                    path: rel,
                    size: m.size,
                    rows: None,
                })
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Marks a version complete by writing its manifest as `_SUCCESS`.
    pub async fn seal(&self, manifest: &Manifest) -> Result<(), LakeError> {
        let path = self
            .version_path(&manifest.run_id)
            .clone()
            .join(SUCCESS_MARKER);
        let body = serde_json::to_vec_pretty(manifest)?;
        self.store
            .put(&path, PutPayload::from(body))
            .await
            .map_err(|source| self.err(&path, source))?;
        Ok(())
    }

    /// Deletes one file of a version (`path` relative to the version folder).
    pub async fn delete_file(&self, run_id: &str, path: &str) -> Result<(), LakeError> {
        let location = Path::parse(format!("{}/{path}", self.version_path(run_id)))
            .map_err(|_| LakeError::Url(path.to_string()))?;
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.err(&location, source)),
        }
    }

    /// Deletes a version folder (after a failure, or for old versions) and the run's staging
    /// folder.
    pub async fn delete_version(&self, run_id: &str) -> Result<(), LakeError> {
        self.delete_prefix(&self.version_path(run_id)).await?;
        self.delete_staging(run_id).await
    }

    /// Deletes every object under `prefix`.
    async fn delete_prefix(&self, prefix: &Path) -> Result<(), LakeError> {
        let locations = self.store.list(Some(prefix)).map_ok(|m| m.location).boxed();
        let deleted: Vec<_> = self.store.delete_stream(locations).collect().await;
        for r in deleted {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => return Err(self.err(prefix, source)),
            }
        }
        // A local file system keeps the emptied folders; remove them too.
        if self.store_url == "file:///" {
            let dir = std::path::Path::new("/").join(prefix.as_ref());
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(self.err(
                        prefix,
                        object_store::Error::Generic {
                            store: "LocalFileSystem",
                            source: Box::new(e),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    /// Run ids of every version folder under the table root, oldest first.
    pub async fn versions(&self) -> Result<Vec<String>, LakeError> {
        self.run_folders(&self.root).await
    }

    /// Run ids of the `run-<id>` folders right under `parent`, oldest first.
    async fn run_folders(&self, parent: &Path) -> Result<Vec<String>, LakeError> {
        let listing = self
            .store
            .list_with_delimiter(Some(parent))
            .await
            .map_err(|source| self.err(parent, source))?;
        let mut ids: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.strip_prefix(RUN_PREFIX).map(str::to_string))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Removes every version except those in `keep`.
    pub async fn retain_versions(&self, keep: &[&str]) -> Result<usize, LakeError> {
        let mut removed = 0;
        for id in self.versions().await? {
            if !keep.contains(&id.as_str()) {
                self.delete_version(&id).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn err(&self, path: &Path, source: object_store::Error) -> LakeError {
        LakeError::Store {
            location: format!("{}{}", self.store_url, path),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn versions_are_listed_sealed_and_pruned() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let table =
            TableLocation::new(store.clone(), "memory:///", "memory:///lake/db/t/").unwrap();
        assert_eq!(table.root_url(), "memory:///lake/db/t/");
        for run in ["a", "b", "c"] {
            let p = Path::from(format!("lake/db/t/run-{run}/part-0.parquet"));
            store
                .put(&p, PutPayload::from_static(b"1234"))
                .await
                .unwrap();
        }
        let files = table.list_version("b").await.unwrap();
        assert_eq!(
            files,
            vec![DataFile {
                path: "part-0.parquet".into(),
                size: 4,
                rows: None,
            }]
        );
        table
            .seal(&Manifest {
                run_id: "b".into(),
                rows: 1,
                files,
                bookmark: None,
            })
            .await
            .unwrap();
        assert_eq!(
            table.list_version("b").await.unwrap().len(),
            1,
            "marker is hidden"
        );
        assert_eq!(table.versions().await.unwrap(), vec!["a", "b", "c"]);
        assert_eq!(table.retain_versions(&["b", "c"]).await.unwrap(), 1);
        assert_eq!(table.versions().await.unwrap(), vec!["b", "c"]);
    }

    /// A run's staging folder is live while its marker exists; clearing the folder takes
    /// the marker with it, which is what tells late write tasks to delete their files.
    #[tokio::test]
    async fn a_staging_folder_is_live_until_it_is_cleared() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let table =
            TableLocation::new(store.clone(), "memory:///", "memory:///lake/db/t/").unwrap();
        let marker = Path::from("lake/db/t/_attempts/run-r1/_LIVE");
        assert!(store.head(&marker).await.is_err());
        table.open_staging("r1").await.unwrap();
        assert!(store.head(&marker).await.is_ok());
        table
            .put_staged("r1", "part-0.parquet", b"data".to_vec())
            .await
            .unwrap();
        // Nothing of the marker reaches a version.
        table.publish("r1", &[]).await.unwrap();
        assert!(table.list_version("r1").await.unwrap().is_empty());
        table.delete_staging("r1").await.unwrap();
        assert!(matches!(
            store.head(&marker).await,
            Err(object_store::Error::NotFound { .. })
        ));
        assert!(table.staged_runs().await.unwrap().is_empty());
        // Clearing an already cleared folder is no error.
        table.delete_staging("r1").await.unwrap();
    }

    #[tokio::test]
    async fn only_reported_files_are_published_and_late_writes_stay_staged() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let table =
            TableLocation::new(store.clone(), "memory:///", "memory:///lake/db/t/").unwrap();
        assert_eq!(
            table.staging_url("r1"),
            "memory:///lake/db/t/_attempts/run-r1/"
        );
        let good = table
            .put_staged("r1", "k=a/part-0.parquet", b"good".to_vec())
            .await
            .unwrap();
        // A superseded attempt of the same task.
        table
            .put_staged("r1", "k=a/part-0-zombie.parquet", b"late".to_vec())
            .await
            .unwrap();
        table
            .publish("r1", std::slice::from_ref(&good))
            .await
            .unwrap();
        assert_eq!(table.list_version("r1").await.unwrap(), vec![good.clone()]);
        // The staging folder is not a version, and a write arriving after the commit does
        // not reach the version.
        assert_eq!(table.versions().await.unwrap(), vec!["r1"]);
        table
            .put_staged("r1", "k=a/part-1-zombie.parquet", b"later".to_vec())
            .await
            .unwrap();
        assert_eq!(table.list_version("r1").await.unwrap(), vec![good]);
        assert_eq!(table.staged_runs().await.unwrap(), vec!["r1"]);
        table.delete_staging("r1").await.unwrap();
        assert!(table.staged_runs().await.unwrap().is_empty());
        assert_eq!(table.list_version("r1").await.unwrap().len(), 1);
    }
}
