//! SQL over the catalog's tables: each table becomes `<database>.<table>` in a DataFusion
//! session, read from its current version in the lake.
//!
//! Tables are opened lazily, when a query names them: a table's schema comes from its
//! catalog entry (columns and partition keys, as Athena reads them), so listing the catalog
//! reads no data, an empty version folder is an empty table, and a table whose data cannot
//! be read fails only the queries that use it, with an error naming it.
//!
//! [`LakeSessions`] gives a SQL service (Flight SQL) one such session per query, on the
//! cluster.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{LogicalPlan, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use object_store::ObjectStoreExt;
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
        Err(e) => {
            tracing::warn!(error = %e, "cannot build the query runtime; using DataFusion's default object stores");
            SessionContext::new_with_config(config)
        }
    }
}

/// Registers every entry as `<database>.<table>` in `ctx`'s default catalog. Nothing is
/// read yet: each table is opened when a query names it.
pub async fn register_tables(ctx: &SessionContext, tables: &[TableEntry]) -> Result<()> {
    register_with(ctx, tables, &Arc::new(TableCache::default()))
}

/// Registers one [`LakeSchema`] per database of `tables` in `ctx`'s `sluice` catalog.
fn register_with(
    ctx: &SessionContext,
    tables: &[TableEntry],
    cache: &Arc<TableCache>,
) -> Result<()> {
    let catalog = ctx
        .catalog(SQL_CATALOG)
        .ok_or_else(|| DataFusionError::Plan("no sluice catalog".into()))?;
    let mut databases: BTreeMap<&str, BTreeMap<String, TableEntry>> = BTreeMap::new();
    for entry in tables {
        databases
            .entry(entry.database.as_str())
            .or_default()
            .insert(entry.name.clone(), entry.clone());
    }
    let runtime = ctx.runtime_env();
    for (database, tables) in databases {
        let schema = LakeSchema {
            tables,
            runtime: Arc::clone(&runtime),
            cache: Arc::clone(cache),
        };
        catalog.register_schema(database, Arc::new(schema))?;
    }
    Ok(())
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

/// Tables opened (and found readable) before, by version.
///
/// With a memory budget, a small table's version is also read into memory once (its data
/// decoded into Arrow batches, see [`MEMORY_TABLE_MAX_BYTES`]), so a query over it decodes no
/// Parquet: versions never change once committed, so the copy stays exact until the catalog
/// names another version, when [`TableCache::retain`] drops it.
#[derive(Debug, Default)]
struct TableCache {
    providers: Mutex<HashMap<VersionKey, Arc<dyn TableProvider>>>,
    /// Arrow bytes the in-memory copies may hold in all (0: none are made).
    memory_budget: usize,
    /// Arrow bytes of each version held in memory.
    in_memory: Mutex<HashMap<VersionKey, usize>>,
}

impl TableCache {
    /// A cache that keeps small tables in memory, `budget` Arrow bytes in all.
    fn with_memory_budget(budget: usize) -> Self {
        Self {
            memory_budget: budget,
            ..Self::default()
        }
    }

    /// Whether `bytes` more fit in the memory budget now.
    fn fits_in_memory(&self, bytes: usize) -> bool {
        let used: usize = crate::sync::lock(&self.in_memory).values().sum();
        used.saturating_add(bytes) <= self.memory_budget
    }

    fn get(&self, key: &VersionKey) -> Option<Arc<dyn TableProvider>> {
        let cache = crate::sync::lock(&self.providers);
        cache.get(key).cloned()
    }

    fn put(&self, key: VersionKey, provider: Arc<dyn TableProvider>) {
        let mut cache = crate::sync::lock(&self.providers);
        cache.insert(key, provider);
    }

    /// Forgets every version not in `tables`.
    fn retain(&self, tables: &[TableEntry]) {
        let keep: std::collections::HashSet<VersionKey> = tables.iter().map(version_key).collect();
        crate::sync::lock(&self.providers).retain(|k, _| keep.contains(k));
        crate::sync::lock(&self.in_memory).retain(|k, _| keep.contains(k));
    }
}

/// One database of the catalog: its tables are opened when a query names them.
#[derive(Debug)]
struct LakeSchema {
    tables: BTreeMap<String, TableEntry>,
    runtime: Arc<RuntimeEnv>,
    cache: Arc<TableCache>,
}

#[async_trait::async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(entry) = self.tables.get(name) else {
            return Ok(None);
        };
        let key = version_key(entry);
        if let Some(provider) = self.cache.get(&key) {
            return Ok(Some(provider));
        }
        match open_table(&self.runtime, entry).await {
            Ok(provider) => {
                let provider = self.in_memory(&key, entry, provider).await;
                self.cache.put(key, Arc::clone(&provider));
                Ok(Some(provider))
            }
            Err(e) => {
                let message = format!(
                    "table {}.{} cannot be read: {}",
                    entry.database,
                    entry.name,
                    sluice_planner::clean_message(&e)
                );
                // With the catalog's columns the table still lists and describes itself
                // (information_schema, Flight SQL's table listing); scanning it fails.
                match declared_schema(entry) {
                    Some(schema) => Ok(Some(Arc::new(UnreadableTable {
                        schema: with_partition_keys(schema, entry),
                        message,
                    }))),
                    None => Err(DataFusionError::Plan(message)),
                }
            }
        }
    }

    async fn table_type(&self, name: &str) -> Result<Option<TableType>> {
        Ok(self.tables.contains_key(name).then_some(TableType::Base))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
}

