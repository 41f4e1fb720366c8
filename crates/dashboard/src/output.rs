//! Query results as the API returns them: JSON `{"columns": [...], "rows": [[...]]}` and
//! CSV.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::Value;

use crate::backend::QueryResult;

/// The JSON body of a result: column names and rows of values (numbers stay numbers,
/// booleans booleans, nulls null; dates, times and the rest are text).
pub fn to_json(result: &QueryResult) -> Result<Value, ArrowError> {
    let columns: Vec<Value> = result
        .schema
        .fields()
        .iter()
        .map(|f| Value::String(f.name().clone()))
        .collect();
    let mut rows: Vec<Value> = Vec::new();
    for batch in &result.batches {
        let mut cells: Vec<std::vec::IntoIter<Value>> = batch
            .columns()
            .iter()
            .map(|c| column_values(c).map(Vec::into_iter))
            .collect::<Result<_, _>>()?;
        for _ in 0..batch.num_rows() {
            rows.push(Value::Array(
                cells
                    .iter_mut()
                    .map(|c| c.next().unwrap_or(Value::Null))
                    .collect(),
            ));
        }
    }
    Ok(serde_json::json!({ "columns": columns, "rows": rows }))
}

/// One column's values as JSON.
fn column_values(array: &ArrayRef) -> Result<Vec<Value>, ArrowError> {
    let values = match array.data_type() {
        DataType::Null => vec![Value::Null; array.len()],
        DataType::Boolean => {
            let a = array.as_boolean();
            non_null(array, |i| Value::Bool(a.value(i)))
        }
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let a = cast(array, &DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            non_null(array, |i| Value::from(a.value(i)))
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let a = cast(array, &DataType::UInt64)?;
            let a = a.as_primitive::<UInt64Type>();
            non_null(array, |i| Value::from(a.value(i)))
        }
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => {
            let a = cast(array, &DataType::Float64)?;
            let a = a.as_primitive::<Float64Type>();
            non_null(array, |i| {
                serde_json::Number::from_f64(a.value(i)).map_or(Value::Null, Value::Number)
            })
        }
        _ => {
            let options = FormatOptions::default();
            let f = ArrayFormatter::try_new(array.as_ref(), &options)?;
            non_null(array, |i| Value::String(f.value(i).to_string()))
        }
    };
    Ok(values)
}

/// `value(i)` for every row of `array`, null where the array is null.
fn non_null(array: &ArrayRef, value: impl Fn(usize) -> Value) -> Vec<Value> {
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                Value::Null
            } else {
                value(i)
            }
        })
        .collect()
}

/// The result as CSV with a header row.
pub fn to_csv(result: &QueryResult) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    {
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        if result.batches.is_empty() {
            writer.write(&RecordBatch::new_empty(result.schema.clone()))?;
        }
        for batch in &result.batches {
            writer.write(batch)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, Date32Array, Float64Array, Int32Array, StringViewArray};
    use std::sync::Arc;

    #[test]
    fn values_keep_their_json_kinds() {
        let batch = RecordBatch::try_from_iter([
            (
                "i",
                Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef,
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![1.5, f64::NAN])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(BooleanArray::from(vec![true, false])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringViewArray::from(vec!["a", "b"])) as ArrayRef,
            ),
            ("d", Arc::new(Date32Array::from(vec![0, 1])) as ArrayRef),
        ])
        .unwrap();
        let result = QueryResult {
            schema: batch.schema(),
            batches: vec![batch],
        };
        let json = to_json(&result).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "columns": ["i", "f", "b", "s", "d"],
                "rows": [[1, 1.5, true, "a", "1970-01-01"], [null, null, false, "b", "1970-01-02"]]
            })
        );
        let csv = String::from_utf8(to_csv(&result).unwrap()).unwrap();
        assert!(
            csv.starts_with("i,f,b,s,d\n1,1.5,true,a,1970-01-01\n"),
            "{csv}"
        );
    }
}
