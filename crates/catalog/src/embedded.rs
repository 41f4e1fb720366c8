//! The embedded catalog: one JSON object per table under `<lake>/_sluice_catalog/`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use crate::{Catalog, CatalogError, TableEntry};

/// Folder of the embedded catalog inside the lake.
pub(crate) const CATALOG_DIR: &str = "_sluice_catalog";

/// A catalog kept as JSON documents in an object store (a lake folder or S3 prefix).
pub struct EmbeddedCatalog {
    store: Arc<dyn ObjectStore>,
    root: Path,
    display_root: String,
    /// Entries read by [`Catalog::list_tables`], by path, with the stamp their object had
    /// when listed: a listing re-reads only the objects whose stamp changed.
    listed: Mutex<HashMap<Path, (Stamp, TableEntry)>>,
}

/// What tells one stored version of an entry's object from another, as a listing reports
/// it: a commit replaces the object (a new file locally, a new PUT on S3), which changes
/// its ETag (locally derived from inode, size and modification time) or its time and size.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    e_tag: Option<String>,
    version: Option<String>,
    last_modified: chrono::DateTime<chrono::Utc>,
    size: u64,
}

impl Stamp {
    fn of(meta: &ObjectMeta) -> Self {
        Self {
            e_tag: meta.e_tag.clone(),
            version: meta.version.clone(),
            last_modified: meta.last_modified,
            size: meta.size,
        }
    }
}

impl EmbeddedCatalog {
    /// The catalog under `lake_path` (the lake root's path inside `store`).
    /// `display_root` is the lake URL, used in messages.
    pub fn new(store: Arc<dyn ObjectStore>, lake_path: &str, display_root: &str) -> Self {
        let root = Path::from(lake_path).clone().join(CATALOG_DIR);
        Self {
            store,
            root,
            display_root: display_root.to_string(),
            listed: Mutex::new(HashMap::new()),
        }
    }

    fn table_path(&self, database: &str, name: &str) -> Path {
        self.root
            .clone()
            .join(database)
            .join(format!("{name}.json").as_str())
    }

    fn err(&self, path: &Path, source: object_store::Error) -> CatalogError {
        CatalogError::Store {
            location: format!("{} ({path})", self.display_root),
            source,
        }
    }

    async fn read(&self, path: &Path) -> Result<Option<TableEntry>, CatalogError> {
        let bytes = match self.store.get(path).await {
            Ok(r) => r.bytes().await.map_err(|e| self.err(path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err(path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| CatalogError::Corrupt {
                location: path.to_string(),
                source,
            })
    }
}

#[async_trait::async_trait]
impl Catalog for EmbeddedCatalog {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn get_table(
        &self,
        database: &str,
        name: &str,
    ) -> Result<Option<TableEntry>, CatalogError> {
        self.read(&self.table_path(database, name)).await
    }

    async fn list_tables(&self) -> Result<Vec<TableEntry>, CatalogError> {
        let metas: Vec<_> = self
            .store
            .list(Some(&self.root))
            .try_collect()
            .await
            .map_err(|e| self.err(&self.root, e))?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for m in metas {
            if m.location.extension() != Some("json") {
                continue;
            }
            let stamp = Stamp::of(&m);
            let cached = lock(&self.listed)
                .get(&m.location)
                .filter(|(s, _)| *s == stamp)
                .map(|(_, entry)| entry.clone());
            let entry = match cached {
                Some(entry) => Some(entry),
                None => {
                    let entry = self.read(&m.location).await?;
                    if let Some(entry) = &entry {
                        lock(&self.listed).insert(m.location.clone(), (stamp, entry.clone()));
                    }
                    entry
                }
            };
            seen.insert(m.location);
            out.extend(entry);
        }
        // Dropped tables leave the cache too.
        lock(&self.listed).retain(|path, _| seen.contains(path));
        out.sort_by(|a, b| (&a.database, &a.name).cmp(&(&b.database, &b.name)));
        Ok(out)
    }

    async fn commit_table(&self, mut entry: TableEntry) -> Result<TableEntry, CatalogError> {
        let path = self.table_path(&entry.database, &entry.name);
        let previous = self.read(&path).await?;
        entry.version = previous.map(|p| p.version + 1).unwrap_or(1);
        entry.updated_at = chrono::Utc::now().to_rfc3339();
        let body = serde_json::to_vec_pretty(&entry).map_err(|source| CatalogError::Corrupt {
            location: path.to_string(),
            source,
        })?;
        // A single put replaces the object atomically (temp file + rename locally, one
        // PUT on S3): readers see the old entry or the new one, never a mix.
        self.store
            .put(&path, PutPayload::from(body))
            .await
            .map_err(|e| self.err(&path, e))?;
        Ok(entry)
    }
}

/// The cache's lock, even if a thread panicked holding it (the map stays consistent: each
/// insert or retain is one call).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn entry(location: &str) -> TableEntry {
        TableEntry {
            database: "db".into(),
            name: "t".into(),
            location: location.into(),
            classification: "parquet".into(),
            columns: vec![],
            partition_keys: vec![],
            partitions: vec![],
            parameters: Default::default(),
            run_id: None,
            version: 0,
            updated_at: String::new(),
        }
    }

    #[tokio::test]
    async fn commits_replace_and_count_versions() {
        let catalog = EmbeddedCatalog::new(Arc::new(InMemory::new()), "lake", "memory:///lake/");
        assert!(catalog.get_table("db", "t").await.unwrap().is_none());
        assert_eq!(catalog.commit_table(entry("a/")).await.unwrap().version, 1);
        assert_eq!(catalog.commit_table(entry("b/")).await.unwrap().version, 2);
        let got = catalog.get_table("db", "t").await.unwrap().unwrap();
        assert_eq!(got.location, "b/");
        assert_eq!(catalog.list_tables().await.unwrap().len(), 1);
    }

    /// A listing reuses the entries it read before only while their objects are unchanged:
    /// every commit (two within the same instant, on a local folder too) is seen by the
    /// next listing, and a deleted entry leaves it.
    #[tokio::test]
    async fn listings_see_every_commit_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        for store in [local, Arc::new(InMemory::new()) as Arc<dyn ObjectStore>] {
            let catalog = EmbeddedCatalog::new(Arc::clone(&store), "lake", "test:///lake/");
            for n in 0..20 {
                catalog
                    .commit_table(entry(&format!("v{n}/")))
                    .await
                    .unwrap();
                let listed = catalog.list_tables().await.unwrap();
                assert_eq!(listed.len(), 1);
                assert_eq!(listed[0].location, format!("v{n}/"));
                assert_eq!(listed[0].version, n + 1);
            }
            let mut other = entry("x/");
            other.name = "u".into();
            catalog.commit_table(other).await.unwrap();
            assert_eq!(catalog.list_tables().await.unwrap().len(), 2);
            store.delete(&catalog.table_path("db", "u")).await.unwrap();
            let listed = catalog.list_tables().await.unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(lock(&catalog.listed).len(), 1);
        }
    }
}
