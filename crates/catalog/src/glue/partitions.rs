//! Partitions in Glue: paginated reads, batched creates, updates and deletes (within
//! Glue's per-call limits), the rollback of a failed commit, and the plan of which
//! partitions a commit creates, moves and deletes.

use std::collections::HashMap;

use aws_sdk_glue::types::{BatchUpdatePartitionRequestEntry, PartitionValueList};

use super::GlueCatalog;
use super::convert::{partition_from_glue, partition_input};
use crate::{CatalogError, PartitionEntry, TableEntry};

/// Glue's limit on partitions per BatchCreatePartition / BatchUpdatePartition call.
const BATCH_WRITE_LIMIT: usize = 100;
/// Glue's limit on partitions per BatchDeletePartition call.
const BATCH_DELETE_LIMIT: usize = 25;

/// What a commit does to the partitions of a table that exists.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct PartitionChanges {
    /// The partition keys are unchanged (else every old partition is stale).
    pub(super) same_keys: bool,
    /// Partitions to create.
    pub(super) created: Vec<PartitionEntry>,
    /// Partitions to update: (as registered, as committed).
    pub(super) moved: Vec<(PartitionEntry, PartitionEntry)>,
    /// Registered partitions the commit no longer has.
    pub(super) stale: Vec<PartitionEntry>,
}

impl PartitionChanges {
    /// The changes from `previous` (as registered) to `entry` (being committed).
    pub(super) fn between(previous: &TableEntry, entry: &TableEntry) -> Self {
        let old_by_values: HashMap<&Vec<String>, &PartitionEntry> =
            previous.partitions.iter().map(|p| (&p.values, p)).collect();
        let same_keys = previous.partition_keys == entry.partition_keys;
        let mut created = Vec::new();
        let mut moved = Vec::new();
        for p in &entry.partitions {
            match old_by_values.get(&p.values) {
                Some(old) if same_keys => moved.push(((*old).clone(), p.clone())),
                _ => created.push(p.clone()),
            }
        }
        let stale: Vec<PartitionEntry> = previous
            .partitions
            .iter()
            .filter(|old| !same_keys || !entry.partitions.iter().any(|p| p.values == old.values))
            .cloned()
            .collect();
        Self {
            same_keys,
            created,
            moved,
            stale,
        }
    }
}

