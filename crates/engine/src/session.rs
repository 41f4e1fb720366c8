//! Session settings shared by the client, the scheduler and the executors, and the sessions
//! built from them: the job session's state and the per-query sessions.

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList};
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{SessionConfig, SessionContext};
use sluice_writer::{SluiceLogicalCodec, SluicePhysicalCodec, SluiceQueryPlanner};

use crate::error::{EngineError, start};
use crate::size_estimates::EstimateScanSizes;

/// Bytes a hash join's probe side may read ahead while its build side is built, per
/// partition and join (see [`session_config`]).
pub const HASH_JOIN_BUFFERING_BYTES: usize = 32 * 1024 * 1024;

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
    // A hash join reads nothing from its probe side until one thread has built its hash
    // table (0.35 s for the two million tracks of the x100 benchmark), and the stage's
    // other task slots wait with it. DataFusion's hash join buffering (a BufferExec on the
    // probe side) reads ahead meanwhile, up to this many bytes per partition and join:
    // -10 to -15% wall time at x100 for +70 MiB peak memory. It also starts the probe side
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
/// statistics (so that join selection and Ballista's broadcast joins see them).
fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> =
        vec![Arc::new(EstimateScanSizes)];
    rules.extend(PhysicalOptimizer::new().rules);
    rules
}

/// The state jobs are planned in: `config`, Sluice's object stores, its query planner (the
/// parallel Parquet write) and optimizer rules.
pub(crate) fn job_session_state(config: SessionConfig) -> Result<SessionState, EngineError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(sluice_storage::SluiceObjectStores::new())
        .build_arc()
        .map_err(start("building the runtime"))?;
    Ok(SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_query_planner(Arc::new(SluiceQueryPlanner))
        .with_physical_optimizer_rules(physical_optimizer_rules())
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
