//! Schema change policy: how a table's registered columns follow new data, as a Glue
//! crawler's `SchemaChangePolicy.UpdateBehavior` does.

use crate::{CatalogError, ColumnEntry};

/// What happens when new data's columns differ from the registered table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaChangePolicy {
    /// The table takes the new columns (added ones appear, vanished ones go, types widen):
    /// `UPDATE_IN_DATABASE`.
    #[default]
    Update,
    /// The registered columns stay as they are; the differences are logged: `LOG`.
    Log,
}

/// The columns to register and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Data columns to register.
    pub columns: Vec<ColumnEntry>,
    /// Partition keys to register.
    pub partition_keys: Vec<ColumnEntry>,
    /// One line per difference between the registered table and the new data.
    pub changes: Vec<String>,
}

/// Registered columns of a table, if it exists.
pub struct Registered<'a> {
    /// Data columns.
    pub columns: &'a [ColumnEntry],
    /// Partition keys.
    pub partition_keys: &'a [ColumnEntry],
}

/// Decides the columns of `table` after new data with `columns` and `partition_keys`
/// arrives, under `policy`. A type that changes incompatibly (neither type widens to the
/// other) is an error under either policy, as are changed partition keys under `Log`.
pub fn reconcile(
    table: &str,
    registered: Option<Registered<'_>>,
    columns: &[ColumnEntry],
    partition_keys: &[ColumnEntry],
    policy: SchemaChangePolicy,
) -> Result<Reconciled, CatalogError> {
    let Some(old) = registered else {
        return Ok(Reconciled {
            columns: columns.to_vec(),
            partition_keys: partition_keys.to_vec(),
            changes: Vec::new(),
        });
    };
    let mut changes = Vec::new();
    let mut merged_new = Vec::new();
    for new in columns {
        match old.columns.iter().find(|c| c.name == new.name) {
            None => {
                changes.push(format!("column {} {} is new", new.name, new.hive_type));
                merged_new.push(new.clone());
            }
            Some(o) if o.hive_type == new.hive_type => merged_new.push(new.clone()),
            Some(o) => {
                let wider = wider_type(&o.hive_type, &new.hive_type).ok_or_else(|| {
                    CatalogError::IncompatibleType {
                        table: table.to_string(),
                        column: new.name.clone(),
                        registered: o.hive_type.clone(),
                        found: new.hive_type.clone(),
                    }
                })?;
                changes.push(format!(
                    "column {} changes type from {} to {}",
                    new.name, o.hive_type, new.hive_type
                ));
                merged_new.push(ColumnEntry {
                    name: new.name.clone(),
                    hive_type: wider.to_string(),
                });
            }
        }
    }
    for o in old.columns {
        if !columns.iter().any(|c| c.name == o.name) {
            changes.push(format!(
                "column {} {} is no longer in the data",
                o.name, o.hive_type
            ));
        }
    }
    let keys_changed = old.partition_keys != partition_keys;
    if keys_changed {
        let names = |keys: &[ColumnEntry]| {
            let n: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
            format!("({})", n.join(", "))
        };
        let change = format!(
            "partition keys change from {} to {}",
            names(old.partition_keys),
            names(partition_keys)
        );
        if policy == SchemaChangePolicy::Log {
            return Err(CatalogError::Schema(format!(
                "table {table}: {change}; schema_change 'log' cannot keep the old layout (use 'update')"
            )));
        }
        changes.push(change);
    }
    Ok(match policy {
        SchemaChangePolicy::Update => Reconciled {
            columns: merged_new,
            partition_keys: partition_keys.to_vec(),
            changes,
        },
        SchemaChangePolicy::Log => Reconciled {
            columns: old.columns.to_vec(),
            partition_keys: old.partition_keys.to_vec(),
            changes,
        },
    })
}

/// The wider of two Athena types when one widens to the other (`int` → `bigint`,
/// `float` → `double`, `decimal(p,s)` → `decimal(q,s)` with q ≥ p), else `None`.
pub fn wider_type<'a>(a: &'a str, b: &'a str) -> Option<&'a str> {
    if a == b {
        return Some(a);
    }
    const INTEGERS: [&str; 4] = ["tinyint", "smallint", "int", "bigint"];
    const FLOATS: [&str; 2] = ["float", "double"];
    for chain in [&INTEGERS[..], &FLOATS[..]] {
        if let (Some(i), Some(j)) = (
            chain.iter().position(|t| *t == a),
            chain.iter().position(|t| *t == b),
        ) {
            return Some(if i >= j { a } else { b });
        }
    }
    match (decimal(a), decimal(b)) {
        (Some((p, s)), Some((q, t))) if s == t => Some(if p >= q { a } else { b }),
        _ => None,
    }
}

fn decimal(t: &str) -> Option<(u32, u32)> {
    let inner = t.strip_prefix("decimal(")?.strip_suffix(')')?;
    let (p, s) = inner.split_once(',')?;
    Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(spec: &[(&str, &str)]) -> Vec<ColumnEntry> {
        spec.iter()
            .map(|(n, t)| ColumnEntry {
                name: n.to_string(),
                hive_type: t.to_string(),
            })
            .collect()
    }

    #[test]
    fn widening_is_one_way_compatible() {
        assert_eq!(wider_type("int", "bigint"), Some("bigint"));
        assert_eq!(wider_type("bigint", "tinyint"), Some("bigint"));
        assert_eq!(wider_type("float", "double"), Some("double"));
        assert_eq!(
            wider_type("decimal(10,2)", "decimal(12,2)"),
            Some("decimal(12,2)")
        );
        assert_eq!(wider_type("decimal(10,2)", "decimal(10,3)"), None);
        assert_eq!(wider_type("bigint", "string"), None);
        assert_eq!(wider_type("int", "double"), None);
    }

    #[test]
    fn update_follows_the_data_and_log_keeps_the_table() {
        let old = cols(&[("id", "int"), ("gone", "string")]);
        let new = cols(&[("id", "bigint"), ("added", "double")]);
        let registered = || {
            Some(Registered {
                columns: &old,
                partition_keys: &[],
            })
        };
        let up = reconcile("t", registered(), &new, &[], SchemaChangePolicy::Update).unwrap();
        assert_eq!(up.columns, cols(&[("id", "bigint"), ("added", "double")]));
        assert_eq!(up.changes.len(), 3, "{:?}", up.changes);
        let log = reconcile("t", registered(), &new, &[], SchemaChangePolicy::Log).unwrap();
        assert_eq!(log.columns, old);
        assert_eq!(log.changes.len(), 3);
    }

    #[test]
    fn incompatible_types_and_kept_layouts_are_errors() {
        let old = cols(&[("id", "bigint")]);
        let new = cols(&[("id", "string")]);
        let reg = Registered {
            columns: &old,
            partition_keys: &[],
        };
        let e = reconcile("db.t", Some(reg), &new, &[], SchemaChangePolicy::Update).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("db.t") && msg.contains("bigint") && msg.contains("string"),
            "{msg}"
        );
        let keys = cols(&[("year", "string")]);
        let reg = Registered {
            columns: &old,
            partition_keys: &[],
        };
        let e = reconcile("t", Some(reg), &old, &keys, SchemaChangePolicy::Log).unwrap_err();
        assert!(e.to_string().contains("partition keys"), "{e}");
    }
}
