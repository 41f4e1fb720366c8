//! The SQL function `sluice_hash64(x)` ([`sluice_quality::HASH64`]): one value's 64-bit hash
//! as `UInt64`, NULL for NULL.
//!
//! The quality rules' uniqueness shortcut counts distinct hashes instead of distinct values:
//! grouping integers instead of, say, 22-character strings (for `IsUnique "track_id"` at
//! x100, 2 million of them). The hash is DataFusion's own (`create_hashes`, with the fixed
//! seed its HyperLogLog sketches use), so equal values hash alike in every partition and
//! process.

use std::sync::Arc;

use datafusion::arrow::array::UInt64Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::hash_utils::{HLL_RANDOM_STATE, create_hashes};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `sluice_hash64(x)`, ready to register in a session.
pub(crate) fn hash64() -> ScalarUDF {
    ScalarUDF::from(Hash64 {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Hash64 {
    signature: Signature,
}

impl ScalarUDFImpl for Hash64 {
    fn name(&self) -> &str {
        sluice_quality::HASH64
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(values) = arrays.first() else {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "{} takes one argument",
                sluice_quality::HASH64
            )));
        };
        let mut hashes = vec![0u64; values.len()];
        create_hashes([values], &HLL_RANDOM_STATE, &mut hashes)?;
        Ok(ColumnarValue::Array(Arc::new(UInt64Array::new(
            hashes.into(),
            values.logical_nulls(),
        ))))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::UInt64Type;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// Equal values hash alike (as Utf8 and as Utf8View), NULL stays NULL, and the
    /// distinct count of the hashes is the values' own on a small set.
    #[tokio::test]
    async fn equal_values_hash_alike_and_null_stays_null() -> Result<()> {
        let ctx = SessionContext::new();
        ctx.register_udf(hash64());
        let batches = ctx
            .sql(
                "SELECT sluice_hash64(v) AS h, \
                        sluice_hash64(arrow_cast(v, 'Utf8View')) AS hv \
                 FROM (VALUES ('a'), ('b'), (NULL), ('a')) AS t(v)",
            )
            .await?
            .collect()
            .await?;
        let batch = &batches[0];
        let h = batch.column(0).as_primitive::<UInt64Type>();
        assert_eq!(h.len(), 4);
        assert_eq!(h.value(0), h.value(3));
        assert_ne!(h.value(0), h.value(1));
        assert!(h.is_null(2));
        let hv = batch.column(1).as_primitive::<UInt64Type>();
        assert_eq!(hv.value(0), hv.value(3));
        assert_ne!(hv.value(0), hv.value(1));
        assert!(hv.is_null(2));
        let counted = ctx
            .sql(
                "SELECT COUNT(DISTINCT sluice_hash64(v)) AS n, COUNT(DISTINCT v) AS exact \
                 FROM (VALUES (1), (2), (NULL), (2), (3)) AS t(v)",
            )
            .await?
            .collect()
            .await?;
        let row = &counted[0];
        assert_eq!(
            row.column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0),
            3
        );
        assert_eq!(
            row.column(1)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0),
            3
        );
        Ok(())
    }
}
