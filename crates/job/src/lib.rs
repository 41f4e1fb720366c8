//! Reads a Sluice job file (YAML) into the proto [`JobSpec`], checking its structure.
//!
//! Every error names the file, line and path of the offending value, and suggests a near
//! name where one fits: `job.yaml:23:15: transforms[1].join.left: no node 'albms' (did you
//! mean 'albums'?)`. Column-level checks need the data's schema and live in the planner;
//! its errors carry a path too, which [`LoadedJob::locate`] turns into a line.

mod convert;
mod error;
mod model;
pub mod names;
mod quality;
pub mod schedule;
pub mod source_map;
pub mod suggest;
mod transforms;

use std::path::{Path, PathBuf};

use sluice_proto as pb;

pub use convert::resolve_base_url;
pub use error::{
    BaseUrlError, Diagnostic, JobFileError, NameError, SqlTypeError, duplicate_key_diagnostics,
    format_located,
};
pub use source_map::{DuplicateKey, Position, Refusal, SourceMap};

/// A job file read from disk: the spec plus what is needed to point back into the file.
#[derive(Debug, Clone)]
pub struct LoadedJob {
    /// The file it came from.
    pub file: PathBuf,
    /// The spec, with the staging area resolved to an absolute URL.
    pub spec: pb::JobSpec,
    /// Positions of the file's values.
    pub source_map: SourceMap,
}

impl LoadedJob {
    /// Where `path` stands in the file.
    pub fn locate(&self, path: &str) -> Option<Position> {
        self.source_map.locate(path)
    }

    /// Renders a diagnostic as `file:line:col: path: message`.
    pub fn describe(&self, d: &Diagnostic) -> String {
        format_located(&self.file, self.locate(&d.path), d)
    }
}

/// Reads and checks the job file at `path`. Relative staging paths resolve against its folder.
pub fn load(path: &Path) -> Result<LoadedJob, JobFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| JobFileError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    parse(&text, path, &base)
}

/// Parses job text; `file` is only used in messages, `base_dir` anchors relative paths.
pub fn parse(text: &str, file: &Path, base_dir: &Path) -> Result<LoadedJob, JobFileError> {
    let source_map = SourceMap::build(text);
    // Deserializers keep the last of two equal keys: a repeated source would silently
    // replace the first, so any repeated key (at any level) is an error naming both lines.
    if !source_map.duplicates().is_empty() {
        return Err(JobFileError::Invalid {
            file: file.to_path_buf(),
            located: duplicate_key_diagnostics(&source_map),
        });
    }
    let job: model::JobFile = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let (line, column) = within_text(text, line, column);
        JobFileError::Syntax {
            file: file.to_path_buf(),
            line,
            column,
            message: e.to_string(),
        }
    })?;
    if let Some(refused) = source_map.refusal() {
        let (line, column) = within_text(text, refused.at.line, refused.at.column);
        return Err(JobFileError::Syntax {
            file: file.to_path_buf(),
            line,
            column,
            message: format!("not valid YAML: {}", refused.message),
        });
    }
    let (spec, diagnostics) = convert::convert(job, base_dir);
    if !diagnostics.is_empty() {
        return Err(JobFileError::Invalid {
            file: file.to_path_buf(),
            located: diagnostics
                .into_iter()
                .map(|d| (quality::locate(&source_map, text, &spec, &d), d))
                .collect(),
        });
    }
    Ok(LoadedJob {
        file: file.to_path_buf(),
        spec,
        source_map,
    })
}