impl LakeSchema {
    /// `provider`'s data as an in-memory table, when the version is small
    /// ([`MEMORY_TABLE_MAX_BYTES`] by the catalog's `sizeKey`) and its batches fit the cache's
    /// budget; else `provider` itself (also when reading it fails: the query then reads the
    /// files and reports the error).
    async fn in_memory(
        &self,
        key: &VersionKey,
        entry: &TableEntry,
        provider: Arc<dyn TableProvider>,
    ) -> Arc<dyn TableProvider> {
        let small = table_bytes(entry).is_some_and(|b| b <= MEMORY_TABLE_MAX_BYTES);
        if !small || self.cache.memory_budget == 0 {
            return provider;
        }
        match read_into_memory(&self.runtime, &provider).await {
            Ok((table, bytes)) if self.cache.fits_in_memory(bytes) => {
                crate::sync::lock(&self.cache.in_memory).insert(key.clone(), bytes);
                tracing::debug!(table = %entry.name, bytes, "table version held in memory");
                table
            }
            Ok(_) => provider,
            Err(e) => {
                tracing::debug!(table = %entry.name, error = %e, "table version not held in memory");
                provider
            }
        }
    }
}

/// Reads every batch of `provider` into an in-memory table (two partitions, so a query over
/// it still uses both cores); returns it with its Arrow size in bytes.
async fn read_into_memory(
    runtime: &Arc<RuntimeEnv>,
    provider: &Arc<dyn TableProvider>,
) -> Result<(Arc<dyn TableProvider>, usize)> {
    let state = SessionStateBuilder::new()
        .with_runtime_env(Arc::clone(runtime))
        .with_default_features()
        .build();
    let plan = provider.scan(&state, None, &[], None).await?;
    let batches = datafusion::physical_plan::collect(plan, state.task_ctx()).await?;
    let bytes = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let mut partitions = vec![Vec::new(), Vec::new()];
    for (i, batch) in batches.into_iter().enumerate() {
        partitions[i % 2].push(batch);
    }
    let memory = datafusion::datasource::MemTable::try_new(provider.schema(), partitions)?;
    let table = InMemoryVersion {
        files: Arc::clone(provider),
        memory,
    };
    Ok((Arc::new(table), bytes))
}

/// A small table version held in memory, with the table over its files: queries in this
/// process read the memory; a plan sent to the cluster reads the files (executors cannot be
/// sent the batches), see [`DescribeLocally`].
#[derive(Debug)]
struct InMemoryVersion {
    files: Arc<dyn TableProvider>,
    memory: datafusion::datasource::MemTable,
}

