//! The one RocksDB database of a node and the only code that touches it.
//!
//! Architecture invariant: RocksDB keys are never user data (log indexes
//! and fixed names only); every value written here passes through this type,
//! which is where encryption at rest is applied.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

use crate::error::{Error, Result};

/// Column families, each with its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cf {
    /// Raft log entries keyed by big-endian index, so iteration order is log order.
    Logs,
    /// Vote, committed log id, last purged log id.
    Meta,
    /// The latest state-machine snapshot.
    Snapshot,
}

impl Cf {
    const ALL: [Cf; 3] = [Cf::Logs, Cf::Meta, Cf::Snapshot];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Logs => "logs",
            Cf::Meta => "meta",
            Cf::Snapshot => "snapshot",
        }
    }
}

/// One pending change in an atomic batch.
#[derive(Debug)]
pub enum BatchOp {
    Put(Cf, Vec<u8>, Vec<u8>),
    /// Deletes keys in `[from, to)`.
    DeleteRange(Cf, Vec<u8>, Vec<u8>),
}

/// A node's RocksDB database.
pub struct Store {
    db: DB,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .finish()
    }
}

impl Store {
    /// Opens (or creates) the database under `dir`.
    pub fn open(dir: &Path) -> Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Small, bounded memory: the dataset lives in our own memory, RocksDB
        // only holds the log tail and one snapshot.
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        let cfs = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        Ok(Arc::new(Store { db }))
    }

    fn handle(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| Error::Corrupt(format!("column family {} is missing", cf.name())))
    }

    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.handle(cf)?, key)?)
    }

    /// Applies `ops` atomically. With `sync`, returns only after the WAL is
    /// fsynced: nothing is acknowledged before it is durable.
    pub fn write(&self, ops: Vec<BatchOp>, sync: bool) -> Result<()> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                BatchOp::Put(cf, key, value) => batch.put_cf(self.handle(cf)?, key, value),
                BatchOp::DeleteRange(cf, from, to) => {
                    batch.delete_range_cf(self.handle(cf)?, from, to)
                }
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        Ok(self.db.write_opt(batch, &opts)?)
    }

    /// Key-value pairs with `from <= key < to`, in key order, at most `limit`.
    pub fn range(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.handle(cf)?,
            IteratorMode::From(from, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            if &*key >= to || out.len() >= limit {
                break;
            }
            out.push((key.into_vec(), value.into_vec()));
        }
        Ok(out)
    }

    /// The greatest key in `cf` and its value.
    pub fn last(&self, cf: Cf) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut iter = self.db.iterator_cf(self.handle(cf)?, IteratorMode::End);
        match iter.next() {
            Some(item) => {
                let (key, value) = item?;
                Ok(Some((key.into_vec(), value.into_vec())))
            }
            None => Ok(None),
        }
    }

    /// Asks RocksDB to rewrite its files so deleted data is dropped from disk.
    pub fn compact(&self) -> Result<()> {
        for cf in Cf::ALL {
            self.db
                .compact_range_cf(self.handle(cf)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }
}
