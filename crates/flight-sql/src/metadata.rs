//! What the server tells clients about itself: SQL info, XDBC types and the (empty) key
//! listings.

use std::sync::{Arc, LazyLock};

use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity,
    SqlSupportedTransaction, XdbcDataType, XdbcDatetimeSubcode,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// The answers to `GetSqlInfo`.
pub(crate) static SQL_INFO: LazyLock<Option<SqlInfoData>> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "Sluice");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlSchemaTerm, "database");
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.build().ok()
});

fn xdbc(
    name: &str,
    ty: XdbcDataType,
    size: Option<i32>,
    subcode: Option<XdbcDatetimeSubcode>,
) -> XdbcTypeInfo {
    let numeric = matches!(
        ty,
        XdbcDataType::XdbcTinyint
            | XdbcDataType::XdbcSmallint
            | XdbcDataType::XdbcInteger
            | XdbcDataType::XdbcBigint
            | XdbcDataType::XdbcReal
            | XdbcDataType::XdbcDouble
            | XdbcDataType::XdbcDecimal
    );
    let quoted = matches!(
        ty,
        XdbcDataType::XdbcVarchar | XdbcDataType::XdbcDate | XdbcDataType::XdbcTimestamp
    );
    XdbcTypeInfo {
        type_name: name.into(),
        data_type: ty,
        column_size: size,
        literal_prefix: quoted.then(|| "'".into()),
        literal_suffix: quoted.then(|| "'".into()),
        create_params: (ty == XdbcDataType::XdbcDecimal)
            .then(|| vec!["precision".into(), "scale".into()]),
        nullable: Nullable::NullabilityNullable,
        case_sensitive: ty == XdbcDataType::XdbcVarchar,
        searchable: if ty == XdbcDataType::XdbcVarchar {
            Searchable::Full
        } else {
            Searchable::Basic
        },
        unsigned_attribute: numeric.then_some(false),
        fixed_prec_scale: ty == XdbcDataType::XdbcDecimal,
        auto_increment: numeric.then_some(false),
        local_type_name: Some(name.into()),
        minimum_scale: None,
        maximum_scale: (ty == XdbcDataType::XdbcDecimal).then_some(38),
        sql_data_type: if subcode.is_some() {
            XdbcDataType::XdbcDatetime
        } else {
            ty
        },
        datetime_subcode: subcode,
        num_prec_radix: numeric.then_some(10),
        interval_precision: None,
    }
}

/// The answers to `GetXdbcTypeInfo`: the SQL types Sluice's tables use.
pub(crate) static XDBC_TYPES: LazyLock<Option<XdbcTypeInfoData>> = LazyLock::new(|| {
    use XdbcDataType as T;
    let mut b = XdbcTypeInfoDataBuilder::new();
    for info in [
        xdbc("BOOLEAN", T::XdbcBit, Some(1), None),
        xdbc("TINYINT", T::XdbcTinyint, Some(3), None),
        xdbc("SMALLINT", T::XdbcSmallint, Some(5), None),
        xdbc("INTEGER", T::XdbcInteger, Some(10), None),
        xdbc("BIGINT", T::XdbcBigint, Some(19), None),
        xdbc("REAL", T::XdbcReal, Some(7), None),
        xdbc("DOUBLE", T::XdbcDouble, Some(15), None),
        xdbc("DECIMAL", T::XdbcDecimal, Some(38), None),
        xdbc("VARCHAR", T::XdbcVarchar, None, None),
        xdbc("BINARY", T::XdbcVarbinary, None, None),
        xdbc(
            "DATE",
            T::XdbcDate,
            Some(10),
            Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
        ),
        xdbc(
            "TIMESTAMP",
            T::XdbcTimestamp,
            Some(29),
            Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
        ),
    ] {
        b.append(info);
    }
    b.build().ok()
});

/// The result schema of `GetPrimaryKeys` (Sluice's tables have none).
pub(crate) fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The result schema of `GetExportedKeys`, `GetImportedKeys` and `GetCrossReference`.
pub(crate) fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}