#[async_trait::async_trait]
impl TableProvider for InMemoryVersion {
    fn schema(&self) -> SchemaRef {
        self.memory.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::logical_expr::Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.memory.scan(state, projection, filters, limit).await
    }
}

/// `plan` with every in-memory table version read from its files instead, for the cluster.
fn from_files(plan: &LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::Transformed;
    plan.clone()
        .transform_up_with_subqueries(|node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node));
            };
            let files = datafusion::datasource::source_as_provider(&scan.source)
                .ok()
                .and_then(|p| {
                    let any: &dyn std::any::Any = p.as_ref();
                    any.downcast_ref::<InMemoryVersion>()
                        .map(|m| Arc::clone(&m.files))
                });
            match files {
                Some(files) => {
                    let mut scan = scan.clone();
                    scan.source = datafusion::datasource::provider_as_source(files);
                    Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                }
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
}

/// A table version whose files hold at most this many bytes (the catalog's `sizeKey`) is read
/// into memory once, for the queries of [`LakeSessions`].
pub const MEMORY_TABLE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Arrow bytes [`LakeSessions`] holds in memory for small table versions in all.
pub const MEMORY_TABLES_BUDGET: usize = 256 * 1024 * 1024;

/// A table of the catalog whose data cannot be read: it has its registered columns, and a
/// query that scans it fails with the reason, naming the table.
#[derive(Debug)]
struct UnreadableTable {
    schema: SchemaRef,
    message: String,
}

impl UnreadableTable {
    fn error(&self) -> DataFusionError {
        DataFusionError::Plan(self.message.clone())
    }

    /// The error of the first unreadable table `plan` scans, if any.
    fn scanned_by(plan: &LogicalPlan) -> Result<()> {
        use datafusion::common::tree_node::TreeNodeRecursion;
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
            {
                let provider: &dyn std::any::Any = provider.as_ref();
                if let Some(unreadable) = provider.downcast_ref::<UnreadableTable>() {
                    return Err(unreadable.error());
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .map(|_| ())
    }
}

#[async_trait::async_trait]
impl TableProvider for UnreadableTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn datafusion::catalog::Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[datafusion::logical_expr::Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Err(self.error())
    }
}

/// `schema` with the entry's partition keys appended (as strings), as a listing reads them.
fn with_partition_keys(schema: SchemaRef, entry: &TableEntry) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(
        entry
            .partition_keys
            .iter()
            .map(|k| Field::new(&k.name, DataType::Utf8, true)),
    );
    Arc::new(Schema::new(fields))
}

/// Queries that scan at most this many bytes (by the catalog's `sizeKey` of each table they
/// read) run in the serving process by default rather than as a cluster job.
pub const DEFAULT_LOCAL_QUERY_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Query sessions over the default catalog's current tables.
///
/// The catalog is listed for every query, so a table a run has just committed is queryable at
/// once; an opened table (its listing and, through the shared runtime, its Parquet metadata)
/// is reused while its version stays the same, and a small version is held in memory
/// ([`MEMORY_TABLE_MAX_BYTES`], [`MEMORY_TABLES_BUDGET`] in all). A query whose tables are small runs in this
/// process, without a cluster job; larger scans run on the cluster.
pub struct LakeSessions {
    engine: Arc<crate::Engine>,
    catalogs: Arc<sluice_catalog::Catalogs>,
    cache: Arc<TableCache>,
    local_max_bytes: u64,
}

impl LakeSessions {
    /// Sessions on `engine` over the default catalog of `catalogs`; queries scanning at most
    /// [`DEFAULT_LOCAL_QUERY_MAX_BYTES`] run locally.
    pub fn new(engine: Arc<crate::Engine>, catalogs: Arc<sluice_catalog::Catalogs>) -> Self {
        Self {
            engine,
            catalogs,
            cache: Arc::new(TableCache::with_memory_budget(MEMORY_TABLES_BUDGET)),
            local_max_bytes: DEFAULT_LOCAL_QUERY_MAX_BYTES,
        }
    }