impl GlueCatalog {
    /// Every partition of the table, sorted by values (all pages).
    pub(super) async fn fetch_partitions(
        &self,
        database: &str,
        name: &str,
    ) -> Result<Vec<PartitionEntry>, CatalogError> {
        let target = format!("{database}.{name}");
        let mut pages = self
            .client
            .get_partitions()
            .database_name(database)
            .table_name(name)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("GetPartitions", &target, e))?;
            out.extend(page.partitions().iter().map(partition_from_glue));
        }
        out.sort_by(|a, b| a.values.cmp(&b.values));
        Ok(out)
    }

    /// Creates `new` partitions and updates `moved` ones (each with its old value).
    pub(super) async fn write_partitions(
        &self,
        entry: &TableEntry,
        new: &[PartitionEntry],
        moved: &[(PartitionEntry, PartitionEntry)],
    ) -> Result<(), CatalogError> {
        let target = format!("{}.{}", entry.database, entry.name);
        for chunk in new.chunks(BATCH_WRITE_LIMIT) {
            let inputs = chunk.iter().map(|p| partition_input(entry, p)).collect();
            let out = self
                .client
                .batch_create_partition()
                .database_name(&entry.database)
                .table_name(&entry.name)
                .set_partition_input_list(Some(inputs))
                .send()
                .await
                .map_err(|e| self.err("BatchCreatePartition", &target, e))?;
            if let Some(first) = out.errors().first() {
                return Err(self.partition_err("BatchCreatePartition", &target, first));
            }
        }
        for chunk in moved.chunks(BATCH_WRITE_LIMIT) {
            let mut entries = Vec::new();
            for (_, p) in chunk {
                entries.push(
                    BatchUpdatePartitionRequestEntry::builder()
                        .set_partition_value_list(Some(p.values.clone()))
                        .partition_input(partition_input(entry, p))
                        .build()
                        .map_err(|e| self.err("BatchUpdatePartition", &target, e))?,
                );
            }
            let out = self
                .client
                .batch_update_partition()
                .database_name(&entry.database)
                .table_name(&entry.name)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.err("BatchUpdatePartition", &target, e))?;
            if let Some(first) = out.errors().first() {
                return Err(CatalogError::Glue {
                    operation: "BatchUpdatePartition",
                    target: format!("{target} in {}", self.describe),
                    message: format!(
                        "partition {:?}: {}",
                        first.partition_value_list(),
                        first
                            .error_detail()
                            .and_then(|d| d.error_message())
                            .unwrap_or("failed")
                    ),
                });
            }
        }
        Ok(())
    }

    /// Deletes the `stale` partitions, in batches.
    pub(super) async fn delete_partitions(
        &self,
        database: &str,
        table: &str,
        stale: &[PartitionEntry],
    ) -> Result<(), CatalogError> {
        let target = format!("{database}.{table}");
        for chunk in stale.chunks(BATCH_DELETE_LIMIT) {
            let mut values = Vec::new();
            for p in chunk {
                values.push(
                    PartitionValueList::builder()
                        .set_values(Some(p.values.clone()))
                        .build()
                        .map_err(|e| self.err("BatchDeletePartition", &target, e))?,
                );
            }
            let out = self
                .client
                .batch_delete_partition()
                .database_name(database)
                .table_name(table)
                .set_partitions_to_delete(Some(values))
                .send()
                .await
                .map_err(|e| self.err("BatchDeletePartition", &target, e))?;
            if let Some(first) = out.errors().first() {
                return Err(self.partition_err("BatchDeletePartition", &target, first));
            }
        }
        Ok(())
    }

    /// The first failure a batch call reported for one partition.
    fn partition_err(
        &self,
        operation: &'static str,
        target: &str,
        e: &aws_sdk_glue::types::PartitionError,
    ) -> CatalogError {
        CatalogError::Glue {
            operation,
            target: format!("{target} in {}", self.describe),
            message: format!(
                "partition {:?}: {}",
                e.partition_values(),
                e.error_detail()
                    .and_then(|d| d.error_message())
                    .unwrap_or("failed")
            ),
        }
    }

    /// Puts partitions back as they were before a failed commit (best effort).
    pub(super) async fn roll_back_partitions(
        &self,
        entry: &TableEntry,
        created: &[PartitionEntry],
        moved: &[(PartitionEntry, PartitionEntry)],
    ) {
        if let Err(e) = self
            .delete_partitions(&entry.database, &entry.name, created)
            .await
        {
            tracing::warn!(error = %e, "could not remove partitions of a failed commit");
        }
        let restore: Vec<(PartitionEntry, PartitionEntry)> = moved
            .iter()
            .map(|(old, new)| (new.clone(), old.clone()))
            .collect();
        if let Err(e) = self.write_partitions(entry, &[], &restore).await {
            tracing::warn!(error = %e, "could not restore partitions of a failed commit");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::PartitionChanges;
    use crate::{ColumnEntry, PartitionEntry, TableEntry};

    fn partition(value: &str, run: &str) -> PartitionEntry {
        PartitionEntry {
            values: vec![value.into()],
            location: format!("s3://lake/t/{run}/k={value}/"),
            ..PartitionEntry::default()
        }
    }

    fn table(key: &str, partitions: Vec<PartitionEntry>) -> TableEntry {
        TableEntry {
            database: "db".into(),
            name: "t".into(),
            location: "s3://lake/t/".into(),
            classification: "parquet".into(),
            columns: Vec::new(),
            partition_keys: vec![ColumnEntry {
                name: key.into(),
                hive_type: "string".into(),
            }],
            partitions,
            parameters: BTreeMap::new(),
            run_id: None,
            version: 1,
            updated_at: String::new(),
        }
    }

    #[test]
    fn kept_partitions_move_new_ones_are_created_and_missing_ones_are_stale() {
        let previous = table("k", vec![partition("a", "r1"), partition("b", "r1")]);
        let next = table("k", vec![partition("b", "r2"), partition("c", "r2")]);
        let changes = PartitionChanges::between(&previous, &next);
        assert_eq!(
            changes,
            PartitionChanges {
                same_keys: true,
                created: vec![partition("c", "r2")],
                moved: vec![(partition("b", "r1"), partition("b", "r2"))],
                stale: vec![partition("a", "r1")],
            }
        );
    }

    #[test]
    fn new_partition_keys_replace_every_partition() {
        let previous = table("k", vec![partition("a", "r1")]);
        let next = table("other", vec![partition("a", "r2")]);
        let changes = PartitionChanges::between(&previous, &next);
        assert_eq!(
            changes,
            PartitionChanges {
                same_keys: false,
                created: vec![partition("a", "r2")],
                moved: Vec::new(),
                stale: vec![partition("a", "r1")],
            }
        );
    }
}
