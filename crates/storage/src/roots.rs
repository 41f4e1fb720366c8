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
    // The key as a reader opens it (DataFusion's `ListingTableUrl` decodes the URL's path
    // the same way): `%2e%2e`, `..`, `.` and empty segments are refused there, and here.
    let key = object_store::path::Path::from_url_path(url.path()).ok()?;
    Some(Target::Remote {
        store: format!("{}://{bucket}/", url.scheme()),
        key: key.as_ref().to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with `staging/` (a file, a sub-folder, links out of it and within it) and a
    /// sibling `stagingX/` and `outside/`.
    struct Tree {
        base: PathBuf,
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    impl Tree {
        fn new() -> Self {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("sluice-roots-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("mkdir");
            let base = std::fs::canonicalize(&dir).expect("canonical");
            for d in ["staging/in", "stagingX", "outside"] {
                std::fs::create_dir_all(base.join(d)).expect("mkdir");
            }
            for f in ["staging/in/a.csv", "stagingX/a.csv", "outside/secret.csv"] {
                std::fs::write(base.join(f), "x\n").expect("write");
            }
            let link = |to: &str, at: &str| {
                std::os::unix::fs::symlink(base.join(to), base.join(at)).expect("symlink")
            };
            link("outside", "staging/out-dir");
            link("outside/secret.csv", "staging/out-file.csv");
            link("staging/in/a.csv", "staging/in-file.csv");
            link("staging", "outside/back-in");
            Self { base }
        }

        fn path(&self, rel: &str) -> String {
            format!("{}/{rel}", self.base.display())
        }

        fn roots(&self) -> AllowedRoots {
            AllowedRoots::new(&[self.path("staging")]).expect("roots")
        }
    }

    #[test]
    fn local_paths_inside_the_root_are_allowed() {
        let t = Tree::new();
        let roots = t.roots();
        for inside in [
            t.path("staging"),
            t.path("staging/"),
            t.path("staging/in/a.csv"),
            t.path("staging/in/*.csv"),
            t.path("staging/in/../in/a.csv"),
            t.path("staging/./in/a.csv"),
            // A link that stays inside, and a link from outside that leads in.
            t.path("staging/in-file.csv"),
            t.path("outside/back-in/in/a.csv"),
            format!("file://{}", t.path("staging/in/a.csv")),
        ] {
            assert!(roots.contains(&inside, false), "{inside}");
        }
        // Existing files pass the listing check too.
        assert!(roots.contains(&t.path("staging/in/a.csv"), true));
        assert!(roots.contains(&t.path("outside/back-in/in/a.csv"), true));
        // Not yet written: inside by its name, but not as a listed file.
        assert!(roots.contains(&t.path("staging/in/new.csv"), false));
        assert!(!roots.contains(&t.path("staging/in/new.csv"), true));
    }

    #[test]
    fn local_paths_that_lead_out_of_the_root_are_refused() {
        let t = Tree::new();
        let roots = t.roots();
        for outside in [
            "/etc/passwd".to_string(),
            "file:///etc/hostname".into(),
            t.path("staging/../outside/secret.csv"),
            t.path("staging/in/../../outside/secret.csv"),
            format!("file://{}", t.path("staging/%2e%2e/outside/secret.csv")),
            format!(
                "file://{}",
                t.path("staging/in/%2E%2E/%2E%2E/outside/secret.csv")
            ),
            // A sibling whose name starts with the root's.
            t.path("stagingX/a.csv"),
            t.path("stagingX"),
            // Links inside the root that point out of it, to a folder or a file.
            t.path("staging/out-dir/secret.csv"),
            t.path("staging/out-file.csv"),
            t.path("staging/out-dir/*.csv"),
            // Not absolute: no base to resolve against.
            "staging/in/a.csv".into(),
            "../etc/passwd".into(),
            // Other stores.
            "s3://staging/in/a.csv".into(),
        ] {
            assert!(!roots.contains(&outside, false), "{outside}");
            assert!(!roots.contains(&outside, true), "{outside}");
        }
    }

    #[test]
    fn remote_keys_match_whole_segments_of_the_prefix() {
        let roots = AllowedRoots::new(&["s3://staging/in", "s3://whole-bucket/"]).expect("roots");
        assert_eq!(roots.describe(), "s3://staging/in/, s3://whole-bucket/");
        for inside in [
            "s3://staging/in",
            "s3://staging/in/",
            "s3://staging/in/a.csv",
            "s3://staging/in/deeper/b.csv",
            "s3://staging/in/*.csv",
            // Encoded as a reader decodes it.
            "s3://staging/i%6E/a.csv",
            "s3://staging/in/a%20b.csv",
            // The URL parser drops `.` and resolves `..` that stay inside.
            "s3://staging/in/./a.csv",
            "s3://staging/in/x/../a.csv",
            "s3://whole-bucket/anything/at/all.csv",
        ] {
            assert!(roots.contains(inside, false), "{inside}");
            assert!(roots.contains(inside, true), "{inside}");
        }
        for outside in [
            "s3://staging/",
            "s3://staging/inX/a.csv",
            "s3://staging/i/a.csv",
            "s3://staging/other/in/a.csv",
            "s3://other-bucket/in/a.csv",
            "s3://stagingX/in/a.csv",
            "gs://staging/in/a.csv",
            "s3://staging/in/../secret/a.csv",
            "s3://staging/in/%2e%2e/secret/a.csv",
            "s3://staging/in/%2E%2E/secret/a.csv",
            "s3://staging/in/x/../../secret/a.csv",
            // One segment to the URL parser, `../secret` to a reader.
            "s3://staging/in/..%2Fsecret/a.csv",
            "s3://staging/in//a.csv",
            "s3:///in/a.csv",
            "/etc/passwd",
            "file:///etc/passwd",
        ] {
            assert!(!roots.contains(outside, false), "{outside}");
        }
    }

    #[test]
    fn unusable_roots_are_errors_and_no_roots_admit_nothing() {
        for bad in ["relative/folder", "s3:///no-bucket/", "not a url://x"] {
            assert!(AllowedRoots::new(&[bad]).is_err(), "{bad}");
        }
        let none = AllowedRoots::new::<&str>(&[]).expect("empty");
        assert!(none.is_empty());
        assert!(!none.contains("/tmp", false));
        assert!(!none.contains("s3://staging/in/a.csv", false));
    }
}
