//! SQL over the catalog's tables: each table becomes `<database>.<table>` in a DataFusion
//! session, read from its current version in the lake.
//!
//! [`LakeSessions`] gives the Flight SQL service one such session per query, on the cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
    register_with(ctx, tables, |_| None).await.map(|_| ())
}

/// Registers every entry, reusing the provider `cached` returns for it; returns the
/// providers registered, in the order of `tables`.
async fn register_with(
    ctx: &SessionContext,
    tables: &[TableEntry],
    cached: impl Fn(&TableEntry) -> Option<Arc<dyn datafusion::catalog::TableProvider>>,
) -> Result<Vec<Arc<dyn datafusion::catalog::TableProvider>>> {
    let mut registered = Vec::with_capacity(tables.len());
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
        let table = match cached(entry) {
            Some(t) => t,
            None => listing_table(ctx, entry).await?,
        };
        schema.deregister_table(&entry.name)?;
        schema.register_table(entry.name.clone(), Arc::clone(&table))?;
        registered.push(table);
    }
    Ok(registered)
}

/// What identifies one version of a table: a new run moves its location.
type VersionKey = (String, String, String, u64);

fn version_key(entry: &TableEntry) -> VersionKey {
    (
        entry.database.clone(),
        entry.name.clone(),
        entry.location.clone(),
        entry.version,
    )
}

/// Query sessions over the default catalog's current tables, running on the engine's cluster.
///
/// The catalog is listed for every query, so a table a run has just committed is queryable at
/// once; the table providers (their inferred schemas) are reused while a table's version stays
/// the same.
pub struct LakeSessions {
    engine: Arc<crate::Engine>,
    catalogs: Arc<sluice_catalog::Catalogs>,
    providers: Mutex<HashMap<VersionKey, Arc<dyn datafusion::catalog::TableProvider>>>,
}

impl LakeSessions {
    /// Sessions on `engine` over the default catalog of `catalogs`.
    pub fn new(engine: Arc<crate::Engine>, catalogs: Arc<sluice_catalog::Catalogs>) -> Self {
        Self {
            engine,
            catalogs,
            providers: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl sluice_flight_sql::QuerySessions for LakeSessions {
    async fn session(&self, query_id: &str) -> Result<SessionContext> {
        let external = |e: &dyn std::fmt::Display| {
            datafusion::error::DataFusionError::External(e.to_string().into())
        };
        let catalog = self.catalogs.get(None).await.map_err(|e| external(&e))?;
        let tables = catalog.list_tables().await.map_err(|e| external(&e))?;
        let ctx = self.engine.query_context(SQL_CATALOG, query_id);
        let hits: HashMap<VersionKey, _> = {
            let cache = self.providers.lock().unwrap_or_else(|p| p.into_inner());
            tables
                .iter()
                .filter_map(|t| {
                    let key = version_key(t);
                    cache.get(&key).map(|p| (key, Arc::clone(p)))
                })
                .collect()
        };
        let registered =
            register_with(&ctx, &tables, |t| hits.get(&version_key(t)).cloned()).await?;
        let mut cache = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        cache.clear();
        for (entry, provider) in tables.iter().zip(registered) {
            cache.insert(version_key(entry), provider);
        }
        Ok(ctx)
    }

    async fn cancel(&self, query_id: &str) {
        tracing::info!(%query_id, "cancelling the query's cluster jobs");
        self.engine.cancel_query(query_id).await;
    }
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
        // Plain Utf8 strings: BI clients (JDBC, older Arrow) may not know Utf8View.
        let format = ParquetFormat::default().with_force_view_types(false);
        ListingOptions::new(Arc::new(format)).with_file_extension(".parquet")
    }
    .with_table_partition_cols(partition_cols);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await?;
    Ok(Arc::new(ListingTable::try_new(config)?))
}
