// Licensed to the Apache Software Foundation (ASF) under one
// or more contributor license agreements.  See the NOTICE file
// distributed with this work for additional information
// regarding copyright ownership.  The ASF licenses this file
// to you under the Apache License, Version 2.0 (the
// "License"); you may not use this file except in compliance
// with the License.  You may obtain a copy of the License at
//
//   http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing,
// software distributed under the License is distributed on an
// "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
// KIND, either express or implied.  See the License for the
// specific language governing permissions and limitations
// under the License.

//! Concatenation that frees each input as soon as it is copied (Sluice patch).
//!
//! `concat_batches` keeps every input alive until the whole output is written, so merging
//! a build side briefly holds it twice. [`concat_consuming`] takes the arrays by value,
//! allocates the output once (its pages become resident only as they are written) and drops
//! each input after copying it, so the build side is held about once plus one batch. Arrays
//! that share buffers with others free nothing when dropped, which is harmless.
//!
//! Primitive, boolean and offset byte arrays (`Utf8`, `LargeUtf8`, `Binary`, `LargeBinary`)
//! are copied this way; other types go through `arrow::compute::concat`.

use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, GenericByteArray,
    PrimitiveArray,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowNativeType, ArrowPrimitiveType, BinaryType, ByteArrayType, DataType,
    LargeBinaryType, LargeUtf8Type, Utf8Type,
};
use arrow::downcast_primitive_array;
use datafusion_common::{Result, internal_datafusion_err};

/// Concatenates `arrays` (all of one type) into one array, dropping each input once it is
/// copied.
pub(crate) fn concat_consuming(arrays: Vec<ArrayRef>) -> Result<ArrayRef> {
    if arrays.len() == 1 {
        return Ok(arrays.into_iter().next().expect("one array"));
    }
    let Some(first) = arrays.first() else {
        return Err(internal_datafusion_err!("concat_consuming of no arrays"));
    };
    let first = Arc::clone(first);
    match first.data_type() {
        DataType::Utf8 => concat_bytes::<Utf8Type>(arrays),
        DataType::LargeUtf8 => concat_bytes::<LargeUtf8Type>(arrays),
        DataType::Binary => concat_bytes::<BinaryType>(arrays),
        DataType::LargeBinary => concat_bytes::<LargeBinaryType>(arrays),
        DataType::Boolean => Ok(concat_booleans(arrays)),
        _ => {
            let first: &dyn Array = first.as_ref();
            downcast_primitive_array!(
                first => concat_primitives(first.data_type(), arrays, first),
                _ => {
                    let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
                    Ok(arrow::compute::concat(&refs)?)
                }
            )
        }
    }
}

/// Appends the validity of an array of `len` values to `builder`.
fn nulls_of(builder: &mut NullBufferBuilder, nulls: Option<&NullBuffer>, len: usize) {
    match nulls {
        Some(nulls) => builder.append_buffer(nulls),
        None => builder.append_n_non_nulls(len),
    }
}

fn concat_primitives<T: ArrowPrimitiveType>(
    data_type: &DataType,
    arrays: Vec<ArrayRef>,
    _type_witness: &PrimitiveArray<T>,
) -> Result<ArrayRef> {
    let len: usize = arrays.iter().map(|array| array.len()).sum();
    let mut values: Vec<T::Native> = Vec::with_capacity(len);
    let mut nulls = NullBufferBuilder::new(len);
    for array in arrays {
        let array = array.as_primitive::<T>();
        values.extend_from_slice(array.values());
        nulls_of(&mut nulls, array.nulls(), array.len());
    }
    let array = PrimitiveArray::<T>::try_new(ScalarBuffer::from(values), nulls.finish())?
        .with_data_type(data_type.clone());
    Ok(Arc::new(array))
}

