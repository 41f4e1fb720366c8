//! Pure conversions between Sluice's table entries and the Glue API's types: the
//! `TableInput` (table parameters, storage descriptor, partition keys), each partition's
//! `PartitionInput`, and a `Table` or `Partition` read back. Tables get the shape a Glue
//! crawler gives them, so Athena reads them as crawled tables.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_glue::types::{
    Column, Partition, PartitionInput, SerDeInfo, StorageDescriptor, Table, TableInput,
};

use crate::{ColumnEntry, PartitionEntry, TableEntry, storage_format};

/// Table parameter holding the Sluice run that wrote the current data.
const RUN_ID_PARAMETER: &str = "sluice_run_id";
/// Table parameter holding Sluice's commit counter.
const VERSION_PARAMETER: &str = "sluice_version";

/// `s` ending in `/`, as a folder location.
fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    }
}

/// Columns as Glue declares them (name and Hive type).
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

/// How the files at `location` are read: columns, formats, SerDe and parameters.
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

/// The table as Glue's `CreateTable`/`UpdateTable` take it.
pub(super) fn table_input(
    entry: &TableEntry,
) -> Result<TableInput, aws_sdk_glue::error::BuildError> {
    TableInput::builder()
        .name(&entry.name)
        .table_type("EXTERNAL_TABLE")
        .set_parameters(Some(glue_parameters(entry)))
        .storage_descriptor(storage_descriptor(entry, &entry.location))
        .set_partition_keys(Some(glue_columns(&entry.partition_keys)))
        .retention(0)
        .build()
}

