//! Table building: one crawled table from its files: one format and one folder depth,
//! the files' schemas read and merged, partition keys and per-partition counts, and the
//! crawler's table parameters.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use sluice_catalog::{ColumnEntry, PartitionEntry, TableEntry};
use url::Url;

use crate::grouping::partition_keys;
use crate::infer::{self, FileSchema};
use crate::listing::{DataFile, read_schemas};
use crate::{CrawlError, CrawledTable};

/// The table `name` of `database` at `url`, from `files`.
pub(crate) async fn build_table(
    store: &Arc<dyn ObjectStore>,
    database: &str,
    name: &str,
    url: &Url,
    files: Vec<DataFile>,
) -> Result<CrawledTable, CrawlError> {
    let file_url = |f: &DataFile| {
        if url.path().ends_with('/') {
            format!("{url}{}", f.parts.join("/"))
        } else {
            url.to_string()
        }
    };
    // One format per table.
    let first = &files[0];
    if let Some(other) = files.iter().find(|f| f.format != first.format) {
        return Err(CrawlError::MixedFormats {
            table: name.to_string(),
            first: file_url(first),
            first_format: first.format.name(),
            other: file_url(other),
            other_format: other.format.name(),
        });
    }
    let format = first.format;
    // Equal depth, so folder levels are partition levels.
    let depth = first.parts.len();
    if let Some(other) = files.iter().find(|f| f.parts.len() != depth) {
        return Err(CrawlError::UnevenDepth {
            table: name.to_string(),
            first: file_url(first),
            other: file_url(other),
        });
    }
    let partition_keys = partition_keys(&files, depth - 1);

    let schemas = read_schemas(store, &files, &file_url).await?;

    let columns = merge_schemas(&files, &schemas, &file_url, format)?;
    if let Some(clash) = columns
        .iter()
        .find(|c| partition_keys.iter().any(|k| k.name == c.name))
    {
        return Err(CrawlError::Invalid(format!(
            "table {name}: '{}' is both a column in the files and a partition folder key",
            clash.name
        )));
    }

    // Each partition's own rows, files and bytes, as a crawler counts them per partition.
    let mut partitions: BTreeMap<Vec<String>, (u64, u64, u64)> = BTreeMap::new();
    for (f, schema) in files.iter().zip(&schemas) {
        let folders = &f.parts[..depth - 1];
        if !folders.is_empty() {
            let counts = partitions.entry(folders.to_vec()).or_default();
            counts.0 += schema.rows;
            counts.1 += 1;
            counts.2 += f.size;
        }
    }
    let partitions = partitions
        .into_iter()
        .map(|(folders, (rows, objects, bytes))| PartitionEntry {
            values: folders.iter().map(|d| partition_value(d)).collect(),
            location: format!("{url}{}/", folders.join("/")),
            rows: Some(rows),
            objects: Some(objects),
            bytes: Some(bytes),
        })
        .collect();

    let records: u64 = schemas.iter().map(|s| s.rows).sum();
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let mut parameters =
        sluice_catalog::crawler_parameters(format.name(), records, files.len() as u64, bytes);
    if format == infer::Format::Csv {
        let quoted = schemas.iter().any(|s| s.quoted);
        parameters.insert("delimiter".into(), ",".into());
        parameters.insert("skip.header.line.count".into(), "1".into());
        parameters.insert("columnsOrdered".into(), "true".into());
        parameters.insert("areColumnsQuoted".into(), quoted.to_string());
    }
    Ok(CrawledTable {
        entry: TableEntry {
            database: database.to_string(),
            name: name.to_string(),
            location: url.to_string(),
            classification: format.name().to_string(),
            columns,
            partition_keys,
            partitions,
            parameters,
            run_id: None,
            version: 0,
            updated_at: String::new(),
        },
        files: files.len(),
    })
}

/// The value a partition folder `key=value` (or a bare folder) stands for. Folder names are
/// escaped by the object store's path rules (`a/b` is `a%2Fb`, `100%` is `100%25`), as
/// Sluice's and Spark's writers leave them; the catalog holds the values themselves.
fn partition_value(folder: &str) -> String {
    let value = folder.split_once('=').map_or(folder, |(_, v)| v);
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

/// Merges per-file schemas in file order: new columns are appended, types widen where one
/// widens to the other (and integer with floating point in CSV, as a crawler does).
fn merge_schemas(
    files: &[DataFile],
    schemas: &[FileSchema],
    file_url: &dyn Fn(&DataFile) -> String,
    format: infer::Format,
) -> Result<Vec<ColumnEntry>, CrawlError> {
    let mut merged: Vec<(ColumnEntry, usize)> = Vec::new();
    for (i, schema) in schemas.iter().enumerate() {
        for col in &schema.columns {
            let Some((existing, first)) = merged.iter_mut().find(|(c, _)| c.name == col.name)
            else {
                merged.push((col.clone(), i));
                continue;
            };
            if existing.hive_type == col.hive_type {
                continue;
            }
            let wider = sluice_catalog::schema::wider_type(&existing.hive_type, &col.hive_type)
                .map(str::to_string)
                .or_else(|| {
                    let pair = [existing.hive_type.as_str(), col.hive_type.as_str()];
                    let numeric = pair.iter().all(|t| *t == "bigint" || *t == "double");
                    (format == infer::Format::Csv && numeric).then(|| "double".to_string())
                });
            match wider {
                Some(t) => existing.hive_type = t,
                None => {
                    return Err(CrawlError::IncompatibleColumn {
                        column: col.name.clone(),
                        first_file: file_url(&files[*first]),
                        first_type: existing.hive_type.clone(),
                        other_file: file_url(&files[i]),
                        other_type: col.hive_type.clone(),
                    });
                }
            }
        }
    }
    Ok(merged.into_iter().map(|(c, _)| c).collect())
}
