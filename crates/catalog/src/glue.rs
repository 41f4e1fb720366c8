//! The AWS Glue Data Catalog, through `aws-sdk-glue`.
//!
//! Tables are written in the shape a Glue crawler gives them (see [`crate::storage_format`]),
//! so Athena and QuickSight read them as they would a crawled table. Partitions are kept in
//! step with the entry: new ones created and moved ones updated before the table itself
//! moves, stale ones deleted after; a failure before the table moves rolls them back.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_glue::Client;
use aws_sdk_glue::error::{DisplayErrorContext, SdkError};
use aws_sdk_glue::types::{
    BatchUpdatePartitionRequestEntry, Column, DatabaseInput, PartitionInput, PartitionValueList,
    SerDeInfo, StorageDescriptor, Table, TableInput,
};

use crate::{Catalog, CatalogError, ColumnEntry, PartitionEntry, TableEntry, storage_format};

/// Table parameter holding the Sluice run that wrote the current data.
const RUN_ID_PARAMETER: &str = "sluice_run_id";
/// Table parameter holding Sluice's commit counter.
const VERSION_PARAMETER: &str = "sluice_version";
/// Glue's limit on partitions per BatchCreatePartition / BatchUpdatePartition call.
const BATCH_WRITE_LIMIT: usize = 100;
/// Glue's limit on partitions per BatchDeletePartition call.
const BATCH_DELETE_LIMIT: usize = 25;

/// A catalog kept in AWS Glue (or a server speaking its API, such as moto).
pub struct GlueCatalog {
    client: Client,
    /// Region and endpoint, for messages.
    describe: String,
}

impl GlueCatalog {
    /// A Glue catalog configured as every AWS SDK is: region from `AWS_REGION` or the
    /// profile, credentials from the standard chain (environment, profile, web identity,
    /// ECS, instance metadata), endpoint from `AWS_ENDPOINT_URL_GLUE` or `AWS_ENDPOINT_URL`.
    /// The configuration is loaded by `sluice_storage::aws::sdk_config`, as S3's is, so both
    /// take their credentials from the same chain.
    pub async fn from_env() -> Result<Self, CatalogError> {
        let config = sluice_storage::aws::sdk_config().await;
        let Some(region) = config.region().map(|r| r.to_string()) else {
            return Err(CatalogError::Glue {
                operation: "configure",
                target: "glue".into(),
                message: "no AWS region: set AWS_REGION (or a profile's region)".into(),
            });
        };
        let endpoint = config
            .endpoint_url()
            .map(|e| format!(" at {e}"))
            .unwrap_or_default();
        Ok(Self {
            client: Client::new(&config),
            describe: format!("glue ({region}{endpoint})"),
        })
    }

