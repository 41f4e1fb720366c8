//! Rules for names and type names that a job file may use.

use crate::suggest;

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
pub fn parse_sql_type(text: &str) -> Result<SqlType, String> {
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
                .ok_or_else(|| format!("'{text}': write decimal(precision, scale)"))?;
            let p: u8 = p
                .trim()
                .parse()
                .map_err(|_| format!("'{text}': precision must be a number from 1 to 38"))?;
            let s: i8 = s
                .trim()
                .parse()
                .map_err(|_| format!("'{text}': scale must be a number from 0 to the precision"))?;
            if !(1..=38).contains(&p) || s < 0 || s as u8 > p {
                return Err(format!(
                    "'{text}': precision must be 1 to 38 and scale 0 to the precision"
                ));
            }
            SqlType::Decimal(p, s)
        }
        _ if t.starts_with("varchar(") => SqlType::String,
        _ => {
            return Err(format!(
                "unknown type '{text}': expected one of {}{}",
                TYPE_NAMES.join(", "),
                suggest::hint(&t, TYPE_NAMES)
            ));
        }
    };
    Ok(ty)
}

/// Database and table names follow Athena's rules: lower case letters, digits and `_`,
/// 1 to 255 bytes.
pub fn check_catalog_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("'{name}' must be 1 to 255 characters long"));
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
        return Err(format!(
            "'{name}' is not a valid Athena name: only lower case letters, digits and '_' are allowed, not '{bad}' (try '{fixed}')"
        ));
    }
    Ok(())
}

/// Job names: letters, digits, `-` and `_`.
pub fn check_job_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("a job name must be 1 to 255 characters long".into());
    }
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid job name: use letters, digits, '-' and '_'"
        ))
    }
}

/// Node names are used as SQL table names: letters, digits and `_`, not starting with a digit.
pub fn check_node_name(name: &str) -> Result<(), String> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid node name: use letters, digits and '_', starting with a letter"
        ))
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
                .unwrap_err()
                .contains("did you mean 'string'?")
        );
    }

    #[test]
    fn athena_names() {
        assert!(check_catalog_name("spotify_2023").is_ok());
        let e = check_catalog_name("Spotify-2023").unwrap_err();
        assert!(e.contains("try 'spotify_2023'"), "{e}");
    }
}