    /// Queries that scan at most `bytes` run in this process (0: every query that reads a
    /// table runs on the cluster).
    pub fn with_local_query_max_bytes(mut self, bytes: u64) -> Self {
        self.local_max_bytes = bytes;
        self
    }

    /// A session for the query `query_id` over the default catalog's tables as they are
    /// now, running on the cluster (its Ballista jobs are named after `query_id`).
    pub async fn session(&self, query_id: &str) -> Result<SessionContext> {
        // The catalog's error stays the cause (same message as before: `External error: …`).
        let external = |e: sluice_catalog::CatalogError| DataFusionError::External(Box::new(e));
        let catalog = self.catalogs.get(None).await.map_err(external)?;
        let tables = catalog.list_tables().await.map_err(external)?;
        let sizes = tables
            .iter()
            .map(|t| (location_key(&t.location), table_bytes(t)))
            .collect();
        let ctx = route_queries(
            self.engine.query_context(SQL_CATALOG, query_id),
            Router {
                local_max_bytes: self.local_max_bytes,
                sizes,
            },
        );
        self.cache.retain(&tables);
        register_with(&ctx, &tables, &self.cache)?;
        Ok(ctx)
    }

    /// Cancels the cluster jobs of the query `query_id`.
    pub async fn cancel(&self, query_id: &str) {
        tracing::info!(%query_id, "cancelling the query's cluster jobs");
        self.engine.scheduler().cancel_query(query_id).await;
    }
}

/// Where a query runs: in this process when what it scans is small, else on the cluster.
#[derive(Debug, Clone, Default)]
struct Router {
    /// The most bytes a query may scan and still run here.
    local_max_bytes: u64,
    /// Bytes of each table's current version, by its location ([`location_key`]); `None`
    /// when the catalog does not say.
    sizes: HashMap<String, Option<u64>>,
}

impl Router {
    /// Whether `plan` runs in this process: it scans only tables of known size (or none),
    /// [`Self::local_max_bytes`] in all at most.
    fn runs_locally(&self, plan: &LogicalPlan) -> bool {
        use datafusion::common::tree_node::TreeNodeRecursion;
        let mut total: u64 = 0;
        let mut known = true;
        let walked = plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                // A lake table counts its bytes (unknown: too many); other providers (the
                // information schema) hold only metadata.
                let bytes = match datafusion::datasource::source_as_provider(&scan.source) {
                    Ok(provider) => {
                        let provider: &dyn std::any::Any = provider.as_ref();
                        let provider = match provider.downcast_ref::<InMemoryVersion>() {
                            Some(memory) => memory.files.as_ref() as &dyn std::any::Any,
                            None => provider,
                        };
                        match provider.downcast_ref::<ListingTable>() {
                            Some(listing) => listing.table_paths().first().and_then(|url| {
                                self.sizes
                                    .get(&location_key(url.as_str()))
                                    .copied()
                                    .flatten()
                            }),
                            None => Some(0),
                        }
                    }
                    Err(_) => None,
                };
                match bytes {
                    Some(b) => total = total.saturating_add(b),
                    None => known = false,
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
        walked.is_ok() && known && total <= self.local_max_bytes
    }
}

/// A table location as a key: without the trailing `/` a listing URL may or may not keep.
fn location_key(location: &str) -> String {
    location.trim_end_matches('/').to_string()
}

/// Bytes of a table's current version as the catalog records them (`sizeKey`).
fn table_bytes(entry: &TableEntry) -> Option<u64> {
    entry.parameters.get("sizeKey")?.parse().ok()
}

/// `ctx` with `DESCRIBE table` and small queries planned in this process (`DESCRIBE` needs
/// only the table's schema, and the cluster cannot take its plan: it has no wire form), and
/// plans scanning an unreadable table refused with its error before they are sent anywhere.
fn route_queries(ctx: SessionContext, router: Router) -> SessionContext {
    let state = ctx.state();
    let planner = Arc::new(DescribeLocally {
        cluster: Arc::clone(state.query_planner()),
        router,
    });
    SessionContext::new_with_state(
        SessionStateBuilder::new_from_existing(state)
            .with_query_planner(planner)
            .build(),
    )
}

/// Plans `DESCRIBE` and small queries locally and everything else with the cluster's
/// planner, refusing plans that scan an [`UnreadableTable`].
#[derive(Debug)]
struct DescribeLocally {
    cluster: Arc<dyn QueryPlanner + Send + Sync>,
    router: Router,
}

#[async_trait::async_trait]
impl QueryPlanner for DescribeLocally {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if matches!(plan, LogicalPlan::DescribeTable(_)) {
            return DefaultPhysicalPlanner::default()
                .create_physical_plan(plan, session)
                .await;
        }
        UnreadableTable::scanned_by(plan)?;
        if self.router.runs_locally(plan) {
            tracing::debug!("small query: planned in this process");
            return DefaultPhysicalPlanner::default()
                .create_physical_plan(plan, session)
                .await;
        }
        self.cluster
            .create_physical_plan(&from_files(plan)?, session)
            .await
    }
}