    /// Where this catalog is, for messages: `glue (us-east-1 at http://…)`.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    async fn ensure_database(&self, database: &str) -> Result<(), CatalogError> {
        let input = DatabaseInput::builder()
            .name(database)
            .build()
            .map_err(|e| self.err("CreateDatabase", database, e))?;
        match self
            .client
            .create_database()
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(self.err("CreateDatabase", database, e)),
        }
    }

    async fn fetch_table(&self, database: &str, name: &str) -> Result<Option<Table>, CatalogError> {
        match self
            .client
            .get_table()
            .database_name(database)
            .name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.table),
            Err(SdkError::ServiceError(e)) if e.err().is_entity_not_found_exception() => Ok(None),
            Err(e) => Err(self.err("GetTable", &format!("{database}.{name}"), e)),
        }
    }

    async fn fetch_partitions(
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
            for p in page.partitions() {
                let count = |key: &str| -> Option<u64> {
                    p.parameters()
                        .and_then(|params| params.get(key))
                        .and_then(|v| v.parse().ok())
                };
                out.push(PartitionEntry {
                    values: p.values().to_vec(),
                    location: p
                        .storage_descriptor()
                        .and_then(|sd| sd.location())
                        .map(with_slash)
                        .unwrap_or_default(),
                    rows: count("recordCount"),
                    objects: count("objectCount"),
                    bytes: count("sizeKey"),
                });
            }
        }
        out.sort_by(|a, b| a.values.cmp(&b.values));
        Ok(out)
    }

    async fn entry_of(&self, database: &str, table: Table) -> Result<TableEntry, CatalogError> {
        let partitions = if table.partition_keys().is_empty() {
            Vec::new()
        } else {
            self.fetch_partitions(database, table.name()).await?
        };
        Ok(entry_from_glue(database, &table, partitions))
    }

    fn err(
        &self,
        operation: &'static str,
        target: &str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> CatalogError {
        CatalogError::GlueCall {
            operation,
            target: format!("{target} in {}", self.describe),
            source: Box::new(e),
        }
    }

    /// Creates `new` partitions and updates `moved` ones (each with its old value).
    async fn write_partitions(
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

    async fn delete_partitions(
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
    async fn roll_back_partitions(
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

#[async_trait::async_trait]
impl Catalog for GlueCatalog {
    fn kind(&self) -> &'static str {
        "glue"
    }

    async fn get_table(
        &self,
        database: &str,
        name: &str,
    ) -> Result<Option<TableEntry>, CatalogError> {
        match self.fetch_table(database, name).await? {
            Some(t) => Ok(Some(self.entry_of(database, t).await?)),
            None => Ok(None),
        }
    }

    async fn list_tables(&self) -> Result<Vec<TableEntry>, CatalogError> {
        let mut databases = Vec::new();
        let mut pages = self.client.get_databases().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("GetDatabases", "databases", e))?;
            databases.extend(page.database_list().iter().map(|d| d.name().to_string()));
        }
        let mut out = Vec::new();
        for db in databases {
            let mut pages = self
                .client
                .get_tables()
                .database_name(&db)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| self.err("GetTables", &db, e))?;
                for t in page.table_list() {
                    // Only tables of files Sluice can read (not views or federated tables).
                    if t.storage_descriptor()
                        .and_then(|sd| sd.location())
                        .is_some()
                    {
                        out.push(self.entry_of(&db, t.clone()).await?);
                    }
                }
            }
        }
        out.sort_by(|a, b| (&a.database, &a.name).cmp(&(&b.database, &b.name)));
        Ok(out)
    }

    async fn commit_table(&self, mut entry: TableEntry) -> Result<TableEntry, CatalogError> {
        let target = format!("{}.{}", entry.database, entry.name);
        self.ensure_database(&entry.database).await?;
        let previous = match self.fetch_table(&entry.database, &entry.name).await? {
            Some(t) => Some(self.entry_of(&entry.database, t).await?),
            None => None,
        };
        entry.version = previous.as_ref().map(|p| p.version + 1).unwrap_or(1);
        entry.updated_at = chrono::Utc::now().to_rfc3339();
        let input = table_input(&entry).map_err(|e| self.err("CreateTable", &target, e))?;

        let Some(previous) = previous else {
            self.client
                .create_table()
                .database_name(&entry.database)
                .table_input(input)
                .send()
                .await
                .map_err(|e| self.err("CreateTable", &target, e))?;
            if let Err(e) = self.write_partitions(&entry, &entry.partitions, &[]).await {
                // The table is new: removing it restores the catalog as it was.
                if let Err(undo) = self
                    .client
                    .delete_table()
                    .database_name(&entry.database)
                    .name(&entry.name)
                    .send()
                    .await
                {
                    tracing::warn!(
                        table = %target,
                        error = %DisplayErrorContext(&undo),
                        "cannot remove the new table after its partitions failed"
                    );
                }
                return Err(e);
            }
            return Ok(entry);
        };

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
        // Partition keys cannot change under existing partitions: drop those first (the
        // previous data stays in the lake, so a failure here is repaired by re-running).
        if !same_keys {
            self.delete_partitions(&entry.database, &entry.name, &stale)
                .await?;
        }
        if let Err(e) = self.write_partitions(&entry, &created, &moved).await {
            self.roll_back_partitions(&entry, &created, &moved).await;
            return Err(e);
        }
        if let Err(e) = self
            .client
            .update_table()
            .database_name(&entry.database)
            .table_input(input)
            .send()
            .await
        {
            self.roll_back_partitions(&entry, &created, &moved).await;
            return Err(self.err("UpdateTable", &target, e));
        }
        if same_keys
            && let Err(e) = self
                .delete_partitions(&entry.database, &entry.name, &stale)
                .await
        {
            // The table has moved; leaving a stale partition is better than failing a
            // commit that is already visible.
            tracing::warn!(table = %target, error = %e, "could not delete stale partitions");
        }
        Ok(entry)
    }
}

fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    }
}

fn glue_columns(columns: &[ColumnEntry]) -> Vec<Column> {
    columns
        .iter()
        .filter_map(|c| {
            Column::builder()
                .name(&c.name)
                .r#type(&c.hive_type)
                .build()
                .ok()
        })
        .collect()
}

/// The table's parameters as Glue keeps them (crawler parameters plus Sluice's own).
fn glue_parameters(entry: &TableEntry) -> HashMap<String, String> {
    let mut p: HashMap<String, String> = entry.parameters.clone().into_iter().collect();
    p.insert(VERSION_PARAMETER.into(), entry.version.to_string());
    if let Some(run) = &entry.run_id {
        p.insert(RUN_ID_PARAMETER.into(), run.clone());
    }
    p
}

fn storage_descriptor(entry: &TableEntry, location: &str) -> StorageDescriptor {
    let format = storage_format(&entry.classification, &entry.parameters);
    StorageDescriptor::builder()
        .set_columns(Some(glue_columns(&entry.columns)))
        .location(location)
        .input_format(format.input_format)
        .output_format(format.output_format)
        .compressed(false)
        .number_of_buckets(-1)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(format.serde)
                .set_parameters(Some(format.serde_parameters.into_iter().collect()))
                .build(),
        )
        .set_bucket_columns(Some(Vec::new()))
        .set_sort_columns(Some(Vec::new()))
        .set_parameters(Some(entry.parameters.clone().into_iter().collect()))
        .stored_as_sub_directories(false)
        .build()
}

fn table_input(entry: &TableEntry) -> Result<TableInput, aws_sdk_glue::error::BuildError> {
    TableInput::builder()
        .name(&entry.name)
        .table_type("EXTERNAL_TABLE")
        .set_parameters(Some(glue_parameters(entry)))
        .storage_descriptor(storage_descriptor(entry, &entry.location))
        .set_partition_keys(Some(glue_columns(&entry.partition_keys)))
        .retention(0)
        .build()
}

fn partition_input(entry: &TableEntry, p: &PartitionEntry) -> PartitionInput {
    // The partition's own counts, not the table's totals.
    let parameters = crate::partition_parameters(&entry.parameters, p);
    let mut sd_entry = entry.clone();
    sd_entry.parameters = parameters.clone();
    PartitionInput::builder()
        .set_values(Some(p.values.clone()))
        .storage_descriptor(storage_descriptor(&sd_entry, &p.location))
        .set_parameters(Some(parameters.into_iter().collect()))
        .build()
}

fn entry_from_glue(database: &str, table: &Table, partitions: Vec<PartitionEntry>) -> TableEntry {
    let columns = |cols: &[Column]| -> Vec<ColumnEntry> {
        cols.iter()
            .map(|c| ColumnEntry {
                name: c.name().to_string(),
                hive_type: c.r#type().unwrap_or("string").to_string(),
            })
            .collect()
    };
    let sd = table.storage_descriptor();
    let mut parameters: BTreeMap<String, String> = table
        .parameters()
        .map(|p| p.clone().into_iter().collect())
        .unwrap_or_default();
    let run_id = parameters.remove(RUN_ID_PARAMETER);
    let version = parameters
        .remove(VERSION_PARAMETER)
        .and_then(|v| v.parse().ok())
        .or_else(|| table.version_id().and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    let classification = parameters
        .get("classification")
        .cloned()
        .unwrap_or_else(|| {
            let serde = sd
                .and_then(|sd| sd.serde_info())
                .and_then(|s| s.serialization_library())
                .unwrap_or("");
            if serde.contains("Parquet") {
                "parquet".into()
            } else {
                "csv".into()
            }
        });
    TableEntry {
        database: database.to_string(),
        name: table.name().to_string(),
        location: sd
            .and_then(|sd| sd.location())
            .map(with_slash)
            .unwrap_or_default(),
        classification,
        columns: sd.map(|sd| columns(sd.columns())).unwrap_or_default(),
        partition_keys: columns(table.partition_keys()),
        partitions,
        parameters,
        run_id,
        version,
        updated_at: table
            .update_time()
            .or(table.create_time())
            .map(|t| t.to_string())
            .unwrap_or_default(),
    }
}
