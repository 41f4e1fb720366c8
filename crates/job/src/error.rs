//! Everything that can be wrong with a job file: [`Diagnostic`]s located in the file
//! ([`JobFileError`]), and the typed errors of the name, type and staging-folder checks.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::source_map::Position;

/// One problem found in a job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Path of the value, such as `transforms[1].join.on[0].left`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Why a job file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The job file.
        file: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not parse or does not have the job's shape.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The job file.
        file: PathBuf,
        /// 1-based line of the mistake.
        line: usize,
        /// 1-based column of the mistake.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The job is well formed but its contents are inconsistent.
    #[error("{}", render(.file, .located))]
    Invalid {
        /// The job file.
        file: PathBuf,
        /// Every problem, with its place in the file when known.
        located: Vec<(Option<Position>, Diagnostic)>,
    },
}

fn render(file: &Path, located: &[(Option<Position>, Diagnostic)]) -> String {
    located
        .iter()
        .map(|(pos, d)| format_located(file, *pos, d))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `file:line:col: path: message`.
pub fn format_located(file: &Path, pos: Option<Position>, d: &Diagnostic) -> String {
    match pos {
        Some(p) => format!(
            "{}:{}:{}: {}: {}",
            file.display(),
            p.line,
            p.column,
            d.path,
            d.message
        ),
        None => format!("{}: {}: {}", file.display(), d.path, d.message),
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a SQL type name is not one a job may use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlTypeError {
    /// `decimal(...)` without a comma between precision and scale.
    #[error("'{0}': write decimal(precision, scale)")]
    DecimalShape(String),
    /// The decimal's precision is not a number.
    #[error("'{0}': precision must be a number from 1 to 38")]
    Precision(String),
    /// The decimal's scale is not a number.
    #[error("'{0}': scale must be a number from 0 to the precision")]
    Scale(String),
    /// The decimal's precision or scale is out of range.
    #[error("'{0}': precision must be 1 to 38 and scale 0 to the precision")]
    DecimalRange(String),
    /// Not a type name at all.
    #[error("unknown type '{text}': expected one of {expected}{hint}")]
    Unknown {
        /// The name as written.
        text: String,
        /// The type names a job may use, comma-separated.
        expected: String,
        /// ` (did you mean '…'?)` when a name is near, else empty.
        hint: String,
    },
}

/// Why a database, table, job or node name is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A database or table name that is empty or longer than 255 bytes.
    #[error("'{0}' must be 1 to 255 characters long")]
    CatalogLength(String),
    /// A database or table name with a character Athena does not allow.
    #[error(
        "'{name}' is not a valid Athena name: only lower case letters, digits and '_' are allowed, not '{bad}' (try '{fixed}')"
    )]
    CatalogCharacter {
        /// The name as written.
        name: String,
        /// The first character not allowed.
        bad: char,
        /// The name with the characters fixed.
        fixed: String,
    },
    /// A job name that is empty or longer than 255 bytes.
    #[error("a job name must be 1 to 255 characters long")]
    JobLength,
    /// A job name with a character other than letters, digits, `-` and `_`.
    #[error("'{0}' is not a valid job name: use letters, digits, '-' and '_'")]
    JobCharacter(String),
    /// A node name that is not a SQL identifier.
    #[error("'{0}' is not a valid node name: use letters, digits and '_', starting with a letter")]
    Node(String),
}

/// Why a staging folder cannot be turned into a URL.
#[derive(Debug, thiserror::Error)]
pub enum BaseUrlError {
    /// The folder was written as a URL that does not parse.
    #[error("'{dir}' is not a valid URL: {source}")]
    Url {
        /// The folder as written.
        dir: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// The folder, made absolute, still cannot be a `file://` URL.
    #[error("'{}' is not an absolute folder path", .0.display())]
    NotAbsolute(PathBuf),
}

/// The repeated keys `source_map` found, each as a located diagnostic naming both lines
/// (deserializers keep the last of two equal keys, so a repeat would silently replace the
/// first): the one check job files and dashboard files share.
pub fn duplicate_key_diagnostics(
    source_map: &crate::SourceMap,
) -> Vec<(Option<crate::Position>, Diagnostic)> {
    source_map
        .duplicates()
        .iter()
        .map(|d| {
            (
                Some(d.at),
                Diagnostic::new(
                    &d.path,
                    format!("duplicate key '{}' (first at line {})", d.key, d.first.line),
                ),
            )
        })
        .collect()
}
