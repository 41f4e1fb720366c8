//! Listing: the data files under a crawl's prefix, as a crawler sees them (hidden and
//! `_`-prefixed paths left out, files that are neither Parquet nor CSV skipped).

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

use crate::CrawlError;
use crate::infer::{self, FileSchema};

/// Files whose schemas are read at once.
const CONCURRENT_READS: usize = 8;

/// A data file under the prefix.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    /// Path components below the prefix (folders, then the file name).
    pub(crate) parts: Vec<String>,
    /// Where the store keeps it.
    pub(crate) location: Path,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// Parquet or CSV, by its extension.
    pub(crate) format: infer::Format,
}

/// The data files under `prefix_url` (a folder URL), and the URLs of the files skipped
/// because they are neither Parquet nor CSV. No data file at all is an error.
pub(crate) async fn list_data_files(
    store: &Arc<dyn ObjectStore>,
    prefix_url: &Url,
) -> Result<(Vec<DataFile>, Vec<String>), CrawlError> {
    let root = Path::from_url_path(prefix_url.path()).map_err(|e| CrawlError::Store {
        url: prefix_url.to_string(),
        source: e.into(),
    })?;
    let metas: Vec<_> = store
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(|source| CrawlError::Store {
            url: prefix_url.to_string(),
            source,
        })?;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for m in metas {
        let Some(rest) = m.location.prefix_match(&root) else {
            continue;
        };
        let parts: Vec<String> = rest.map(|p| p.as_ref().to_string()).collect();
        // Like a crawler: `_SUCCESS`, `_temporary/`, `.hidden` and Sluice's own catalog
        // folder are not data.
        if parts
            .iter()
            .any(|p| p.starts_with('_') || p.starts_with('.'))
        {
            continue;
        }
        let name = parts.last().cloned().unwrap_or_default();
        match infer::Format::of(&name) {
            Some(format) => files.push(DataFile {
                parts,
                location: m.location,
                size: m.size,
                format,
            }),
            None => skipped.push(format!("{prefix_url}{}", parts.join("/"))),
        }
    }
    if files.is_empty() {
        return Err(CrawlError::NoData(prefix_url.to_string()));
    }
    Ok((files, skipped))
}

/// `url` ending in `/`, as a folder.
pub(crate) fn folder_url(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// The schemas of `files`, read [`CONCURRENT_READS`] at a time; errors name a file by
/// `url_of`.
pub(crate) async fn read_schemas(
    store: &Arc<dyn ObjectStore>,
    files: &[DataFile],
    url_of: &dyn Fn(&DataFile) -> String,
) -> Result<Vec<FileSchema>, CrawlError> {
    futures::stream::iter(files.iter().map(|f| {
        let store = store.clone();
        let display = url_of(f);
        async move { infer::read_schema(store, &f.location, f.size, f.format, &display).await }
    }))
    .buffered(CONCURRENT_READS)
    .try_collect()
    .await
}
