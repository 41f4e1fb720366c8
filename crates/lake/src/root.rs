//! The lake as a whole: its root URL, the object store holding it, where a target's table
//! lives in it, and the embedded catalog kept inside it.

use std::sync::Arc;

use object_store::ObjectStore;
use sluice_catalog::{CatalogKind, Catalogs, EmbeddedCatalog};
use sluice_proto as pb;

use crate::{LakeError, TableLocation};

/// A boxed error of any kind, the cause of [`LakeError::Unreachable`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Finds the object store that serves a URL: a query engine's registry, or a process's own
/// (see `sluice_storage`). The lake asks it once, for its root.
pub trait StoreSource {
    /// The store serving `url`'s scheme and bucket.
    fn store_for(&self, url: &url::Url) -> Result<Arc<dyn ObjectStore>, BoxError>;
}

/// Any function from a URL to its store is a [`StoreSource`].
impl<F> StoreSource for F
where
    F: Fn(&url::Url) -> Result<Arc<dyn ObjectStore>, BoxError>,
{
    fn store_for(&self, url: &url::Url) -> Result<Arc<dyn ObjectStore>, BoxError> {
        self(url)
    }
}

/// Where tables go: the lake root and the store holding it.
pub struct Lake {
    /// URL of the lake root, ending in `/` (`file:///data/lake/`, `s3://bucket/lake/`).
    pub url: String,
    /// The store holding the lake.
    pub store: Arc<dyn ObjectStore>,
    /// URL of the store's root (`file:///`, `s3://bucket/`).
    pub store_url: String,
}

impl Lake {
    /// The lake at `url`, in the object store `stores` has for it.
    pub fn open(stores: &dyn StoreSource, url: &str) -> Result<Self, LakeError> {
        let url = if url.ends_with('/') {
            url.to_string()
        } else {
            format!("{url}/")
        };
        let parsed = url::Url::parse(&url).map_err(|_| LakeError::Url(url.clone()))?;
        let store_url = format!("{}://{}/", parsed.scheme(), parsed.host_str().unwrap_or(""));
        let store = stores
            .store_for(&parsed)
            .map_err(|source| LakeError::Unreachable {
                url: url.clone(),
                source,
            })?;
        Ok(Self {
            url,
            store,
            store_url,
        })
    }

    /// The lake root's path inside its store (`data/lake`).
    pub fn path(&self) -> &str {
        self.url
            .strip_prefix(&self.store_url)
            .unwrap_or("")
            .trim_end_matches('/')
    }

    /// The embedded catalog kept in this lake.
    pub fn embedded_catalog(&self) -> EmbeddedCatalog {
        EmbeddedCatalog::new(self.store.clone(), self.path(), &self.url)
    }

    /// This lake's embedded catalog and Glue, with `default` for targets that name none.
    pub fn catalogs(&self, default: CatalogKind) -> Catalogs {
        Catalogs::new(Arc::new(self.embedded_catalog()), default)
    }

    /// Where `target`'s table lives in this lake.
    pub fn table(&self, target: &pb::Target) -> Result<TableLocation, LakeError> {
        let root = if target.location.is_empty() {
            let t = target.table.clone().unwrap_or_default();
            format!("{}{}/{}/", self.url, t.database, t.table)
        } else {
            target.location.clone()
        };
        TableLocation::new(self.store.clone(), &self.store_url, &root)
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    fn memory(_: &url::Url) -> Result<Arc<dyn ObjectStore>, BoxError> {
        Ok(Arc::new(InMemory::new()))
    }

    #[test]
    fn a_lake_knows_its_store_root_and_path() {
        let lake = Lake::open(&memory, "s3://bucket/warehouse/lake").expect("lake");
        assert_eq!(lake.url, "s3://bucket/warehouse/lake/");
        assert_eq!(lake.store_url, "s3://bucket/");
        assert_eq!(lake.path(), "warehouse/lake");
        let target = pb::Target {
            table: Some(pb::TableRef {
                database: "db".into(),
                table: "t".into(),
            }),
            ..Default::default()
        };
        let table = lake.table(&target).expect("table");
        assert_eq!(table.root_url(), "s3://bucket/warehouse/lake/db/t/");
    }

    #[test]
    fn a_store_that_cannot_be_found_keeps_its_cause() {
        let missing = |_: &url::Url| -> Result<Arc<dyn ObjectStore>, BoxError> {
            Err("no store for this scheme".into())
        };
        let Err(e) = Lake::open(&missing, "gs://bucket/lake") else {
            panic!("opened a lake without a store");
        };
        assert!(matches!(e, LakeError::Unreachable { .. }), "{e}");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("no store for this scheme"));
    }
}
