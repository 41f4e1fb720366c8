//! Query results kept in memory per (SQL, parameters, version of every table read): the
//! SPICE analogue, except a result is never stale. A new version of a table misses every
//! entry over the old one, and [`ResultCache::invalidate_table`] drops exactly those.
//! Bounded by bytes; the least recently used entries go first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::RecordBatch;
use datafusion::common::ScalarValue;

use crate::backend::{QueryResult, TableVersion};

/// The cache's key: the statement and its parameters (the versions are checked apart).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    sql: String,
    /// Each parameter's type and value.
    params: Vec<String>,
}

struct Entry {
    versions: Vec<TableVersion>,
    result: Arc<QueryResult>,
    bytes: usize,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    bytes: usize,
    clock: u64,
    hits: u64,
    misses: u64,
}

/// Hits and misses so far, and the current size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that were not.
    pub misses: u64,
    /// Entries held.
    pub entries: usize,
    /// Bytes of Arrow data held.
    pub bytes: usize,
}

/// Results by (SQL, parameters, table versions), at most `capacity` bytes.
pub struct ResultCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl ResultCache {
    /// A cache holding at most `capacity` bytes of results (one larger result is not kept).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data stays consistent between statements, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(sql: &str, params: &[ScalarValue]) -> Key {
        Key {
            sql: sql.to_string(),
            params: params
                .iter()
                .map(|p| format!("{}:{p}", p.data_type()))
                .collect(),
        }
    }

    /// The result of `sql` with `params` if it was computed over exactly `versions`.
    pub fn get(
        &self,
        sql: &str,
        params: &[ScalarValue],
        versions: &[TableVersion],
    ) -> Option<Arc<QueryResult>> {
        let key = Self::key(sql, params);
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let found = match inner.entries.get_mut(&key) {
            Some(e) if e.versions == versions => {
                e.last_used = now;
                Some(Arc::clone(&e.result))
            }
            _ => None,
        };
        if found.is_some() {
            inner.hits += 1;
        } else {
            inner.misses += 1;
        }
        found
    }

    /// Keeps a result computed over `versions`, evicting the least recently used entries
    /// beyond the capacity, and every entry over an older version of one of those tables.
    pub fn put(
        &self,
        sql: &str,
        params: &[ScalarValue],
        versions: Vec<TableVersion>,
        result: Arc<QueryResult>,
    ) {
        let bytes: usize = result
            .batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum::<usize>()
            + sql.len();
        if bytes > self.capacity {
            return;
        }
        let mut inner = self.lock();
        for v in &versions {
            remove_where(&mut inner, |e| {
                e.versions.iter().any(|o| {
                    o.database == v.database && o.table == v.table && o.version != v.version
                })
            });
        }
        inner.clock += 1;
        let entry = Entry {
            versions,
            result,
            bytes,
            last_used: inner.clock,
        };
        if let Some(old) = inner.entries.insert(Self::key(sql, params), entry) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.bytes > self.capacity {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= e.bytes;
            }
        }
    }

    /// Drops every entry that read `database.table` (call it when a run commits a new
    /// version); returns how many.
    pub fn invalidate_table(&self, database: &str, table: &str) -> usize {
        let mut inner = self.lock();
        remove_where(&mut inner, |e| {
            e.versions
                .iter()
                .any(|v| v.database == database && v.table == table)
        })
    }

    /// Counters and size.
    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            hits: inner.hits,
            misses: inner.misses,
            entries: inner.entries.len(),
            bytes: inner.bytes,
        }
    }
}

fn remove_where(inner: &mut Inner, doomed: impl Fn(&Entry) -> bool) -> usize {
    let keys: Vec<Key> = inner
        .entries
        .iter()
        .filter(|(_, e)| doomed(e))
        .map(|(k, _)| k.clone())
        .collect();
    for k in &keys {
        if let Some(e) = inner.entries.remove(k) {
            inner.bytes -= e.bytes;
        }
    }
    keys.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    fn batch(n: i64) -> Arc<QueryResult> {
        let b = RecordBatch::try_from_iter([(
            "a",
            Arc::new(Int64Array::from(vec![n; 100])) as arrow::array::ArrayRef,
        )]);
        let batches: Vec<RecordBatch> = b.into_iter().collect();
        let schema = batches[0].schema();
        Arc::new(QueryResult { schema, batches })
    }

    fn v(table: &str, version: u64) -> TableVersion {
        TableVersion {
            database: "db".into(),
            table: table.into(),
            version,
            run_id: None,
        }
    }

    #[test]
    fn new_versions_miss_and_invalidate_only_their_table() {
        let cache = ResultCache::new(1 << 20);
        let p = [ScalarValue::Int64(Some(1))];
        cache.put("q1", &p, vec![v("a", 1)], batch(1));
        cache.put("q2", &[], vec![v("b", 1)], batch(2));
        assert!(cache.get("q1", &p, &[v("a", 1)]).is_some());
        // Other parameters are another entry.
        assert!(
            cache
                .get("q1", &[ScalarValue::Int64(Some(2))], &[v("a", 1)])
                .is_none()
        );
        // A new version of a misses.
        assert!(cache.get("q1", &p, &[v("a", 2)]).is_none());
        assert_eq!(cache.invalidate_table("db", "a"), 1);
        assert!(cache.get("q1", &p, &[v("a", 1)]).is_none());
        assert!(cache.get("q2", &[], &[v("b", 1)]).is_some());
        // Putting a result over a newer version drops entries over the older one.
        cache.put("q3", &[], vec![v("b", 1)], batch(3));
        cache.put("q4", &[], vec![v("b", 2)], batch(4));
        assert!(cache.get("q2", &[], &[v("b", 1)]).is_none());
        assert!(cache.get("q3", &[], &[v("b", 1)]).is_none());
        assert!(cache.get("q4", &[], &[v("b", 2)]).is_some());
    }

    #[test]
    fn size_is_bounded_least_recently_used_first() {
        let one = batch(1)
            .batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum::<usize>()
            + 2;
        let cache = ResultCache::new(one * 2 + 1);
        cache.put("q1", &[], vec![v("a", 1)], batch(1));
        cache.put("q2", &[], vec![v("a", 1)], batch(2));
        assert!(cache.get("q1", &[], &[v("a", 1)]).is_some());
        cache.put("q3", &[], vec![v("a", 1)], batch(3));
        assert!(
            cache.get("q2", &[], &[v("a", 1)]).is_none(),
            "q2 was least recently used"
        );
        assert!(cache.get("q1", &[], &[v("a", 1)]).is_some());
        assert!(cache.get("q3", &[], &[v("a", 1)]).is_some());
        assert!(cache.stats().bytes <= one * 2 + 1);
    }
}
