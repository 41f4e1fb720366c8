//! Job-file type names ([`SqlType`]) as Arrow types.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use sluice_job::names::SqlType;

/// The Arrow type that stores values of `t`.
pub fn arrow_type(t: SqlType) -> DataType {
    match t {
        SqlType::Boolean => DataType::Boolean,
        SqlType::TinyInt => DataType::Int8,
        SqlType::SmallInt => DataType::Int16,
        SqlType::Int => DataType::Int32,
        SqlType::BigInt => DataType::Int64,
        SqlType::Float => DataType::Float32,
        SqlType::Double => DataType::Float64,
        SqlType::Decimal(p, s) => DataType::Decimal128(p, s),
        SqlType::String => DataType::Utf8,
        SqlType::Binary => DataType::Binary,
        SqlType::Date => DataType::Date32,
        SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

/// Why a type name cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeNameError {
    /// Not a type name of the job file (sluice-job says why).
    #[error(transparent)]
    Unknown(#[from] sluice_job::SqlTypeError),
    /// A Hive type name that does not parse.
    #[error("'{text}': {problem} at {position}")]
    Syntax {
        /// The whole type name.
        text: String,
        /// What was expected or found, e.g. `expected '>'`.
        problem: String,
        /// Byte offset in `text`.
        position: usize,
    },
    /// A type's arguments (`decimal(10,2)`) lack their closing parenthesis.
    #[error("'{text}': missing ')'")]
    MissingParen {
        /// The whole type name.
        text: String,
    },
}

/// Parses a type name of the job file into an Arrow type.
pub fn parse(text: &str) -> Result<DataType, TypeNameError> {
    sluice_job::names::parse_sql_type(text)
        .map(arrow_type)
        .map_err(TypeNameError::from)
}

/// The Arrow type of an Athena/Hive type name as a catalog stores it: the job-file names
/// above, `char(n)`/`varchar(n)`, and nested `array<…>`, `map<…,…>` and `struct<name:…,…>`.
pub fn hive_arrow_type(text: &str) -> Result<DataType, TypeNameError> {
    let mut parser = HiveTypes { text, pos: 0 };
    let ty = parser.parse()?;
    parser.skip_spaces();
    if parser.pos != text.len() {
        return Err(TypeNameError::Syntax {
            text: text.to_string(),
            problem: format!("unexpected '{}'", &text[parser.pos..]),
            position: parser.pos,
        });
    }
    Ok(ty)
}

/// A recursive-descent reader of Hive type names.
struct HiveTypes<'a> {
    text: &'a str,
    pos: usize,
}

impl HiveTypes<'_> {
    fn skip_spaces(&mut self) {
        while self.text[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }

    /// A syntax error at the current position.
    fn error(&self, problem: String) -> TypeNameError {
        TypeNameError::Syntax {
            text: self.text.to_string(),
            problem,
            position: self.pos,
        }
    }

    fn eat(&mut self, c: char) -> Result<(), TypeNameError> {
        self.skip_spaces();
        if self.text[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(format!("expected '{c}'")))
        }
    }

    /// A word (letters, digits, `_`), possibly empty.
    fn word(&mut self) -> &str {
        self.skip_spaces();
        let start = self.pos;
        let rest = &self.text[start..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += len;
        &self.text[start..start + len]
    }

    fn parse(&mut self) -> Result<DataType, TypeNameError> {
        use std::sync::Arc;

        use datafusion::arrow::datatypes::{Field, Fields};

        let name = self.word().to_ascii_lowercase();
        match name.as_str() {
            "array" => {
                self.eat('<')?;
                let item = self.parse()?;
                self.eat('>')?;
                Ok(DataType::List(Arc::new(Field::new("item", item, true))))
            }
            "map" => {
                self.eat('<')?;
                let key = self.parse()?;
                self.eat(',')?;
                let value = self.parse()?;
                self.eat('>')?;
                let entries = Fields::from(vec![
                    Field::new("key", key, false),
                    Field::new("value", value, true),
                ]);
                Ok(DataType::Map(
                    Arc::new(Field::new("entries", DataType::Struct(entries), false)),
                    false,
                ))
            }
            "struct" => {
                self.eat('<')?;
                let mut fields = Vec::new();
                loop {
                    let field = self.word().to_string();
                    if field.is_empty() {
                        return Err(self.error("expected a field name".to_string()));
                    }
                    self.eat(':')?;
                    fields.push(Field::new(field, self.parse()?, true));
                    self.skip_spaces();
                    if self.text[self.pos..].starts_with(',') {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                self.eat('>')?;
                Ok(DataType::Struct(Fields::from(fields)))
            }
            _ => {
                // A plain type with optional arguments: decimal(10,2), varchar(20).
                let start = self.pos - name.len();
                self.skip_spaces();
                if self.text[self.pos..].starts_with('(') {
                    let close = self.text[self.pos..].find(')').ok_or_else(|| {
                        TypeNameError::MissingParen {
                            text: self.text.to_string(),
                        }
                    })?;
                    self.pos += close + 1;
                }
                let plain = self.text[start..self.pos].to_ascii_lowercase();
                if plain.starts_with("char") {
                    return Ok(DataType::Utf8);
                }
                parse(&plain)
            }
        }
    }
}
