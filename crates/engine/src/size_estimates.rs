//! Size estimates for scans that have no statistics, so joins can broadcast small sides.
//!
//! DataFusion knows nothing about the size of a CSV or JSON scan (its statistics are
//! `Absent`), so Ballista's planner cannot tell a 10 MB dimension table from a 300 MB fact
//! table and shuffles both sides of every join. [`EstimateScanSizes`] gives such a scan an
//! inexact byte size: the bytes of the files (or file ranges) it reads. Uncompressed text is
//! about as large as the Arrow arrays it decodes to, so that is a fair estimate; compressed
//! files are left unknown. With it, DataFusion picks the smaller side of a join as the build
//! side and Ballista broadcasts sides under `ballista.optimizer.broadcast_join_threshold_bytes`
//! instead of shuffling the large side.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// Physical optimizer rule: an inexact `total_byte_size` (the bytes read) for every
/// uncompressed file scan whose size is unknown. Runs first, so join selection sees it.
#[derive(Debug, Default)]
pub struct EstimateScanSizes;

impl PhysicalOptimizerRule for EstimateScanSizes {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            match with_estimated_size(scan) {
                Some(estimated) => Ok(Transformed::yes(DataSourceExec::from_data_source(
                    estimated,
                ))),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "estimate_scan_sizes"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `scan` with its byte size estimated, or `None` when it has a size or cannot get one.
fn with_estimated_size(scan: &FileScanConfig) -> Option<FileScanConfig> {
    let known = scan.statistics();
    if known.total_byte_size != Precision::Absent || known.num_rows != Precision::Absent {
        return None;
    }
    if scan.file_compression_type != FileCompressionType::UNCOMPRESSED {
        return None;
    }
    let bytes: u64 = scan
        .file_groups
        .iter()
        .flat_map(|group| group.iter())
        .map(|file| match &file.range {
            Some(range) => u64::try_from(range.end - range.start).unwrap_or(0),
            None => file.object_meta.size,
        })
        .sum();
    if bytes == 0 {
        return None;
    }
    let statistics = known.with_total_byte_size(Precision::Inexact(usize::try_from(bytes).ok()?));
    Some(
        FileScanConfigBuilder::from(scan.clone())
            .with_statistics(statistics)
            .build(),
    )
}