fn concat_booleans(arrays: Vec<ArrayRef>) -> ArrayRef {
    let len: usize = arrays.iter().map(|array| array.len()).sum();
    let mut values = BooleanBufferBuilder::new(len);
    let mut nulls = NullBufferBuilder::new(len);
    for array in arrays {
        let array = array.as_boolean();
        values.append_buffer(array.values());
        nulls_of(&mut nulls, array.nulls(), array.len());
    }
    Arc::new(BooleanArray::new(values.finish(), nulls.finish()))
}

fn concat_bytes<T: ByteArrayType>(arrays: Vec<ArrayRef>) -> Result<ArrayRef> {
    let len: usize = arrays.iter().map(|array| array.len()).sum();
    let bytes: usize = arrays
        .iter()
        .map(|array| {
            let offsets = array.as_bytes::<T>().value_offsets();
            match (offsets.first(), offsets.last()) {
                (Some(first), Some(last)) => last.as_usize() - first.as_usize(),
                _ => 0,
            }
        })
        .sum();
    let too_large = || {
        internal_datafusion_err!(
            "{bytes} bytes of {} values do not fit its offsets",
            T::DATA_TYPE
        )
    };
    T::Offset::from_usize(bytes).ok_or_else(too_large)?;

    let mut offsets: Vec<T::Offset> = Vec::with_capacity(len + 1);
    offsets.push(T::Offset::usize_as(0));
    let mut values: Vec<u8> = Vec::with_capacity(bytes);
    let mut nulls = NullBufferBuilder::new(len);
    for array in arrays {
        let array = array.as_bytes::<T>();
        let source = array.value_offsets();
        let (Some(first), Some(last)) = (source.first(), source.last()) else {
            continue;
        };
        let (first, last) = (first.as_usize(), last.as_usize());
        let base = values.len();
        // Every offset fits: the total does, checked above.
        offsets.extend(
            source[1..]
                .iter()
                .map(|offset| T::Offset::usize_as(offset.as_usize() - first + base)),
        );
        values.extend_from_slice(&array.value_data()[first..last]);
        nulls_of(&mut nulls, array.nulls(), array.len());
    }
    // SAFETY: the offsets start at 0, never decrease and end at `values.len()`, and each
    // value's bytes are copied whole from a valid array of the same type (so UTF-8 stays
    // valid); the validity covers `len` values.
    let array = unsafe {
        GenericByteArray::<T>::new_unchecked(
            OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)),
            Buffer::from_vec(values),
            nulls.finish(),
        )
    };
    Ok(Arc::new(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Float64Array, Int64Array, LargeBinaryArray, StringArray,
        TimestampMillisecondArray,
    };
    use arrow::compute::concat;

    fn check(arrays: Vec<ArrayRef>) {
        let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
        let expected = concat(&refs).unwrap();
        let actual = concat_consuming(arrays).unwrap();
        actual.to_data().validate_full().unwrap();
        assert_eq!(actual.as_ref(), expected.as_ref());
    }

    #[test]
    fn same_as_concat_for_slices_nulls_and_types() {
        let strings: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            None,
            Some(""),
            Some("héllo"),
            Some("xyz"),
        ]));
        check(vec![
            strings.slice(1, 3),
            Arc::new(StringArray::from(vec!["q"; 3])),
            strings.slice(0, 0),
            strings.slice(3, 2),
        ]);
        check(vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(Int64Array::from(vec![4, 5]).slice(1, 1)),
        ]);
        check(vec![
            Arc::new(TimestampMillisecondArray::from(vec![1, 2]).with_timezone("+01:00")),
            Arc::new(
                TimestampMillisecondArray::from(vec![None, Some(3)])
                    .with_timezone("+01:00"),
            ),
        ]);
        check(vec![
            Arc::new(Float64Array::from(vec![f64::NAN, -0.0])),
            Arc::new(Float64Array::from(vec![0.5])),
        ]);
        check(vec![
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)]).slice(1, 2)),
            Arc::new(BooleanArray::from(vec![true; 9])),
        ]);
        check(vec![
            Arc::new(LargeBinaryArray::from(vec![b"ab".as_ref(), b""])),
            Arc::new(LargeBinaryArray::from(vec![Some(b"\xff".as_ref()), None])),
        ]);
    }
}
