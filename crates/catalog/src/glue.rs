//! The AWS Glue Data Catalog, through `aws-sdk-glue`.
//!
//! Tables are written in the shape a Glue crawler gives them (see [`crate::storage_format`]),
//! so Athena and QuickSight read them as they would a crawled table. Partitions are kept in
//! step with the entry: new ones created and moved ones updated before the table itself
//! moves, stale ones deleted after; a failure before the table moves rolls them back.
//!
//! This module holds the client and the table calls; `convert` the pure conversions
//! between our entries and Glue's types (unit-tested without a server), `partitions` the
//! partition calls (batched create, update and delete, paginated reads, rollback).

mod convert;
mod partitions;

use aws_sdk_glue::Client;
use aws_sdk_glue::error::{DisplayErrorContext, SdkError};
use aws_sdk_glue::types::{DatabaseInput, Table};

use crate::{Catalog, CatalogError, TableEntry};
use convert::{entry_from_glue, table_input};
use partitions::PartitionChanges;

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

        let PartitionChanges {
            same_keys,
            created,
            moved,
            stale,
        } = PartitionChanges::between(&previous, &entry);
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
