//! Parallel Parquet writes for Ballista.
//!
//! DataFusion's `DataSinkExec` needs a single input partition, so Ballista funnels a
//! `write_parquet` through one task. [`ParallelParquetWrite`] (logical) and
//! [`ParallelParquetWriteExec`] (physical) instead write every output partition from its own
//! task, on whichever executor runs it: each task writes one Parquet file under the run's
//! folder (one per `key=value` folder it meets, for Hive-partitioned targets) and returns a
//! row `(file, rows, bytes)` per file. The caller commits the run from those rows
//! once every task has finished (files from failed or retried task attempts are not in them).
//!
//! [`SluiceLogicalCodec`] and [`SluicePhysicalCodec`] carry the nodes through Ballista's plan
//! serialization (and delegate everything else to Ballista's codecs); [`SluiceQueryPlanner`]
//! plans the logical node on the scheduler.

mod codec;
mod dictionary;
mod exec;
mod node;
mod options;
mod planner;

pub use codec::{SluiceLogicalCodec, SluicePhysicalCodec};
pub use exec::{HIVE_DEFAULT_PARTITION, ParallelParquetWriteExec};
pub use node::ParallelParquetWrite;
pub use options::{WriteOptions, written_schema};
pub use planner::SluiceQueryPlanner;
