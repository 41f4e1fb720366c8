//! Job runs persisted in an embedded database (redb) under the scheduler's data folder, so a
//! restart finds every run with its state.

use std::path::Path;

use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sluice_proto as pb;

const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");

/// Errors of the run store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("run store: {0}")]
    Db(#[from] redb::Error),
    /// A stored run could not be decoded.
    #[error("run store: run {0} is corrupt: {1}")]
    Decode(String, prost::DecodeError),
}

macro_rules! db_err {
    ($e:expr) => {
        $e.map_err(|e| StoreError::Db(e.into()))
    };
}

/// All runs, keyed by run id, each a protobuf-encoded [`pb::JobRun`].
pub struct RunStore {
    db: Database,
}

impl RunStore {
    /// Opens (or creates) `dir/runs.redb`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(redb::Error::Io(e)))?;
        let db = db_err!(Database::create(dir.join("runs.redb")))?;
        let txn = db_err!(db.begin_write())?;
        db_err!(txn.open_table(RUNS))?;
        db_err!(txn.commit())?;
        Ok(Self { db })
    }

    /// Saves a run, replacing its previous state.
    pub fn put(&self, run: &pb::JobRun) -> Result<(), StoreError> {
        let bytes = run.encode_to_vec();
        let txn = db_err!(self.db.begin_write())?;
        {
            let mut table = db_err!(txn.open_table(RUNS))?;
            db_err!(table.insert(run.id.as_str(), bytes.as_slice()))?;
        }
        db_err!(txn.commit())
    }

    /// Every run, newest first (run ids sort by time).
    pub fn list(&self) -> Result<Vec<pb::JobRun>, StoreError> {
        let txn = db_err!(self.db.begin_read())?;
        let table = db_err!(txn.open_table(RUNS))?;
        let mut out = Vec::new();
        for item in db_err!(table.iter())? {
            let (k, v) = db_err!(item)?;
            let run = pb::JobRun::decode(v.value())
                .map_err(|e| StoreError::Decode(k.value().to_string(), e))?;
            out.push(run);
        }
        out.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(out)
    }
}
