//! The transform kinds of a job file, one module each: its YAML shape (a struct under the
//! kind's key, `- join: {...}`) and its conversion to the proto `Transform` kind, checking
//! what can be checked without the data (inputs defined earlier, required values, option
//! names). Adding a kind means a module here, a variant of [`TransformFile`] and an arm of
//! [`convert`].

mod cast;
mod drop_duplicate_fields;
mod drop_fields;
mod filter;
mod join;
mod rename;
mod select;
mod sql;

use serde::Deserialize;
use sluice_proto as pb;
use sluice_proto::transform::Kind;

use crate::convert::Converter;

/// One transform: a single-key map naming its kind.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TransformFile {
    Join(join::JoinFile),
    DropFields(drop_fields::DropFieldsFile),
    DropDuplicateFields(drop_duplicate_fields::DropDuplicateFieldsFile),
    Select(select::SelectFile),
    Rename(rename::RenameFile),
    Cast(cast::CastFile),
    Filter(filter::FilterFile),
    Sql(sql::SqlFile),
}

/// What each transform kind's module provides.
trait TransformKind {
    /// The key that names the kind in the job file (`join`, `select`, …).
    const KEY: &'static str;

    /// The name the transform defines.
    fn name(&self) -> &str;

    /// Checks the transform (recording problems under `path`, which ends in the kind's key)
    /// and converts it.
    fn convert(&self, c: &mut Converter, path: &str) -> Kind;
}

/// Converts the transform at `path` (`transforms[i]`), then defines its name.
pub(crate) fn convert(c: &mut Converter, path: &str, t: &TransformFile) -> pb::Transform {
    match t {
        TransformFile::Join(t) => convert_kind(c, path, t),
        TransformFile::DropFields(t) => convert_kind(c, path, t),
        TransformFile::DropDuplicateFields(t) => convert_kind(c, path, t),
        TransformFile::Select(t) => convert_kind(c, path, t),
        TransformFile::Rename(t) => convert_kind(c, path, t),
        TransformFile::Cast(t) => convert_kind(c, path, t),
        TransformFile::Filter(t) => convert_kind(c, path, t),
        TransformFile::Sql(t) => convert_kind(c, path, t),
    }
}

fn convert_kind<T: TransformKind>(c: &mut Converter, path: &str, t: &T) -> pb::Transform {
    let p = format!("{path}.{}", T::KEY);
    let kind = t.convert(c, &p);
    c.define(format!("{p}.name"), t.name());
    pb::Transform {
        name: t.name().to_string(),
        kind: Some(kind),
    }
}
