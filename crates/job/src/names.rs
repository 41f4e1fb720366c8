//! Rules for names and type names that a job file may use.

use crate::suggest;

pub use crate::error::{NameError, SqlTypeError};

/// A column type a job may name, in Athena/Hive terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// `boolean`
    Boolean,
    /// `tinyint` (8 bits)
    TinyInt,
    /// `smallint` (16 bits)
    SmallInt,
    /// `int` / `integer` (32 bits)
    Int,
    /// `bigint` (64 bits)
    BigInt,
    /// `float` / `real` (32 bits)
    Float,
    /// `double` (64 bits)
    Double,
    /// `decimal(precision, scale)`
    Decimal(u8, i8),
    /// `string` / `varchar` / `text`
    String,
    /// `binary`
    Binary,
    /// `date`
    Date,
    /// `timestamp` (microseconds, no time zone)
    Timestamp,
}

const TYPE_NAMES: [&str; 12] = [
    "boolean",
    "tinyint",
    "smallint",
    "int",
    "bigint",
    "float",
    "double",
    "decimal(p,s)",
    "string",
    "binary",
    "date",
    "timestamp",
];

/// Parses a SQL type name such as `bigint` or `decimal(10, 2)`.
pub fn parse_sql_type(text: &str) -> Result<SqlType, SqlTypeError> {
    let t = text.trim().to_lowercase();
    let ty = match t.as_str() {
        "boolean" | "bool" => SqlType::Boolean,
        "tinyint" => SqlType::TinyInt,
        "smallint" => SqlType::SmallInt,
        "int" | "integer" => SqlType::Int,
        "bigint" | "long" => SqlType::BigInt,
        "float" | "real" => SqlType::Float,
        "double" | "double precision" => SqlType::Double,
        "string" | "varchar" | "text" => SqlType::String,
        "binary" | "varbinary" => SqlType::Binary,
        "date" => SqlType::Date,
        "timestamp" => SqlType::Timestamp,
        _ if t.starts_with("decimal(") && t.ends_with(')') => {
            let inner = &t["decimal(".len()..t.len() - 1];
            let (p, s) = inner
                .split_once(',')
                .ok_or_else(|| SqlTypeError::DecimalShape(text.to_string()))?;
            let p: u8 = p
                .trim()
                .parse()
                .map_err(|_| SqlTypeError::Precision(text.to_string()))?;
            let s: i8 = s
                .trim()
                .parse()
                .map_err(|_| SqlTypeError::Scale(text.to_string()))?;
            if !(1..=38).contains(&p) || s < 0 || s as u8 > p {
                return Err(SqlTypeError::DecimalRange(text.to_string()));
            }
            SqlType::Decimal(p, s)
        }
        _ if t.starts_with("varchar(") => SqlType::String,
        _ => {
            return Err(SqlTypeError::Unknown {
                text: text.to_string(),
                expected: TYPE_NAMES.join(", "),
                hint: suggest::hint(&t, TYPE_NAMES),
            });
        }
    };
    Ok(ty)
}

/// Database and table names follow Athena's rules: lower case letters, digits and `_`,
/// 1 to 255 bytes.
pub fn check_catalog_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > 255 {
        return Err(NameError::CatalogLength(name.to_string()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        let fixed: String = name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        return Err(NameError::CatalogCharacter {
            name: name.to_string(),
            bad,
            fixed,
        });
    }
    Ok(())
}

/// Job names: letters, digits, `-` and `_`.
pub fn check_job_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > 255 {
        return Err(NameError::JobLength);
    }
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(NameError::JobCharacter(name.to_string()))
    }
}

/// Node names are used as SQL table names: letters, digits and `_`, not starting with a digit.
pub fn check_node_name(name: &str) -> Result<(), NameError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(NameError::Node(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(parse_sql_type("BIGINT"), Ok(SqlType::BigInt));
        assert_eq!(
            parse_sql_type("decimal(10, 2)"),
            Ok(SqlType::Decimal(10, 2))
        );
        assert!(parse_sql_type("decimal(50,2)").is_err());
        assert!(
            parse_sql_type("strin")
                .expect_err("unknown")
                .to_string()
                .contains("did you mean 'string'?")
        );
    }

    #[test]
    fn athena_names() {
        assert!(check_catalog_name("spotify_2023").is_ok());
        let e = check_catalog_name("Spotify-2023")
            .expect_err("upper case")
            .to_string();
        assert!(e.contains("try 'spotify_2023'"), "{e}");
    }

    #[test]
    fn errors_read_as_they_always_have() {
        let message = |r: Result<SqlType, SqlTypeError>| r.expect_err("invalid").to_string();
        assert_eq!(
            message(parse_sql_type("decimal(10)")),
            "'decimal(10)': write decimal(precision, scale)"
        );
        assert_eq!(
            message(parse_sql_type("decimal(x,2)")),
            "'decimal(x,2)': precision must be a number from 1 to 38"
        );
        assert_eq!(
            message(parse_sql_type("decimal(10,y)")),
            "'decimal(10,y)': scale must be a number from 0 to the precision"
        );
        assert_eq!(
            message(parse_sql_type("decimal(5,6)")),
            "'decimal(5,6)': precision must be 1 to 38 and scale 0 to the precision"
        );
        assert_eq!(
            check_catalog_name("").expect_err("empty").to_string(),
            "'' must be 1 to 255 characters long"
        );
        assert_eq!(
            check_job_name("").expect_err("empty").to_string(),
            "a job name must be 1 to 255 characters long"
        );
        assert_eq!(
            check_job_name("a b").expect_err("space").to_string(),
            "'a b' is not a valid job name: use letters, digits, '-' and '_'"
        );
        assert_eq!(
            check_node_name("1st").expect_err("digit first").to_string(),
            "'1st' is not a valid node name: use letters, digits and '_', starting with a letter"
        );
    }
}
