//! Session settings shared by the client, the scheduler and the executors, and the sessions
//! built from them: the job session's state and the per-query sessions.

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList};
use datafusion::common::Result as DfResult;
use datafusion::common::Statistics;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::joins::{HashJoinExec, SortMergeJoinExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};
use datafusion::prelude::{SessionConfig, SessionContext};
pub use sluice_executor::memory::{
    DEFAULT_FRACTION, MemoryLimit, SpillCounter, human_size, parse_memory_limit, parse_size,
    process_memory,
};
use sluice_writer::{SluiceLogicalCodec, SluicePhysicalCodec, SluiceQueryPlanner};

use crate::error::{EngineError, start};
use crate::size_estimates::EstimateScanSizes;

/// Bytes a hash join's probe side may read ahead while its build side is built, per
/// partition and join (see [`session_config`]).
pub const HASH_JOIN_BUFFERING_BYTES: usize = 8 * 1024 * 1024;

/// Rows per Parquet row group the writers flush at (DuckDB's row group size; see
/// [`session_config`]).
pub const PARQUET_ROW_GROUP_ROWS: usize = 122_880;

/// Prefix of the Ballista job names of SQL queries, which job runs do not count as theirs.
pub const QUERY_JOB_PREFIX: &str = "sluice-query-";

/// Whether a Ballista job named `name` is a SQL query's (see [`QUERY_JOB_PREFIX`]).
pub(crate) fn is_query_job(name: &str) -> bool {
    name.starts_with(QUERY_JOB_PREFIX)
}

/// The Ballista job name of the query `query_id`.
pub(crate) fn query_job_name(query_id: &str) -> String {
    format!("{QUERY_JOB_PREFIX}{query_id}")
}

