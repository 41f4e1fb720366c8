//! The embedded catalog: one JSON object per table under `<lake>/_sluice_catalog/`.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::{Catalog, CatalogError, TableEntry};

/// Folder of the embedded catalog inside the lake.
pub(crate) const CATALOG_DIR: &str = "_sluice_catalog";

/// A catalog kept as JSON documents in an object store (a lake folder or S3 prefix).
pub struct EmbeddedCatalog {
    store: Arc<dyn ObjectStore>,
    root: Path,
    display_root: String,
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
        for m in metas {
            if m.location.extension() == Some("json")
                && let Some(entry) = self.read(&m.location).await?
            {
                out.push(entry);
            }
        }
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
}
