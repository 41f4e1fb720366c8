//! Grouping: which files make which table (the prefix itself, one table per folder below
//! it, or loose files grouped by shared columns, as a Glue crawler does), and which folder
//! levels are partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use object_store::ObjectStore;
use sluice_catalog::ColumnEntry;
use url::Url;

use crate::CrawlError;
use crate::listing::{DataFile, read_schemas};

/// The tables under `prefix_url`: each table's name, its location and its files (whose
/// `parts` then start below the location). `table` names the table when there is one.
pub(crate) async fn group_tables(
    store: &Arc<dyn ObjectStore>,
    prefix_url: &Url,
    files: Vec<DataFile>,
    table: Option<&str>,
) -> Result<BTreeMap<String, (Url, Vec<DataFile>)>, CrawlError> {
    // One table at the prefix, or one per folder below it.
    let single = files
        .iter()
        .any(|f| f.parts.len() == 1 || f.parts[0].contains('='));
    let mut groups: BTreeMap<String, (Url, Vec<DataFile>)> = BTreeMap::new();
    if single && files.iter().all(|f| f.parts.len() == 1) {
        // Loose files: one table unless their columns differ, as a crawler groups them.
        let loose = group_loose_files(store, prefix_url, files).await?;
        let one_table = loose.len() == 1;
        for (name, group) in loose {
            // Tables that share a folder are located at their file, as a crawler does.
            let url = match group.as_slice() {
                [only] if !one_table => prefix_url
                    .join(&only.parts[0])
                    .map_err(|e| CrawlError::Invalid(format!("{prefix_url}: {e}")))?,
                _ => prefix_url.clone(),
            };
            groups.insert(name, (url, group));
        }
        if one_table {
            let only = std::mem::take(&mut groups);
            let name = match table {
                Some(t) => t.to_string(),
                None => table_name(last_segment(prefix_url)),
            };
            for (_, g) in only {
                groups.insert(name.clone(), g);
            }
        }
    } else if single {
        let name = match table {
            Some(t) => t.to_string(),
            None => table_name(last_segment(prefix_url)),
        };
        groups.insert(name, (prefix_url.clone(), files));
    } else {
        for mut f in files {
            let folder = f.parts.remove(0);
            let url = prefix_url
                .join(&format!("{folder}/"))
                .map_err(|e| CrawlError::Invalid(format!("{prefix_url}{folder}: {e}")))?;
            groups
                .entry(table_name(&folder))
                .or_insert_with(|| (url, Vec::new()))
                .1
                .push(f);
        }
    }
    if let Some(t) = table {
        if groups.len() > 1 {
            let names: Vec<&str> = groups.keys().map(String::as_str).collect();
            return Err(CrawlError::Invalid(format!(
                "{prefix_url} holds {} tables ({}); --table names one table: point the URL at one of them",
                groups.len(),
                names.join(", ")
            )));
        }
        let only = std::mem::take(&mut groups);
        for (_, g) in only {
            groups.insert(t.to_string(), g);
        }
    }
    Ok(groups)
}

/// Share of columns two files must have in common to be one table (as a Glue crawler's
/// default grouping).
const SAME_TABLE_OVERLAP: f64 = 0.7;

/// Groups loose files (no folders) into tables: a file joins the first group whose columns
/// overlap its own by at least [`SAME_TABLE_OVERLAP`]; other files start a table named
/// after the file.
async fn group_loose_files(
    store: &Arc<dyn ObjectStore>,
    prefix: &Url,
    files: Vec<DataFile>,
) -> Result<BTreeMap<String, Vec<DataFile>>, CrawlError> {
    let schemas =
        read_schemas(store, &files, &|f| format!("{prefix}{}", f.parts.join("/"))).await?;
    let mut groups: Vec<(String, BTreeSet<String>, Vec<DataFile>)> = Vec::new();
    for (file, schema) in files.into_iter().zip(schemas) {
        let names: BTreeSet<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
        let similar = groups.iter_mut().find(|(_, cols, _)| {
            let common = cols.intersection(&names).count() as f64;
            let all = cols.union(&names).count().max(1) as f64;
            common / all >= SAME_TABLE_OVERLAP
        });
        match similar {
            Some((_, cols, members)) => {
                cols.extend(names);
                members.push(file);
            }
            None => {
                let stem = file.parts[0]
                    .rsplit_once('.')
                    .map(|(s, _)| s)
                    .unwrap_or(&file.parts[0]);
                groups.push((table_name(stem), names, vec![file]));
            }
        }
    }
    Ok(groups
        .into_iter()
        .map(|(name, _, files)| (name, files))
        .collect())
}

/// Partition keys for `levels` folder levels: `key` where every folder of a level is
/// `key=value` with one key, else `partition_<i>` as a crawler names them.
pub(crate) fn partition_keys(files: &[DataFile], levels: usize) -> Vec<ColumnEntry> {
    (0..levels)
        .map(|i| {
            let keys: BTreeSet<Option<&str>> = files
                .iter()
                .map(|f| f.parts[i].split_once('=').map(|(k, _)| k))
                .collect();
            let name = match keys.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(k)] => table_name(k),
                _ => format!("partition_{i}"),
            };
            ColumnEntry {
                name,
                hive_type: "string".into(),
            }
        })
        .collect()
}

fn last_segment(url: &Url) -> &str {
    url.path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .or(url.host_str())
        .unwrap_or("table")
}

/// A folder name as an Athena table or column name: lower case, other characters as `_`.
fn table_name(folder: &str) -> String {
    folder
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
