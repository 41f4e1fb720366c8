//! SQL over the catalog's tables: each table becomes `<database>.<table>` in a DataFusion
//! session, read from its current version in the lake.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use sluice_catalog::TableEntry;

/// Name of the SQL catalog the tables live in (`sluice.<database>.<table>`).
pub const SQL_CATALOG: &str = "sluice";

/// A session whose default catalog is `sluice`, without tables yet.
pub fn query_context() -> SessionContext {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(SQL_CATALOG, "default")
        .with_create_default_catalog_and_schema(true)
        .with_information_schema(true);
    match datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_object_store_registry(sluice_storage::SluiceObjectStores::new())
        .build_arc()
    {
        Ok(runtime) => SessionContext::new_with_config_rt(config, runtime),
        Err(_) => SessionContext::new_with_config(config),
    }
}

/// Registers every entry as `<database>.<table>` in `ctx`'s default catalog.
pub async fn register_tables(ctx: &SessionContext, tables: &[TableEntry]) -> Result<()> {
    let catalog = ctx
        .catalog(SQL_CATALOG)
        .ok_or_else(|| datafusion::error::DataFusionError::Plan("no sluice catalog".into()))?;
    for entry in tables {
        let schema: Arc<dyn SchemaProvider> = match catalog.schema(&entry.database) {
            Some(s) => s,
            None => {
                let s: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
                catalog.register_schema(&entry.database, s.clone())?;
                s
            }
        };
        let table = listing_table(ctx, entry).await?;
        schema.deregister_table(&entry.name)?;
        schema.register_table(entry.name.clone(), table)?;
    }
    Ok(())
}

async fn listing_table(
    ctx: &SessionContext,
    entry: &TableEntry,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    let url = ListingTableUrl::parse(&entry.location)?;
    let partition_cols = entry
        .partition_keys
        .iter()
        .map(|k| (k.name.clone(), DataType::Utf8))
        .collect();
    let options = if entry.classification == "csv" {
        let header = entry
            .parameters
            .get("skip.header.line.count")
            .is_some_and(|n| n != "0");
        let delimiter = entry
            .parameters
            .get("delimiter")
            .and_then(|d| d.bytes().next())
            .unwrap_or(b',');
        let format = CsvFormat::default()
            .with_has_header(header)
            .with_delimiter(delimiter);
        ListingOptions::new(Arc::new(format)).with_file_extension(".csv")
    } else {
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet")
    }
    .with_table_partition_cols(partition_cols);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await?;
    Ok(Arc::new(ListingTable::try_new(config)?))
}
