//! Arrow types as Athena/Hive type names, as a Glue crawler writes them.

use arrow_schema::{DataType, TimeUnit};

/// Why an Arrow type has no Athena/Hive name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HiveTypeError {
    /// A decimal with more digits than Athena's 38.
    #[error("decimal({precision},{scale}) is wider than Athena's 38 digits")]
    DecimalTooWide {
        /// Its precision.
        precision: u8,
        /// Its scale.
        scale: i8,
    },
    /// A timestamp in nanoseconds, which Athena cannot read.
    #[error("nanosecond timestamps cannot be read by Athena: cast to timestamp")]
    NanosecondTimestamp,
    /// A map whose entries are not a struct of a key and a value.
    #[error("unsupported map layout {0}")]
    MapLayout(DataType),
    /// Any other type without an Athena equivalent.
    #[error("type {0} has no Athena equivalent")]
    Unsupported(DataType),
}

/// The Athena/Hive name of an Arrow type, or why it has none.
pub fn hive_type(t: &DataType) -> Result<String, HiveTypeError> {
    Ok(match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "int".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "decimal(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            if *p > 38 {
                return Err(HiveTypeError::DecimalTooWide {
                    precision: *p,
                    scale: *s,
                });
            }
            format!("decimal({p},{s})")
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "binary".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            return Err(HiveTypeError::NanosecondTimestamp);
        }
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("array<{}>", hive_type(f.data_type())?)
        }
        DataType::Struct(fields) => {
            let inner: Result<Vec<String>, HiveTypeError> = fields
                .iter()
                .map(|f| Ok(format!("{}:{}", f.name(), hive_type(f.data_type())?)))
                .collect();
            format!("struct<{}>", inner?.join(","))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{},{}>",
                hive_type(kv[0].data_type())?,
                hive_type(kv[1].data_type())?
            ),
            other => return Err(HiveTypeError::MapLayout(other.clone())),
        },
        DataType::Dictionary(_, v) => hive_type(v)?,
        other => return Err(HiveTypeError::Unsupported(other.clone())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::Field;
    use std::sync::Arc;

    #[test]
    fn maps_like_a_crawler() {
        assert_eq!(hive_type(&DataType::Int64).unwrap(), "bigint");
        assert_eq!(
            hive_type(&DataType::Decimal128(10, 2)).unwrap(),
            "decimal(10,2)"
        );
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        assert_eq!(hive_type(&list).unwrap(), "array<string>");
        let s = DataType::Struct(vec![Field::new("a", DataType::Int32, true)].into());
        assert_eq!(hive_type(&s).unwrap(), "struct<a:int>");
        assert!(hive_type(&DataType::Timestamp(TimeUnit::Nanosecond, None)).is_err());
    }
}