/// The data columns of `entry` as an Arrow schema, when every type is one Sluice can read.
fn declared_schema(entry: &TableEntry) -> Option<SchemaRef> {
    if entry.columns.is_empty() {
        return None;
    }
    let fields: Option<Vec<Field>> = entry
        .columns
        .iter()
        .map(|c| {
            sluice_planner::types::hive_arrow_type(&c.hive_type)
                .ok()
                .map(|t| Field::new(&c.name, t, true))
        })
        .collect();
    fields.map(|f| Arc::new(Schema::new(f)))
}

/// Opens a table's current version: checks it has data, and reads it with the catalog's
/// columns (or the files' own schema when the catalog's types are not ones Sluice reads).
async fn open_table(
    runtime: &Arc<RuntimeEnv>,
    entry: &TableEntry,
) -> Result<Arc<dyn TableProvider>> {
    let url = ListingTableUrl::parse(&entry.location)?;
    let partition_cols = entry
        .partition_keys
        .iter()
        .map(|k| (k.name.clone(), DataType::Utf8))
        .collect();
    let (options, extension) = if entry.classification == "csv" {
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
        (ListingOptions::new(Arc::new(format)), ".csv")
    } else {
        // Plain Utf8 strings: BI clients (JDBC, older Arrow) may not know Utf8View.
        let format = ParquetFormat::default().with_force_view_types(false);
        (ListingOptions::new(Arc::new(format)), ".parquet")
    };
    let options = options
        .with_file_extension(extension)
        .with_table_partition_cols(partition_cols);
    check_data(runtime, &url, entry, extension).await?;
    let config = ListingTableConfig::new(url).with_listing_options(options);
    let config = match declared_schema(entry) {
        Some(schema) => config.with_schema(schema),
        None => {
            let state = SessionStateBuilder::new()
                .with_runtime_env(Arc::clone(runtime))
                .with_default_features()
                .build();
            config.infer_schema(&state).await?
        }
    };
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// Fails unless the table's location holds a data file (or is an empty version: only its
/// seal and a record count of 0).
async fn check_data(
    runtime: &RuntimeEnv,
    url: &ListingTableUrl,
    entry: &TableEntry,
    extension: &str,
) -> Result<()> {
    let store = runtime.object_store(url)?;
    if !url.is_collection() {
        store.head(url.prefix()).await?;
        return Ok(());
    }
    let mut listing = store.list(Some(url.prefix()));
    let mut other_files = 0;
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        let name = meta.location.filename().unwrap_or_default();
        if !(name.starts_with('.') || name.starts_with('_')) && name.ends_with(extension) {
            return Ok(());
        }
        other_files += 1;
    }
    let rows = entry.parameters.get("recordCount").map(String::as_str);
    if other_files > 0 && rows == Some("0") {
        return Ok(());
    }
    Err(DataFusionError::Plan(format!(
        "no {} files at {} (the catalog records {} rows): its folder is empty or was deleted",
        extension.trim_start_matches('.'),
        entry.location,
        rows.unwrap_or("?")
    )))
}