/// One partition as Glue's batch calls take it, with its own counts.
pub(super) fn partition_input(entry: &TableEntry, p: &PartitionEntry) -> PartitionInput {
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

/// The entry of a table read back from Glue, with its partitions.
pub(super) fn entry_from_glue(
    database: &str,
    table: &Table,
    partitions: Vec<PartitionEntry>,
) -> TableEntry {
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

/// A partition read back from Glue: its values, folder and its own counts.
pub(super) fn partition_from_glue(p: &Partition) -> PartitionEntry {
    let count = |key: &str| -> Option<u64> {
        p.parameters()
            .and_then(|params| params.get(key))
            .and_then(|v| v.parse().ok())
    };
    PartitionEntry {
        values: p.values().to_vec(),
        location: p
            .storage_descriptor()
            .and_then(|sd| sd.location())
            .map(with_slash)
            .unwrap_or_default(),
        rows: count("recordCount"),
        objects: count("objectCount"),
        bytes: count("sizeKey"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use aws_sdk_glue::types::{Partition, StorageDescriptor, Table, TableInput};

    use super::{entry_from_glue, partition_from_glue, partition_input, table_input};
    use crate::{ColumnEntry, PartitionEntry, TableEntry, crawler_parameters};

    fn column(name: &str, hive_type: &str) -> ColumnEntry {
        ColumnEntry {
            name: name.into(),
            hive_type: hive_type.into(),
        }
    }

    /// A table as a job target registers it: Parquet, partitioned by year, crawler counts.
    fn parquet_entry() -> TableEntry {
        TableEntry {
            database: "spotify".into(),
            name: "tracks".into(),
            location: "s3://lake/spotify/tracks/run=7/".into(),
            classification: "parquet".into(),
            columns: vec![column("id", "string"), column("popularity", "bigint")],
            partition_keys: vec![column("year", "string")],
            partitions: vec![PartitionEntry {
                values: vec!["2023".into()],
                location: "s3://lake/spotify/tracks/run=7/year=2023/".into(),
                rows: Some(10),
                objects: Some(2),
                bytes: Some(400),
            }],
            parameters: crawler_parameters("parquet", 30, 5, 1200),
            run_id: Some("run-7".into()),
            version: 3,
            updated_at: String::new(),
        }
    }

    fn params(map: Option<&HashMap<String, String>>) -> BTreeMap<&str, &str> {
        map.into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn columns_of(cols: &[aws_sdk_glue::types::Column]) -> Vec<(&str, &str)> {
        cols.iter()
            .map(|c| (c.name(), c.r#type().unwrap_or("")))
            .collect()
    }

    fn descriptor(input: &TableInput) -> &StorageDescriptor {
        input.storage_descriptor().expect("a storage descriptor")
    }

    #[test]
    fn a_parquet_table_has_the_shape_a_crawler_gives_it() {
        let input = table_input(&parquet_entry()).expect("a table input");
        assert_eq!(input.name(), "tracks");
        assert_eq!(input.table_type(), Some("EXTERNAL_TABLE"));
        let p = params(input.parameters());
        assert_eq!(p["classification"], "parquet");
        assert_eq!(p["UPDATED_BY_CRAWLER"], "sluice");
        assert_eq!(p["CrawlerSchemaSerializerVersion"], "1.0");
        assert_eq!(p["CrawlerSchemaDeserializerVersion"], "1.0");
        assert_eq!(p["compressionType"], "none");
        assert_eq!(p["typeOfData"], "file");
        assert_eq!(p["recordCount"], "30");
        assert_eq!(p["objectCount"], "5");
        assert_eq!(p["sizeKey"], "1200");
        assert_eq!(p["averageRecordSize"], "40");
        assert_eq!(p["sluice_version"], "3");
        assert_eq!(p["sluice_run_id"], "run-7");
        assert_eq!(
            columns_of(input.partition_keys()),
            [("year", "string")],
            "partition keys"
        );

        let sd = descriptor(&input);
        assert_eq!(sd.location(), Some("s3://lake/spotify/tracks/run=7/"));
        assert_eq!(
            columns_of(sd.columns()),
            [("id", "string"), ("popularity", "bigint")]
        );
        assert_eq!(
            sd.input_format(),
            Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
        );
        assert_eq!(
            sd.output_format(),
            Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
        );
        let serde = sd.serde_info().expect("serde info");
        assert_eq!(
            serde.serialization_library(),
            Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
        );
        assert_eq!(
            params(serde.parameters()),
            BTreeMap::from([("serialization.format", "1")])
        );
        assert_eq!(sd.number_of_buckets(), -1);
        assert!(!sd.compressed());
        // The descriptor carries the crawler parameters, not Sluice's own.
        let sd_params = params(sd.parameters());
        assert_eq!(sd_params["classification"], "parquet");
        assert!(!sd_params.contains_key("sluice_version"));
    }

    #[test]
    fn csv_tables_pick_the_serde_a_crawler_picks() {
        let mut entry = parquet_entry();
        entry.classification = "csv".into();
        entry.parameters = crawler_parameters("csv", 3, 1, 90);
        entry.parameters.insert("delimiter".into(), ",".into());
        entry
            .parameters
            .insert("areColumnsQuoted".into(), "false".into());

        let input = table_input(&entry).expect("a table input");
        let sd = descriptor(&input);
        assert_eq!(
            sd.input_format(),
            Some("org.apache.hadoop.mapred.TextInputFormat")
        );
        assert_eq!(
            sd.output_format(),
            Some("org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat")
        );
        let serde = sd.serde_info().expect("serde info");
        assert_eq!(
            serde.serialization_library(),
            Some("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe")
        );
        assert_eq!(
            params(serde.parameters()),
            BTreeMap::from([("field.delim", ",")])
        );
        assert_eq!(params(input.parameters())["classification"], "csv");

        entry
            .parameters
            .insert("areColumnsQuoted".into(), "true".into());
        let input = table_input(&entry).expect("a table input");
        let serde = descriptor(&input).serde_info().expect("serde info");
        assert_eq!(
            serde.serialization_library(),
            Some("org.apache.hadoop.hive.serde2.OpenCSVSerde")
        );
        assert_eq!(
            params(serde.parameters()),
            BTreeMap::from([("separatorChar", ","), ("quoteChar", "\"")])
        );
    }

    #[test]
    fn a_partition_carries_its_own_counts_and_folder() {
        let entry = parquet_entry();
        let input = partition_input(&entry, &entry.partitions[0]);
        assert_eq!(input.values(), ["2023"]);
        let p = params(input.parameters());
        assert_eq!(p["recordCount"], "10");
        assert_eq!(p["objectCount"], "2");
        assert_eq!(p["sizeKey"], "400");
        assert_eq!(p["averageRecordSize"], "40");
        assert_eq!(p["classification"], "parquet");
        assert_eq!(p["UPDATED_BY_CRAWLER"], "sluice");
        let sd = input.storage_descriptor().expect("a storage descriptor");
        assert_eq!(
            sd.location(),
            Some("s3://lake/spotify/tracks/run=7/year=2023/")
        );
        assert_eq!(params(sd.parameters())["recordCount"], "10");
        assert_eq!(
            sd.serde_info().and_then(|s| s.serialization_library()),
            Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
        );
    }

    #[test]
    fn a_partition_without_counts_does_not_take_the_tables() {
        let entry = parquet_entry();
        let bare = PartitionEntry {
            values: vec!["2024".into()],
            location: "s3://lake/spotify/tracks/run=7/year=2024/".into(),
            ..PartitionEntry::default()
        };
        let input = partition_input(&entry, &bare);
        let keys: Vec<&str> = params(input.parameters()).into_keys().collect();
        for count in ["recordCount", "objectCount", "sizeKey", "averageRecordSize"] {
            assert!(!keys.contains(&count), "{count} in {keys:?}");
        }
    }

    #[test]
    fn a_table_read_back_is_the_entry_that_was_written() {
        let entry = parquet_entry();
        let input = table_input(&entry).expect("a table input");
        let table = Table::builder()
            .name(input.name())
            .set_parameters(input.parameters().cloned())
            .set_storage_descriptor(input.storage_descriptor().cloned())
            .set_partition_keys(Some(input.partition_keys().to_vec()))
            .build()
            .expect("a table");
        let back = entry_from_glue("spotify", &table, entry.partitions.clone());
        assert_eq!(back, entry);
    }

    #[test]
    fn a_table_without_sluice_parameters_is_classified_by_its_serde() {
        let sd = StorageDescriptor::builder()
            .location("s3://other/t")
            .serde_info(
                aws_sdk_glue::types::SerDeInfo::builder()
                    .serialization_library(
                        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                    )
                    .build(),
            )
            .build();
        let table = Table::builder()
            .name("t")
            .storage_descriptor(sd)
            .version_id("4")
            .build()
            .expect("a table");
        let entry = entry_from_glue("db", &table, Vec::new());
        assert_eq!(entry.classification, "parquet");
        assert_eq!(entry.location, "s3://other/t/");
        assert_eq!(entry.version, 4);
        assert_eq!(entry.run_id, None);
    }

    #[test]
    fn a_partition_read_back_has_its_counts_and_a_folder_location() {
        let partition = Partition::builder()
            .values("2023")
            .storage_descriptor(
                StorageDescriptor::builder()
                    .location("s3://lake/t/year=2023")
                    .build(),
            )
            .parameters("recordCount", "10")
            .parameters("objectCount", "2")
            .parameters("sizeKey", "not a number")
            .build();
        assert_eq!(
            partition_from_glue(&partition),
            PartitionEntry {
                values: vec!["2023".into()],
                location: "s3://lake/t/year=2023/".into(),
                rows: Some(10),
                objects: Some(2),
                bytes: None,
            }
        );
    }
}
