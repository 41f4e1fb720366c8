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

/// Parses a type name of the job file into an Arrow type.
pub fn parse(text: &str) -> Result<DataType, String> {
    sluice_job::names::parse_sql_type(text).map(arrow_type)
}