/// Session settings shared by the client, the scheduler and the executors: Ballista's,
/// with hash joins, probe-side buffering and chunk-level Parquet statistics, then any
/// `DATAFUSION_*` / `BALLISTA_*` environment variable applied
/// (`DATAFUSION_EXECUTION_BATCH_SIZE=16384` sets `datafusion.execution.batch_size`).
pub fn session_config(partitions: usize) -> Result<SessionConfig, EngineError> {
    let mut config = SessionConfig::new_with_ballista()
        .with_target_partitions(partitions)
        .with_ballista_standalone_parallelism(partitions)
        // Ballista 55's adaptive planner does not re-run a stage whose executor died after
        // rolling it back (the job hangs); the static planner recovers.
        .with_ballista_adaptive_query_planner(false)
        // Carry Sluice's parallel Parquet write through plan serialization.
        .with_ballista_logical_extension_codec(Arc::new(SluiceLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(SluicePhysicalCodec::default()))
        .with_information_schema(true);
    // Ballista turns hash joins off; its sort-merge joins sort both sides of every join.
    // Hash joins are what DataFusion itself uses, and the static planner supports them.
    config.options_mut().optimizer.prefer_hash_join = true;
    // Parquet statistics per column chunk, not per page: as DuckDB writes them. Page-level
    // statistics (the column index) cost about 9% of the CPU of the x100 benchmark job;
    // DATAFUSION_EXECUTION_PARQUET_STATISTICS_ENABLED=page brings them back.
    config.options_mut().execution.parquet.statistics_enabled = Some("chunk".to_string());
    // Row groups of 122,880 rows, as DuckDB writes them, instead of about a million: the
    // writer holds a row group's encoded pages in memory until it is complete (one per
    // output partition at a time), about 100 MiB per partition at x100 with a million rows.
    // DATAFUSION_EXECUTION_PARQUET_MAX_ROW_GROUP_SIZE sets another size.
    config.options_mut().execution.parquet.max_row_group_size = PARQUET_ROW_GROUP_ROWS;
    // A hash join reads nothing from its probe side until one thread has built its hash
    // table (0.35 s for the two million tracks of the x100 benchmark), and the stage's
    // other task slots wait with it. DataFusion's hash join buffering (a BufferExec on the
    // probe side) reads ahead meanwhile, up to this many bytes per partition and join:
    // -10 to -15% wall time at x100. 8 MiB reads ahead as far as the build needs: against
    // 32 MiB, the same time at x100 in 3 interleaved A/B runs and 110 MiB less peak memory
    // (the buffers fill while the tracks table is built). It also starts the probe side
    // before a dynamic filter from the build side exists, so Parquet probe sides prune
    // less; DATAFUSION_EXECUTION_HASH_JOIN_BUFFERING_CAPACITY=0 turns it off.
    config.options_mut().execution.hash_join_buffering_capacity = HASH_JOIN_BUFFERING_BYTES;
    apply_env_overrides(&mut config, |name| std::env::var(name).ok())?;
    Ok(config)
}

/// Sets every option whose environment variable (the key upper-cased, `.` → `_`) `lookup`
/// finds.
fn apply_env_overrides(
    config: &mut SessionConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(), EngineError> {
    let keys: Vec<String> = config
        .options()
        .entries()
        .into_iter()
        .map(|e| e.key)
        .collect();
    for key in keys {
        let variable = key.to_uppercase().replace('.', "_");
        if let Some(value) = lookup(&variable) {
            config
                .options_mut()
                .set(&key, &value)
                .map_err(|source| EngineError::Setting {
                    variable: variable.clone(),
                    source,
                })?;
            tracing::info!(%key, %value, "setting from {variable}");
        }
    }
    Ok(())
}

/// DataFusion's physical optimizer rules, after Sluice's size estimates for scans without
/// statistics (so that join selection and Ballista's broadcast joins see them), and with a
/// memory limit [`SpillableJoins`] right after join selection.
fn physical_optimizer_rules(
    limit: MemoryLimit,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> =
        vec![Arc::new(EstimateScanSizes)];
    rules.extend(PhysicalOptimizer::new().rules);
    if let MemoryLimit::Bytes(bytes) = limit {
        let at = rules
            .iter()
            .position(|r| r.name() == "join_selection")
            .map_or(1, |i| i + 1);
        rules.insert(at, Arc::new(SpillableJoins::for_limit(bytes)));
    }
    rules
}

/// The share of the memory limit a hash join's build side may be estimated at before the
/// join becomes a sort-merge join (see [`SpillableJoins`]).
pub const HASH_JOIN_BUILD_SHARE: f64 = 0.25;

/// Physical optimizer rule: a hash join whose build side is estimated above
/// [`HASH_JOIN_BUILD_SHARE`] of the memory limit becomes a sort-merge join.
///
/// DataFusion's hash join holds its whole build side (the batches and the hash table) in
/// memory and cannot spill it: past the limit the job fails. A sort-merge join sorts both
/// sides (sorts spill) and then streams them, holding only the rows of one key at a time
/// (and spilling those too), so it finishes under any limit that holds a few batches, at
/// the cost of sorting both sides. Join selection has already put the smaller side on the
/// build side, so the join changes only when even the smaller side is large. The estimate
/// is the scan statistics DataFusion carries through the plan (Parquet footers, Sluice's
/// byte estimates of CSV scans); a side whose size is unknown keeps the hash join. Hash
/// joins that must stay (null-aware anti joins of `NOT IN`, joins without equality keys)
/// are left alone.
#[derive(Debug)]
pub struct SpillableJoins {
    /// Build sides estimated above this many bytes become sort-merge joins.
    pub max_build_bytes: u64,
}

impl SpillableJoins {
    /// The rule for a memory limit of `bytes`.
    pub fn for_limit(bytes: u64) -> Self {
        Self {
            max_build_bytes: (bytes as f64 * HASH_JOIN_BUILD_SHARE) as u64,
        }
    }
}

impl PhysicalOptimizerRule for SpillableJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if join.null_aware || join.on().is_empty() {
                return Ok(Transformed::no(node));
            }
            let build = join.left();
            let stats = StatisticsContext::new().compute(build.as_ref(), &StatisticsArgs::new())?;
            let Some(bytes) = estimated_bytes(&stats, &build.schema()) else {
                return Ok(Transformed::no(node));
            };
            if bytes <= self.max_build_bytes {
                return Ok(Transformed::no(node));
            }
            let merge: Arc<dyn ExecutionPlan> = Arc::new(SortMergeJoinExec::try_new(
                Arc::clone(build),
                Arc::clone(join.right()),
                join.on().to_vec(),
                join.filter().cloned(),
                *join.join_type(),
                vec![SortOptions::default(); join.on().len()],
                join.null_equality(),
            )?);
            tracing::info!(
                "{} join: build side estimated at {}, over {} of the memory limit: \
                 sort-merge join (spills) instead of a hash join",
                join.join_type(),
                human_size(bytes),
                human_size(self.max_build_bytes)
            );
            let Some(projection) = join.projection.as_deref() else {
                return Ok(Transformed::yes(merge));
            };
            let schema = merge.schema();
            let columns: Vec<(Arc<dyn PhysicalExpr>, String)> = projection
                .iter()
                .map(|&i| {
                    let name = schema.field(i).name().clone();
                    (
                        Arc::new(Column::new(&name, i)) as Arc<dyn PhysicalExpr>,
                        name,
                    )
                })
                .collect();
            Ok(Transformed::yes(Arc::new(ProjectionExec::try_new(
                columns, merge,
            )?)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "spillable_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The in-memory size of a plan's output from its statistics: its byte size, else its rows
/// times a width from the schema (fixed-width types at their width, others at 32 bytes).
fn estimated_bytes(stats: &Statistics, schema: &Schema) -> Option<u64> {
    if let Some(bytes) = stats.total_byte_size.get_value() {
        return Some(*bytes as u64);
    }
    let rows = *stats.num_rows.get_value()? as u64;
    let width: u64 = schema
        .fields()
        .iter()
        .map(|f| f.data_type().primitive_width().unwrap_or(32) as u64)
        .sum();
    Some(rows.saturating_mul(width.max(1)))
}

/// Bytes each sort sets aside for merging its spill files, under a memory limit of `limit`
/// bytes shared by `partitions` task slots: DataFusion's default (10 MiB) unless an eighth
/// of a slot's share is less (several sorts run at once in a slot: both sides of a
/// sort-merge join, a shuffle). The reservation cannot spill, and one the pool cannot grant
/// fails the sort at once.
pub fn sort_spill_reservation(limit: u64, partitions: usize, default: usize) -> usize {
    let share = limit / (8 * partitions.max(1) as u64);
    usize::try_from(share).map_or(default, |share| share.min(default))
}

/// `config` fitted to the memory `limit` of `partitions` slots: the sort merge reservation
/// (see [`sort_spill_reservation`]), unless its environment variable sets it.
pub(crate) fn fit_to_memory(config: &mut SessionConfig, limit: MemoryLimit, partitions: usize) {
    let MemoryLimit::Bytes(bytes) = limit else {
        return;
    };
    if std::env::var_os("DATAFUSION_EXECUTION_SORT_SPILL_RESERVATION_BYTES").is_some() {
        return;
    }
    let execution = &mut config.options_mut().execution;
    execution.sort_spill_reservation_bytes =
        sort_spill_reservation(bytes, partitions, execution.sort_spill_reservation_bytes);
}

/// `config` fitted to the memory `limit` of executors with `slots` task slots: a hash join
/// whose build side is estimated under [`HASH_JOIN_BUILD_SHARE`] of the limit divided among
/// the tables built at once builds one hash table from the whole side (DataFusion's
/// `CollectLeft`; in Ballista's stages, a broadcast join), unless
/// `DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD` or
/// `BALLISTA_OPTIMIZER_BROADCAST_JOIN_THRESHOLD_BYTES` sets a threshold.
///
/// In Ballista's stages every task slot builds its own table, so a broadcast gets the share
/// divided by `slots`. A plan run whole in one process (`in_process`: the embedded engine's
/// job runs) shares one table between its partitions and collects up to the whole share;
/// Ballista demotes such a join back to a partitioned one when it plans stages (SQL queries
/// on the embedded executor), since there the slots would each build it.
///
/// DataFusion collects a build side only under 1 MiB (Ballista's session: 128 MiB) and
/// otherwise repartitions both sides by key. When the two sides' sizes are unknown (a
/// join's output, here the albums × artists side of the x1000 benchmark) it also keeps the
/// written order, so the 3.3 GB side became the build side of the 662 MB tracks: 11 GB of
/// memory and twice DuckDB's time. Ballista can promote a partitioned join to a broadcast
/// one, but keeps the join's repartitions, so the large side is still shuffled to disk (the
/// x1000 cluster: 1.6× the embedded time, 4.7 GB of shuffle spills). Above the share,
/// [`SpillableJoins`] plans a sort-merge join instead.
pub(crate) fn collect_build_sides_under_limit(
    mut config: SessionConfig,
    limit: MemoryLimit,
    slots: usize,
    in_process: bool,
) -> SessionConfig {
    let MemoryLimit::Bytes(bytes) = limit else {
        return config;
    };
    let share = |tables: usize| {
        let bytes = bytes as f64 * HASH_JOIN_BUILD_SHARE / tables.max(1) as f64;
        usize::try_from(bytes as u64).unwrap_or(usize::MAX)
    };
    let broadcast = share(slots);
    let collect = if in_process { share(1) } else { broadcast };
    if std::env::var_os("DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD").is_none() {
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.hash_join_single_partition_threshold = if in_process {
            optimizer.hash_join_single_partition_threshold.max(collect)
        } else {
            collect
        };
    }
    if std::env::var_os("BALLISTA_OPTIMIZER_BROADCAST_JOIN_THRESHOLD_BYTES").is_none() {
        config = config.with_ballista_broadcast_join_threshold_bytes(broadcast);
    }
    config
}

/// The state jobs are planned in: `config`, Sluice's object stores, its query planner (the
/// parallel Parquet write) and optimizer rules, and the memory `limit` of this process's
/// DataFusion operators (spill files counted in `spills`).
pub(crate) fn job_session_state(
    config: SessionConfig,
    limit: MemoryLimit,
    slots: usize,
    spills: Arc<SpillCounter>,
) -> Result<SessionState, EngineError> {
    let disk = sluice_executor::memory::counting_disk_manager(None, spills)
        .map_err(start("setting up the spill folder"))?;
    let mut runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(sluice_storage::SluiceObjectStores::new())
        .with_disk_manager_builder(disk);
    if let MemoryLimit::Bytes(bytes) = limit {
        runtime = runtime.with_memory_pool(sluice_executor::memory::bounded_pool(bytes, slots));
    }
    let runtime = runtime.build_arc().map_err(start("building the runtime"))?;
    Ok(SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_query_planner(Arc::new(SluiceQueryPlanner))
        .with_physical_optimizer_rules(physical_optimizer_rules(limit))
        .build())
}

/// A session for one SQL query derived from `job_session`: its settings and cluster, an
/// empty `catalog` (the default catalog, schema `default`) for the caller to fill, and
/// Ballista jobs named after `query_id`.
pub(crate) fn query_session(
    job_session: &SessionContext,
    catalog: &str,
    query_id: &str,
) -> SessionContext {
    let state = job_session.state();
    let mut config = state
        .config()
        .clone()
        .with_ballista_job_name(&query_job_name(query_id));
    config.options_mut().catalog.default_catalog = catalog.to_string();
    config.options_mut().catalog.default_schema = "default".to_string();
    let catalogs = Arc::new(MemoryCatalogProviderList::new());
    catalogs.register_catalog(catalog.to_string(), Arc::new(MemoryCatalogProvider::new()));
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .with_catalog_list(catalogs)
        .with_session_id(uuid::Uuid::now_v7().to_string())
        .build();
    SessionContext::new_with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::datasource::MemTable;

    /// Sizes with SI and IEC units, fractions and bare bytes; zero is no limit; anything else
    /// is refused with the accepted forms.
    #[test]
    fn memory_limits_parse_with_units_or_are_refused() {
        let cases = [
            ("2GiB", 2 << 30),
            ("512MiB", 512 << 20),
            ("512 mib", 512 << 20),
            ("0.5GB", 500_000_000),
            ("64m", 64 << 20),
            ("1.5G", 3 << 29),
            ("10KB", 10_000),
            ("1048576", 1 << 20),
            ("7b", 7),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        assert_eq!(parse_memory_limit("2GiB"), Ok(MemoryLimit::Bytes(2 << 30)));
        assert_eq!(parse_memory_limit("0"), Ok(MemoryLimit::Unbounded));
        for bad in [
            "",
            "lots",
            "GiB",
            "2XB",
            "1.2.3GB",
            "-1GB",
            "99999999999TiB",
        ] {
            let error = parse_size(bad).expect_err(bad);
            assert!(error.contains(bad), "{bad}: {error}");
        }
        assert!(
            parse_size("2 parsecs")
                .expect_err("unknown unit")
                .contains("unknown unit 'parsecs'")
        );
        assert_eq!(MemoryLimit::Bytes(3 << 29).to_string(), "1.5 GiB");
    }

    /// A sort's merge reservation shrinks to an eighth of a slot's share of a small limit,
    /// and stays DataFusion's default under a large one.
    #[test]
    fn sort_reservations_fit_the_memory_limit() {
        let default = 10 << 20;
        assert_eq!(sort_spill_reservation(32 << 20, 2, default), 2 << 20);
        assert_eq!(sort_spill_reservation(8 << 30, 2, default), default);
        let mut config = SessionConfig::new();
        fit_to_memory(&mut config, MemoryLimit::Bytes(16 << 20), 1);
        assert_eq!(
            config.options().execution.sort_spill_reservation_bytes,
            2 << 20
        );
        let mut config = SessionConfig::new();
        fit_to_memory(&mut config, MemoryLimit::Unbounded, 1);
        assert_eq!(
            config.options().execution.sort_spill_reservation_bytes,
            default
        );
    }

    /// The physical plan of a join of two `rows`-row tables on their keys, planned with
    /// `config` (hash joins preferred, 2 partitions) under the memory `limit`.
    async fn join_plan(config: SessionConfig, limit: MemoryLimit, rows: usize) -> String {
        let physical = join_physical_plan(config, limit, rows).await;
        datafusion::physical_plan::displayable(physical.as_ref())
            .indent(false)
            .to_string()
    }

    /// [`join_plan`], not displayed.
    async fn join_physical_plan(
        mut config: SessionConfig,
        limit: MemoryLimit,
        rows: usize,
    ) -> Arc<dyn ExecutionPlan> {
        config = config
            .with_target_partitions(2)
            .with_repartition_joins(true);
        config.options_mut().optimizer.prefer_hash_join = true;
        let state =
            job_session_state(config, limit, 2, Arc::new(SpillCounter::default())).expect("state");
        let ctx = SessionContext::new_with_state(state);
        // Built here, not by SQL: creating them must not run under the limit.
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Utf8, false),
        ]));
        let keys: Int64Array = (0..rows as i64).collect();
        let values: StringArray = (0..rows).map(|i| Some(format!("v{i}"))).collect();
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(keys), Arc::new(values)])
            .expect("batch");
        for t in ["l", "r"] {
            let table =
                MemTable::try_new(schema.clone(), vec![vec![batch.clone()]]).expect("table");
            ctx.register_table(t, Arc::new(table)).expect("register");
        }
        let df = ctx
            .sql("SELECT l.v, r.v FROM l JOIN r ON l.k = r.k")
            .await
            .expect("plan");
        df.create_physical_plan().await.expect("physical plan")
    }

    /// With a limit, a hash join whose build side is estimated over a quarter of it is
    /// planned as a sort-merge join; under it, and without a limit, it stays a hash join.
    #[tokio::test]
    async fn large_build_sides_become_sort_merge_joins_under_a_limit() {
        async fn plan(limit: MemoryLimit, rows: usize) -> String {
            let mut config = SessionConfig::new();
            let optimizer = &mut config.options_mut().optimizer;
            optimizer.hash_join_single_partition_threshold = 0;
            optimizer.hash_join_single_partition_threshold_rows = 0;
            join_plan(config, limit, rows).await
        }
        let small = plan(MemoryLimit::Bytes(1 << 10), 500).await;
        assert!(small.contains("SortMergeJoin"), "{small}");
        let large = plan(MemoryLimit::Bytes(1 << 30), 500).await;
        assert!(large.contains("HashJoinExec"), "{large}");
        let unbounded = plan(MemoryLimit::Unbounded, 500).await;
        assert!(unbounded.contains("HashJoinExec"), "{unbounded}");
    }

    /// In one process, a hash join whose build side is estimated under a quarter of the
    /// memory limit collects it into one table (`CollectLeft`) although it is far above
    /// DataFusion's 1 MiB; over the quarter the join is partitioned (and then sort-merge).
    #[tokio::test]
    async fn in_process_build_sides_under_a_quarter_of_the_limit_are_collected() {
        async fn plan(limit: MemoryLimit, rows: usize) -> String {
            let config = collect_build_sides_under_limit(SessionConfig::new(), limit, 2, true);
            join_plan(config, limit, rows).await
        }
        // 200,000 rows a side: several MiB, over DataFusion's 1 MiB collect threshold.
        let collected = plan(MemoryLimit::Bytes(1 << 30), 200_000).await;
        assert!(collected.contains("mode=CollectLeft"), "{collected}");
        let unbounded = plan(MemoryLimit::Unbounded, 200_000).await;
        assert!(unbounded.contains("mode=Partitioned"), "{unbounded}");
        let tight = plan(MemoryLimit::Bytes(8 << 20), 200_000).await;
        assert!(!tight.contains("mode=CollectLeft"), "{tight}");
    }

    /// In Ballista's stages, a build side estimated under a quarter of the memory limit per
    /// task slot is broadcast (a `CollectLeft` join reading a broadcast stage, the probe side
    /// not shuffled); over the share both sides are shuffled by key, also when the embedded
    /// engine's plan collected it for one shared table.
    #[tokio::test]
    async fn cluster_build_sides_under_a_slots_share_of_the_limit_are_broadcast() {
        use ballista_scheduler::planner::{DefaultDistributedPlanner, DistributedPlanner};
        async fn stages(limit: MemoryLimit, slots: usize, in_process: bool) -> String {
            let config = collect_build_sides_under_limit(
                SessionConfig::new_with_ballista(),
                limit,
                slots,
                in_process,
            );
            let options = config.options().clone();
            // 200,000 rows a side: about 4 MiB.
            let plan = join_physical_plan(config, limit, 200_000).await;
            let stages = DefaultDistributedPlanner::new()
                .plan_query_stages(&"job".to_string().into(), plan, &options)
                .expect("stages");
            stages
                .iter()
                .map(|stage| {
                    datafusion::physical_plan::displayable(stage.as_ref())
                        .indent(false)
                        .to_string()
                })
                .collect()
        }
        // Broadcast: no side is shuffled by key (Ballista's own promotion of a partitioned
        // join would keep the probe side's shuffle).
        let roomy = stages(MemoryLimit::Bytes(1 << 30), 8, false).await;
        assert!(roomy.contains("mode=CollectLeft"), "{roomy}");
        assert!(roomy.contains("broadcast=true"), "{roomy}");
        assert!(!roomy.contains("Hash(["), "{roomy}");
        // 32 MiB: under the sort-merge rule's 8 MiB, over the 1 MiB a slot of eight gets.
        let tight = stages(MemoryLimit::Bytes(32 << 20), 8, false).await;
        assert!(tight.contains("HashJoinExec"), "{tight}");
        assert!(!tight.contains("mode=CollectLeft"), "{tight}");
        assert!(tight.contains("Hash(["), "{tight}");
        // The embedded engine collects it for its own runs, but not in Ballista's stages.
        let embedded = stages(MemoryLimit::Bytes(32 << 20), 8, true).await;
        assert!(embedded.contains("HashJoinExec"), "{embedded}");
        assert!(!embedded.contains("mode=CollectLeft"), "{embedded}");
        assert!(embedded.contains("Hash(["), "{embedded}");
    }

    /// An option's variable (its key upper-cased, `.` → `_`) sets it; a value it cannot take
    /// is an error naming the variable, not ignored.
    #[test]
    fn environment_variables_set_options_or_are_refused_by_name() {
        let mut config = SessionConfig::new();
        apply_env_overrides(&mut config, |name| {
            (name == "DATAFUSION_EXECUTION_BATCH_SIZE").then(|| "1234".to_string())
        })
        .expect("a valid batch size");
        assert_eq!(config.batch_size(), 1234);

        let refused = apply_env_overrides(&mut config, |name| {
            (name == "DATAFUSION_EXECUTION_BATCH_SIZE").then(|| "lots".to_string())
        });
        match refused {
            Err(EngineError::Setting { variable, .. }) => {
                assert_eq!(variable, "DATAFUSION_EXECUTION_BATCH_SIZE")
            }
            other => panic!("expected a refused setting, got {other:?}"),
        }
        assert_eq!(config.batch_size(), 1234);
    }
}