/// A position inside `text`: the YAML parser places errors at the end of the input on the
/// line after the last one, which the file does not have; they move to the end of the last
/// line.
fn within_text(text: &str, line: usize, column: usize) -> (usize, usize) {
    let lines: Vec<&str> = text.split(['\n', '\r']).collect();
    let last = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
    if line < 1 {
        (1, column.max(1))
    } else if line > last {
        let end = lines.last().map_or(0, |l| l.chars().count());
        (last, end + 1)
    } else {
        (line, column.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz test's find: serde_yaml reads a flow scalar continued on a line indented
    /// less than its block, which the YAML specification (and the source map's parser)
    /// refuses; the job is refused at that line rather than failing later with no line.
    #[test]
    fn a_flow_scalar_continued_below_its_block_is_refused_at_its_line() {
        let text = "name: j\nstaging: data\nsources:\n  a: { path: a.csv }\ntransforms:\n  - filter: { name: with_tra\ncks, input: a, predicate: \"x > 1\" }\ntarget:\n  input: with_tracks\n  table: { database: d, name: t }\n";
        let err = parse(text, Path::new("job.yaml"), Path::new("/staging"))
            .err()
            .map(|e| e.to_string());
        assert!(
            matches!(&err, Some(m) if m.starts_with("job.yaml:7:") && m.contains("not valid YAML")),
            "{err:?}"
        );
    }

    const SPOTIFY: &str = r#"
name: spotify
sources:
  albums: { path: albums.csv }
  artists: { path: artists.csv }
  tracks: { path: tracks.csv, columns: { track_popularity: bigint } }
transforms:
  - join: { name: albums_artists, left: albums, right: artists, on: ["artist_id = id"] }
  - join:
      name: joined
      left: albums_artists
      right: tracks
      type: inner
      on: [{ left: track_id, right: id }]
  - drop_duplicate_fields: { name: spotify, input: joined }
target:
  input: spotify
  table: { database: spotify, name: tracks }
"#;

    fn parse_str(text: &str) -> Result<LoadedJob, JobFileError> {
        parse(text, Path::new("job.yaml"), Path::new("/staging"))
    }

    #[test]
    fn parses_the_spotify_job() {
        let job = parse_str(SPOTIFY).expect("valid job");
        assert_eq!(job.spec.staging, "file:///staging/");
        assert_eq!(job.spec.sources.len(), 3);
        assert_eq!(job.spec.transforms.len(), 3);
        let Some(pb::transform::Kind::Join(j)) = &job.spec.transforms[0].kind else {
            panic!("first transform is a join");
        };
        assert_eq!(j.on[0].left, "artist_id");
        assert_eq!(j.on[0].right, "id");
        let target = job.spec.target.expect("target");
        assert_eq!(target.compression, pb::Compression::Snappy as i32);
    }

    #[test]
    fn unknown_input_names_line_and_suggests() {
        let text = SPOTIFY.replace("left: albums_artists", "left: albums_artist");
        let err = parse_str(&text).expect_err("invalid").to_string();
        assert!(
            err.contains("job.yaml:11:") && err.contains("transforms[1].join.left"),
            "{err}"
        );
        assert!(err.contains("did you mean 'albums_artists'?"), "{err}");
    }

    #[test]
    fn shape_errors_carry_a_line() {
        let text = SPOTIFY.replace("type: inner", "type: inner\n      kind: x");
        let err = parse_str(&text).expect_err("invalid");
        assert!(
            matches!(err, JobFileError::Syntax { line: 14, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("unknown field `kind`"), "{err}");
    }

    #[test]
    fn a_repeated_source_is_an_error_naming_both_lines() {
        // The second `artists` would otherwise replace the first silently.
        let text = SPOTIFY.replace("  tracks: {", "  artists: { path: empty.csv }\n  tracks: {");
        let err = parse_str(&text).expect_err("duplicate source").to_string();
        assert_eq!(
            err, "job.yaml:6:3: sources.artists: duplicate key 'artists' (first at line 5)",
            "{err}"
        );
    }

    #[test]
    fn repeated_keys_are_errors_at_every_level() {
        let cases = [
            // top level
            (
                SPOTIFY.replace("name: spotify\n", "name: spotify\nname: other\n"),
                "job.yaml:3:1: name: duplicate key 'name' (first at line 2)",
            ),
            // inside a flow mapping
            (
                SPOTIFY.replace("{ path: albums.csv }", "{ path: albums.csv, path: a.csv }"),
                "job.yaml:4:31: sources.albums.path: duplicate key 'path' (first at line 4)",
            ),
            // inside a sequence item
            (
                SPOTIFY.replace(
                    "      type: inner\n",
                    "      type: inner\n      type: left\n",
                ),
                "job.yaml:14:7: transforms[1].join.type: duplicate key 'type' (first at line 13)",
            ),
            // quoted and plain spellings are the same key
            (
                SPOTIFY.replace(
                    "  input: spotify\n",
                    "  input: spotify\n  \"input\": joined\n",
                ),
                "job.yaml:18:3: target.input: duplicate key 'input' (first at line 17)",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_str(&text).expect_err(expected).to_string();
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn every_repeated_key_is_reported() {
        let text = SPOTIFY
            .replace("name: spotify\n", "name: spotify\nname: again\n")
            .replace("  tracks: {", "  albums: { path: b.csv }\n  tracks: {");
        let err = parse_str(&text).expect_err("duplicates").to_string();
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(err.contains("name: duplicate key 'name'"), "{err}");
        assert!(
            err.contains("sources.albums: duplicate key 'albums'"),
            "{err}"
        );
    }

    #[test]
    fn equal_keys_in_different_mappings_are_fine() {
        // Every source has a `path`, every transform a `name`: not duplicates.
        parse_str(SPOTIFY).expect("valid job");
    }

    #[test]
    fn bad_table_names_and_types_are_reported_together() {
        let text = SPOTIFY
            .replace("name: tracks }", "name: Tracks-2023 }")
            .replace("bigint }", "bigintt }");
        let err = parse_str(&text).expect_err("invalid").to_string();
        assert!(err.contains("target.table.name"), "{err}");
        assert!(
            err.contains("sources.tracks.columns.track_popularity"),
            "{err}"
        );
        assert!(err.contains("did you mean 'bigint'?"), "{err}");
    }

    #[test]
    fn a_transform_of_the_wrong_type_names_the_shape_it_always_named() {
        let cases = [
            ("select", "FieldsFile"),
            ("drop_fields", "FieldsFile"),
            ("drop_duplicate_fields", "InputFile"),
            ("join", "JoinFile"),
            ("rename", "RenameFile"),
            ("cast", "CastFile"),
            ("filter", "FilterFile"),
            ("sql", "SqlFile"),
        ];
        for (kind, shape) in cases {
            let text = SPOTIFY.replace(
                "  - drop_duplicate_fields: { name: spotify, input: joined }",
                &format!("  - {kind}: 3"),
            );
            let err = parse_str(&text)
                .expect_err("a number is no transform")
                .to_string();
            assert!(
                err.contains(&format!(
                    "transforms[2].{kind}: invalid type: integer `3`, expected struct {shape}"
                )),
                "{err}"
            );
        }
    }
}
