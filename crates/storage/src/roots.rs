//! Where a service may read job sources from and write tables to.
//!
//! [`AllowedRoots`] holds folders and object-store prefixes (`s3://bucket/prefix/`). A URL is
//! inside a root when, after normalisation, it names the root or something below it, whole
//! path segment by whole path segment: root `/srv/staging` does not admit `/srv/stagingX`.
//! Local paths are resolved on the file system first (`..`, symbolic links), so a link
//! inside a root that points elsewhere is outside.

use std::path::{Component, Path, PathBuf};

use url::Url;

/// Why a root cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// The root is neither an absolute folder nor a URL with a bucket.
    #[error(
        "'{0}' is not a usable root: give an absolute folder or a URL such as s3://bucket/prefix/"
    )]
    Unusable(String),
}

/// One allowed root.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Root {
    /// A local folder, resolved as far as it exists.
    Local(PathBuf),
    /// `scheme://bucket/` and a key prefix that is empty or ends in `/`.
    Remote { store: String, prefix: String },
}

/// A set of folders and prefixes; see the module documentation.
#[derive(Debug, Clone)]
pub struct AllowedRoots {
    roots: Vec<Root>,
    shown: Vec<String>,
}

impl AllowedRoots {
    /// The roots `texts` (absolute folders, `file://` URLs or `s3://bucket/prefix` URLs).
    pub fn new<S: AsRef<str>>(texts: &[S]) -> Result<Self, RootError> {
        let mut roots = Vec::new();
        let mut shown = Vec::new();
        for text in texts {
            let text = text.as_ref();
            let root = if text.contains("://") {
                let url = Url::parse(text).map_err(|_| RootError::Unusable(text.to_string()))?;
                match target(&url) {
                    Some(Target::Local(path)) => Root::Local(resolve(&path, false)),
                    Some(Target::Remote { store, key }) => Root::Remote {
                        store,
                        prefix: folder_key(&key),
                    },
                    None => return Err(RootError::Unusable(text.to_string())),
                }
            } else {
                let path = Path::new(text);
                if !path.is_absolute() {
                    return Err(RootError::Unusable(text.to_string()));
                }
                Root::Local(resolve(&normalise(path), false))
            };
            shown.push(match &root {
                Root::Local(p) => p.display().to_string(),
                Root::Remote { store, prefix } => format!("{store}{prefix}"),
            });
            roots.push(root);
        }
        Ok(Self { roots, shown })
    }

    /// Whether no root is configured (then nothing is inside).
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The roots as configured and resolved, for messages: `/srv/staging, s3://b/p/`.
    pub fn describe(&self) -> String {
        self.shown.join(", ")
    }

    /// Whether `url` (a URL, or an absolute path) lies inside one of the roots. With
    /// `must_exist`, a local path that cannot be resolved on the file system (a listed
    /// file that vanished, or whose name does not survive URL decoding) is outside.
    pub fn contains(&self, url: &str, must_exist: bool) -> bool {
        let parsed = if url.contains("://") {
            Url::parse(url).ok().and_then(|u| target(&u))
        } else if Path::new(url).is_absolute() {
            Some(Target::Local(normalise(Path::new(url))))
        } else {
            None
        };
        let Some(parsed) = parsed else {
            return false;
        };
        match parsed {
            Target::Local(path) => {
                let resolved = resolve(&path, must_exist);
                if must_exist && !resolved.exists() {
                    return false;
                }
                self.roots
                    .iter()
                    .any(|r| matches!(r, Root::Local(root) if resolved.starts_with(root)))
            }
            Target::Remote { store, key } => self.roots.iter().any(|r| match r {
                Root::Remote {
                    store: root_store,
                    prefix,
                } => {
                    *root_store == store
                        && (key.starts_with(prefix.as_str()) || folder_key(&key) == *prefix)
                }
                Root::Local(_) => false,
            }),
        }
    }
}

/// What a URL names.
enum Target {
    /// A local path, lexically normalised.
    Local(PathBuf),
    /// `scheme://bucket/` and the object key (no leading `/`).
    Remote { store: String, key: String },
}

fn target(url: &Url) -> Option<Target> {
    if url.scheme() == "file" {
        // The URL parser has already removed `.` and `..` segments (also `%2e%2e`); decoding
        // may bring back a `/` or `..` (`%2f`), so normalise again.
        let path = url.to_file_path().ok()?;
        return Some(Target::Local(normalise(&path)));
    }
    let bucket = url.host_str().filter(|h| !h.is_empty())?;
    let key = url.path().trim_start_matches('/').to_string();
    if key.split('/').any(|s| s == "..") {
        return None;
    }
    Some(Target::Remote {
        store: format!("{}://{bucket}/", url.scheme()),
        key,
    })
}

/// `key` as a folder prefix: empty, or ending in `/`.
fn folder_key(key: &str) -> String {
    if key.is_empty() || key.ends_with('/') {
        key.to_string()
    } else {
        format!("{key}/")
    }
}

/// `path` without `.` and `..` components (`..` drops the previous component).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` with symbolic links resolved: its longest existing ancestor is canonicalised and
/// the rest appended. With `must_exist`, only a full resolution is accepted (else `path` is
/// returned as it is, and will not exist).
fn resolve(path: &Path, must_exist: bool) -> PathBuf {
    if let Ok(full) = std::fs::canonicalize(path) {
        return full;
    }
    if must_exist {
        return path.to_path_buf();
    }
    let mut rest = Vec::new();
    let mut existing = path;
    while let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) {
        rest.push(name.to_os_string());
        existing = parent;
        if let Ok(mut out) = std::fs::canonicalize(existing) {
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
    }
    path.to_path_buf()
}
