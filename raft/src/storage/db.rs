//! The one RocksDB database of a node and the only code that touches it.
//!
//! Architecture invariant: RocksDB keys are never user data (log indexes
//! and fixed names only); every value written here passes through this type,
//! which is where encryption at rest is applied.
//!
//! # Encryption at rest
//!
//! A database is created either encrypted or plaintext, and says which in
//! its `header` column family (the `format` record, itself plaintext: it is
//! not user data). In encrypted mode every value of every column family is a
//! sealed record ([`super::crypto`]) bound to its column family and key, and
//! the header also holds a sealed `sentinel` record that proves, before
//! anything else is read, that the configured key is the right one.
//!
//! [`Store::open`] refuses, without changing a byte on disk, a database whose
//! mode does not match the configuration, a wrong key, a record sealed with a
//! key the keyring does not hold, and any record that fails authentication:
//! it first opens the database read-only (with RocksDB's info log silenced)
//! and opens every record. Only then does it open the database for writing,
//! and if some records are sealed with an older key it re-seals them with the
//! current one ([`Store::reseal`]) and compacts, so the old key's ciphertexts
//! leave the disk.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use rocksdb::{
    BottommostLevelCompaction, ColumnFamilyDescriptor, CompactOptions, Direction, FlushOptions,
    IteratorMode, LogLevel, Options, WriteBatch, WriteOptions, DB,
};

use super::crypto::{self, KeyId, Keyring};
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

/// The column family that describes the database itself.
const HEADER_CF: &str = "header";
/// Plaintext: which mode the database was created in.
const FORMAT_KEY: &[u8] = b"format";
/// Sealed (encrypted mode only): a known plaintext that proves the key.
const SENTINEL_KEY: &[u8] = b"sentinel";
const FORMAT_PLAIN: &[u8] = b"raftlimit-storage/1 plaintext";
const FORMAT_SEALED: &[u8] = b"raftlimit-storage/1 aes-256-gcm";
const SENTINEL_PLAINTEXT: &[u8] = b"raftlimit encryption check record";

/// Every column family of the database, user ones first.
const ALL_CF_NAMES: [&str; 4] = ["logs", "meta", "snapshot", HEADER_CF];

/// The counter of records sealed, labelled with the key id.
pub const SEALED_RECORDS: &str = "raftlimit_storage_sealed_records_total";

/// Records to re-seal per atomic batch.
const RESEAL_BATCH: usize = 256;

/// One pending change in an atomic batch.
#[derive(Debug)]
pub enum BatchOp {
    Put(Cf, Vec<u8>, Vec<u8>),
    /// Deletes keys in `[from, to)`.
    DeleteRange(Cf, Vec<u8>, Vec<u8>),
}

/// How many stored records are sealed with each key id (empty in plaintext
/// mode). Counts live records, the `header` sentinel included.
pub type KeyUsage = BTreeMap<KeyId, u64>;

/// A node's RocksDB database.
pub struct Store {
    db: DB,
    /// `Some` in encrypted mode.
    keyring: Option<Keyring>,
    /// Writes share it; [`Store::reseal`] takes it exclusively for each of its
    /// read-check-write batches, so no write interleaves with one.
    gate: RwLock<()>,
    /// Records sealed by this process with the current key (a random-nonce
    /// AES-GCM key should seal fewer than 2^32 records: rotate well before).
    sealed: metrics::Counter,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .field("keyring", &self.keyring)
            .finish()
    }
}

/// What the read-only inspection of an existing database found.
struct Inspection {
    /// `None`: no header (a database from before the header existed, or one
    /// whose creation stopped before the header was written).
    mode: Option<Mode>,
    /// Whether any user column family holds a record.
    has_records: bool,
    usage: KeyUsage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Sealed,
}

impl Mode {
    fn describe(self) -> &'static str {
        match self {
            Mode::Plain => "without encryption",
            Mode::Sealed => "with AES-256-GCM encryption",
        }
    }
}

fn db_options() -> Options {
    let mut opts = Options::default();
    // Small, bounded memory: the dataset lives in our own memory, RocksDB
    // only holds the log tail (snapshots are files of their own).
    opts.set_max_background_jobs(2);
    opts.set_keep_log_file_num(4);
    // A recycled WAL file is overwritten in place, so a synced write does
    // not also have to sync the file's growing size.
    opts.set_recycle_log_file_num(4);
    opts
}

/// Column family options: small memtables. The log's entries are deleted
/// soon after they are written (after the next snapshot); RocksDB's default
/// 64 MiB memtable per column family would hold that much of them in
/// memory, counted in every node's resident size.
fn cf_options(name: &str) -> Options {
    let mut opts = Options::default();
    let memtable = if name == Cf::Logs.name() {
        8 << 20
    } else {
        1 << 20
    };
    opts.set_write_buffer_size(memtable);
    opts.set_max_write_buffer_number(2);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(&rocksdb::Cache::new_lru_cache(1 << 20));
    opts.set_block_based_table_factory(&table);
    opts
}

fn cf_handle<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| Error::Corrupt(format!("column family {name} is missing")))
}

/// Whether `dir` holds RocksDB data files although it has no `CURRENT` file:
/// creating a database there would start a node empty next to its old data.
fn has_orphan_files(dir: &Path) -> Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("MANIFEST-") || name.ends_with(".sst") || name.ends_with(".log") {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Store {
    /// Opens (or creates) the database under `dir`: encrypted with `keyring`,
    /// or plaintext with `None`. An existing database must have been created
    /// in the same mode, and every record must open with the keyring;
    /// otherwise this fails without writing anything.
    pub fn open(dir: &Path, keyring: Option<Keyring>) -> Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let existing = dir.join("CURRENT").exists();
        if !existing && has_orphan_files(dir)? {
            return Err(Error::Corrupt(format!(
                "{} holds RocksDB files but no CURRENT file; refusing to create a new database over them",
                dir.display()
            )));
        }
        let inspection = if existing {
            Some(Self::inspect_read_only(dir, keyring.as_ref())?)
        } else {
            None
        };

        let mut opts = db_options();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = ALL_CF_NAMES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name)));
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        let sealed = match &keyring {
            Some(ring) => {
                metrics::counter!(SEALED_RECORDS, "key_id" => ring.current_key_id().to_string())
            }
            None => metrics::Counter::noop(),
        };
        let store = Store {
            db,
            keyring,
            gate: RwLock::new(()),
            sealed,
        };

        match inspection {
            Some(Inspection {
                mode: Some(_),
                usage,
                ..
            }) => {
                if let Some(ring) = &store.keyring {
                    let current = ring.current_key_id();
                    if usage.keys().any(|&id| id != current) {
                        tracing::info!(
                            ?usage,
                            current,
                            "re-sealing records sealed with older keys"
                        );
                        let resealed = store.reseal()?;
                        store.compact()?;
                        tracing::info!(resealed, usage = ?store.key_usage()?, "re-sealed and compacted");
                    }
                }
            }
            // A database from before the header: plaintext (inspection has
            // refused it if a keyring is configured).
            Some(Inspection {
                mode: None,
                has_records: true,
                ..
            }) => store.write_header(Mode::Plain)?,
            // New, or created but never written to.
            _ => {
                let mode = if store.keyring.is_some() {
                    Mode::Sealed
                } else {
                    Mode::Plain
                };
                store.write_header(mode)?;
                tracing::info!(path = %dir.display(), "created storage {}", mode.describe());
            }
        }
        if let Some(ring) = &store.keyring {
            tracing::info!(
                current_key = ring.current_key_id(),
                usage = ?store.key_usage()?,
                "storage is encrypted at rest (AES-256-GCM)"
            );
        }
        Ok(Arc::new(store))
    }

    /// Checks an existing database without modifying it: its mode against
    /// the configuration, the key against the sentinel, and every record.
    fn inspect_read_only(dir: &Path, keyring: Option<&Keyring>) -> Result<Inspection> {
        let mut opts = db_options();
        // A read-only open still creates an info log, rotating the old one:
        // send it nowhere, so a refused open leaves every file as it was.
        opts.set_info_logger(rocksdb::InfoLogger::new_callback_logger(
            LogLevel::Fatal,
            |_, _| {},
        ));
        let present = DB::list_cf(&opts, dir)?;
        let names: Vec<&str> = ALL_CF_NAMES
            .iter()
            .copied()
            .filter(|name| present.iter().any(|p| p == name))
            .collect();
        let db = DB::open_cf_for_read_only(&opts, dir, &names, false)?;

        let header = db.cf_handle(HEADER_CF);
        let format = match header {
            Some(h) => db.get_cf(h, FORMAT_KEY)?,
            None => None,
        };
        let mode = match format.as_deref() {
            None => None,
            Some(FORMAT_PLAIN) => Some(Mode::Plain),
            Some(FORMAT_SEALED) => Some(Mode::Sealed),
            Some(other) => {
                return Err(Error::Corrupt(format!(
                    "unknown storage format {:?} in header/format",
                    String::from_utf8_lossy(other)
                )))
            }
        };
        let mut has_records = false;
        for cf in Cf::ALL {
            if let Some(handle) = db.cf_handle(cf.name()) {
                if db
                    .iterator_cf(handle, IteratorMode::Start)
                    .next()
                    .transpose()?
                    .is_some()
                {
                    has_records = true;
                }
            }
        }
        let configured = if keyring.is_some() {
            Mode::Sealed
        } else {
            Mode::Plain
        };
        let found = match mode {
            Some(mode) => mode,
            // Created but never written to: it takes the configured mode.
            None if !has_records => {
                return Ok(Inspection {
                    mode,
                    has_records,
                    usage: KeyUsage::new(),
                })
            }
            None => Mode::Plain,
        };
        if found != configured {
            return Err(Error::EncryptionMode(match found {
                Mode::Sealed => format!(
                    "{} was created with encryption at rest, but no encryption keys are configured; \
                     configure [encryption] with its key file (refusing to open it, nothing was changed)",
                    dir.display()
                ),
                Mode::Plain => format!(
                    "{} was created without encryption, but encryption keys are configured; \
                     a node never switches modes in place: disable [encryption] for this data directory, \
                     or rebuild it from the cluster (docs/security.md) (refusing to open it, nothing was changed)",
                    dir.display()
                ),
            }));
        }
        let mut usage = KeyUsage::new();
        if let Some(ring) = keyring {
            let h =
                header.ok_or_else(|| Error::Corrupt("column family header is missing".into()))?;
            let sentinel = db.get_cf(h, SENTINEL_KEY)?.ok_or_else(|| {
                Error::Corrupt("the encryption check record header/sentinel is missing".into())
            })?;
            match ring.open(HEADER_CF, SENTINEL_KEY, &sentinel) {
                Ok(plain) if plain == SENTINEL_PLAINTEXT => {}
                Ok(_) => {
                    return Err(Error::Corrupt(
                        "the encryption check record holds unexpected content".into(),
                    ))
                }
                Err(Error::Unauthentic { key_id, .. }) => return Err(Error::WrongKey { key_id }),
                Err(err) => return Err(err),
            }
            for name in &names {
                let handle = cf_handle(&db, name)?;
                for item in db.iterator_cf(handle, IteratorMode::Start) {
                    let (key, value) = item?;
                    if *name == HEADER_CF && &*key == FORMAT_KEY {
                        continue;
                    }
                    // Opening every record verifies it now rather than at some
                    // later read; the plaintext is dropped straight away.
                    ring.open(name, &key, &value)?;
                    let id = crypto::record_key_id(name, &key, &value)?;
                    *usage.entry(id).or_default() += 1;
                }
            }
        }
        Ok(Inspection {
            mode: Some(found),
            has_records,
            usage,
        })
    }

    fn write_header(&self, mode: Mode) -> Result<()> {
        let header = cf_handle(&self.db, HEADER_CF)?;
        let mut batch = WriteBatch::default();
        match mode {
            Mode::Plain => batch.put_cf(header, FORMAT_KEY, FORMAT_PLAIN),
            Mode::Sealed => {
                let ring = self
                    .keyring
                    .as_ref()
                    .ok_or_else(|| Error::Keys("encrypted mode without a keyring".into()))?;
                batch.put_cf(header, FORMAT_KEY, FORMAT_SEALED);
                batch.put_cf(
                    header,
                    SENTINEL_KEY,
                    ring.seal(HEADER_CF, SENTINEL_KEY, SENTINEL_PLAINTEXT)?,
                );
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        Ok(self.db.write_opt(batch, &opts)?)
    }

    /// Whether values are encrypted at rest.
    /// The keyring records are sealed with, if encryption at rest is on.
    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_ref()
    }

    pub fn is_encrypted(&self) -> bool {
        self.keyring.is_some()
    }

    fn handle(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily> {
        cf_handle(&self.db, cf.name())
    }

    /// A stored value as the caller wrote it.
    fn unseal(&self, cf: Cf, key: &[u8], value: Vec<u8>) -> Result<Vec<u8>> {
        match &self.keyring {
            Some(ring) => ring.open(cf.name(), key, &value),
            None => Ok(value),
        }
    }

    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db
            .get_cf(self.handle(cf)?, key)?
            .map(|value| self.unseal(cf, key, value))
            .transpose()
    }

    /// Applies `ops` atomically. With `sync`, returns only after the WAL is
    /// fsynced: nothing is acknowledged before it is durable.
    pub fn write(&self, ops: Vec<BatchOp>, sync: bool) -> Result<()> {
        let mut batch = WriteBatch::default();
        let mut sealed = 0;
        for op in ops {
            match op {
                BatchOp::Put(cf, key, value) => {
                    let value = match &self.keyring {
                        Some(ring) => {
                            sealed += 1;
                            ring.seal(cf.name(), &key, &value)?
                        }
                        None => value,
                    };
                    batch.put_cf(self.handle(cf)?, key, value)
                }
                BatchOp::DeleteRange(cf, from, to) => {
                    batch.delete_range_cf(self.handle(cf)?, from, to)
                }
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.sealed.increment(sealed);
        let _shared = self.gate.read();
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
            let value = self.unseal(cf, &key, value.into_vec())?;
            out.push((key.into_vec(), value));
        }
        Ok(out)
    }

    /// The greatest key in `cf` and its value.
    pub fn last(&self, cf: Cf) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut iter = self.db.iterator_cf(self.handle(cf)?, IteratorMode::End);
        match iter.next() {
            Some(item) => {
                let (key, value) = item?;
                let value = self.unseal(cf, &key, value.into_vec())?;
                Ok(Some((key.into_vec(), value)))
            }
            None => Ok(None),
        }
    }

    /// How many live records each key id seals (empty in plaintext mode).
    /// Reads only the record headers.
    pub fn key_usage(&self) -> Result<KeyUsage> {
        let mut usage = KeyUsage::new();
        if self.keyring.is_none() {
            return Ok(usage);
        }
        for name in ALL_CF_NAMES {
            let handle = cf_handle(&self.db, name)?;
            for item in self.db.iterator_cf(handle, IteratorMode::Start) {
                let (key, value) = item?;
                if name == HEADER_CF && &*key == FORMAT_KEY {
                    continue;
                }
                *usage
                    .entry(crypto::record_key_id(name, &key, &value)?)
                    .or_default() += 1;
            }
        }
        Ok(usage)
    }

    /// Re-seals with the current key every record sealed with another one,
    /// in atomic batches; returns how many it re-sealed. Safe while the node
    /// runs: each batch re-reads its records under an exclusive gate that
    /// ordinary writes share, so it never resurrects a deleted record nor
    /// overwrites a newer one. The old ciphertexts stay in RocksDB's files
    /// until [`Store::compact`].
    pub fn reseal(&self) -> Result<u64> {
        let Some(ring) = &self.keyring else {
            return Ok(0);
        };
        let current = ring.current_key_id();
        let mut resealed = 0;
        for name in ALL_CF_NAMES {
            let handle = cf_handle(&self.db, name)?;
            let mut stale = Vec::new();
            for item in self.db.iterator_cf(handle, IteratorMode::Start) {
                let (key, value) = item?;
                if name == HEADER_CF && &*key == FORMAT_KEY {
                    continue;
                }
                if crypto::record_key_id(name, &key, &value)? != current {
                    stale.push(key.into_vec());
                }
            }
            for chunk in stale.chunks(RESEAL_BATCH) {
                let _exclusive = self.gate.write();
                let mut batch = WriteBatch::default();
                for key in chunk {
                    // Deleted or rewritten since the scan: nothing to do.
                    let Some(value) = self.db.get_cf(handle, key)? else {
                        continue;
                    };
                    if crypto::record_key_id(name, key, &value)? == current {
                        continue;
                    }
                    let plain = zeroize::Zeroizing::new(ring.open(name, key, &value)?);
                    batch.put_cf(handle, key, ring.seal(name, key, &plain)?);
                    self.sealed.increment(1);
                    resealed += 1;
                }
                let mut opts = WriteOptions::default();
                opts.set_sync(true);
                self.db.write_opt(batch, &opts)?;
            }
        }
        Ok(resealed)
    }

    /// Flushes memtables and the WAL and has RocksDB rewrite every file, down
    /// to the bottommost level, so deleted and overwritten values (records
    /// sealed with a retired key included) are dropped from disk.
    pub fn compact(&self) -> Result<()> {
        let handles = ALL_CF_NAMES
            .iter()
            .map(|name| cf_handle(&self.db, name))
            .collect::<Result<Vec<_>>>()?;
        let mut flush = FlushOptions::default();
        flush.set_wait(true);
        self.db.flush_cfs_opt(&handles, &flush)?;
        self.db.flush_wal(true)?;
        let mut opts = CompactOptions::default();
        opts.set_exclusive_manual_compaction(true);
        opts.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        for handle in handles {
            self.db
                .compact_range_cf_opt(handle, None::<&[u8]>, None::<&[u8]>, &opts);
        }
        Ok(())
    }

    /// Writes a value as is, bypassing sealing (tests that tamper with
    /// records).
    #[cfg(test)]
    fn put_raw(&self, cf: Cf, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.db.put_cf(self.handle(cf)?, key, value)?)
    }

    #[cfg(test)]
    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.handle(cf)?, key)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::storage::crypto::KEY_LEN;

    const KEY_MARKER: &[u8] = b"KEYMARKER-3c5f-user-key";
    const VALUE_MARKER: &[u8] = b"VALMARKER-9e1d-user-value";

    fn ring(current: KeyId, ids: &[KeyId]) -> Keyring {
        Keyring::new(
            current,
            ids.iter().map(|&id| (id, [id as u8 ^ 0xa5; KEY_LEN])),
        )
        .unwrap()
    }

    fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(files(&path));
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
        files(dir)
            .into_iter()
            .filter(|(_, bytes)| contains(bytes, needle))
            .map(|(path, _)| path)
            .collect()
    }

    fn user_value(n: u64) -> Vec<u8> {
        [KEY_MARKER, b"=", VALUE_MARKER, &n.to_be_bytes()].concat()
    }

    fn fill(store: &Store, from: u64, to: u64) {
        let ops = (from..to)
            .map(|i| BatchOp::Put(Cf::Logs, i.to_be_bytes().to_vec(), user_value(i)))
            .chain([
                BatchOp::Put(Cf::Meta, b"vote".to_vec(), user_value(0)),
                BatchOp::Put(Cf::Snapshot, b"current".to_vec(), user_value(1)),
            ])
            .collect();
        store.write(ops, true).unwrap();
    }

    fn check(store: &Store, from: u64, to: u64) {
        let rows = store
            .range(Cf::Logs, &from.to_be_bytes(), &to.to_be_bytes(), usize::MAX)
            .unwrap();
        assert_eq!(rows.len() as u64, to - from);
        for (i, (key, value)) in (from..).zip(rows) {
            assert_eq!(key, i.to_be_bytes());
            assert_eq!(value, user_value(i));
        }
        assert_eq!(
            store.get(Cf::Meta, b"vote").unwrap().unwrap(),
            user_value(0)
        );
        assert_eq!(store.last(Cf::Logs).unwrap().unwrap().1, user_value(to - 1));
    }

    #[test]
    fn encrypted_store_round_trips_and_leaves_no_plaintext_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Some(ring(1, &[1]))).unwrap();
        assert!(store.is_encrypted());
        fill(&store, 1, 200);
        check(&store, 1, 200);
        store.compact().unwrap();
        // Raw values are sealed records under key 1.
        let raw = store
            .get_raw(Cf::Logs, &5u64.to_be_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(crypto::record_key_id("logs", &[], &raw).unwrap(), 1);
        assert_eq!(
            store.key_usage().unwrap(),
            BTreeMap::from([(1, 199 + 2 + 1)])
        );
        let on_disk = files(dir.path()).values().map(Vec::len).sum::<usize>();
        assert!(
            on_disk > 199 * user_value(0).len(),
            "data reached the files"
        );
        assert_eq!(
            files_containing(dir.path(), KEY_MARKER),
            Vec::<PathBuf>::new()
        );
        assert_eq!(
            files_containing(dir.path(), VALUE_MARKER),
            Vec::<PathBuf>::new()
        );
        drop(store);
        let store = Store::open(dir.path(), Some(ring(1, &[1]))).unwrap();
        check(&store, 1, 200);
        drop(store);
        assert_eq!(
            files_containing(dir.path(), VALUE_MARKER),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn plaintext_store_control_finds_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), None).unwrap();
        assert!(!store.is_encrypted());
        fill(&store, 1, 50);
        store.compact().unwrap();
        assert!(store.key_usage().unwrap().is_empty());
        assert!(!files_containing(dir.path(), VALUE_MARKER).is_empty());
        drop(store);
        let store = Store::open(dir.path(), None).unwrap();
        check(&store, 1, 50);
    }

    #[test]
    fn modes_never_switch() {
        let sealed = tempfile::tempdir().unwrap();
        fill(
            &Store::open(sealed.path(), Some(ring(1, &[1]))).unwrap(),
            1,
            10,
        );
        let before = files(sealed.path());
        let err = Store::open(sealed.path(), None).unwrap_err();
        assert!(matches!(err, Error::EncryptionMode(_)), "{err}");
        assert!(err.to_string().contains("created with encryption"), "{err}");
        assert_eq!(
            files(sealed.path()),
            before,
            "a refused open changes nothing"
        );

        let plain = tempfile::tempdir().unwrap();
        fill(&Store::open(plain.path(), None).unwrap(), 1, 10);
        let before = files(plain.path());
        let err = Store::open(plain.path(), Some(ring(1, &[1]))).unwrap_err();
        assert!(matches!(err, Error::EncryptionMode(_)), "{err}");
        assert!(
            err.to_string().contains("created without encryption"),
            "{err}"
        );
        assert_eq!(files(plain.path()), before);
        // Both still open in their own mode.
        check(
            &Store::open(sealed.path(), Some(ring(1, &[1]))).unwrap(),
            1,
            10,
        );
        check(&Store::open(plain.path(), None).unwrap(), 1, 10);
    }

    #[test]
    fn an_empty_database_is_sealed_from_its_first_open() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), Some(ring(1, &[1]))).unwrap());
        // Even with no data yet, the mode is recorded and enforced.
        assert!(matches!(
            Store::open(dir.path(), None),
            Err(Error::EncryptionMode(_))
        ));
        assert!(Store::open(dir.path(), Some(ring(1, &[1]))).is_ok());
    }

    #[test]
    fn wrong_key_is_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        fill(
            &Store::open(dir.path(), Some(ring(1, &[1]))).unwrap(),
            1,
            20,
        );
        let before = files(dir.path());
        let wrong = Keyring::generate(1).unwrap();
        let err = Store::open(dir.path(), Some(wrong)).unwrap_err();
        assert!(matches!(err, Error::WrongKey { key_id: 1 }), "{err}");
        assert!(err.to_string().contains("wrong encryption key"), "{err}");
        assert_eq!(files(dir.path()), before, "a refused open changes nothing");
        // Only a different key id: the sentinel names the missing one.
        let err = Store::open(dir.path(), Some(ring(2, &[2]))).unwrap_err();
        assert!(matches!(err, Error::UnknownKey { key_id: 1, .. }), "{err}");
        assert_eq!(files(dir.path()), before);
        check(
            &Store::open(dir.path(), Some(ring(1, &[1]))).unwrap(),
            1,
            20,
        );
    }

    #[test]
    fn a_tampered_record_fails_reads_and_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Some(ring(1, &[1]))).unwrap();
        fill(&store, 1, 20);
        let key = 7u64.to_be_bytes();
        let good = store.get_raw(Cf::Logs, &key).unwrap().unwrap();
        let mut bad = good.clone();
        let last = bad.len() - 20;
        bad[last] ^= 0x40;
        store.put_raw(Cf::Logs, &key, &bad).unwrap();
        let err = store.get(Cf::Logs, &key).unwrap_err();
        assert!(
            matches!(err, Error::Unauthentic { ref record, key_id: 1 } if record == "logs/#7"),
            "{err}"
        );
        assert!(store
            .range(Cf::Logs, &0u64.to_be_bytes(), &[0xff; 9], usize::MAX)
            .is_err());
        drop(store);
        let err = Store::open(dir.path(), Some(ring(1, &[1]))).unwrap_err();
        assert!(
            err.to_string().contains("logs/#7") && err.to_string().contains("tampered"),
            "{err}"
        );
        // Putting the genuine record back makes the database whole again:
        // the refused open destroyed nothing.
        let plain = Store::open_unchecked(dir.path());
        plain
            .put_cf(plain.cf_handle("logs").unwrap(), key, &good)
            .unwrap();
        drop(plain);
        check(
            &Store::open(dir.path(), Some(ring(1, &[1]))).unwrap(),
            1,
            20,
        );
    }

    #[test]
    fn records_cannot_be_swapped_between_keys_or_column_families() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Some(ring(1, &[1]))).unwrap();
        fill(&store, 1, 5);
        let one = store
            .get_raw(Cf::Logs, &1u64.to_be_bytes())
            .unwrap()
            .unwrap();
        store.put_raw(Cf::Logs, &2u64.to_be_bytes(), &one).unwrap();
        assert!(matches!(
            store.get(Cf::Logs, &2u64.to_be_bytes()),
            Err(Error::Unauthentic { .. })
        ));
        let vote = store.get_raw(Cf::Meta, b"vote").unwrap().unwrap();
        store.put_raw(Cf::Snapshot, b"vote", &vote).unwrap();
        assert!(matches!(
            store.get(Cf::Snapshot, b"vote"),
            Err(Error::Unauthentic { .. })
        ));
        // A plaintext value slipped into an encrypted database is refused too.
        store.put_raw(Cf::Meta, b"committed", b"plain").unwrap();
        assert!(matches!(
            store.get(Cf::Meta, b"committed"),
            Err(Error::BadRecord { .. })
        ));
    }

    #[test]
    fn rotation_reseals_on_open_and_then_the_old_key_can_go() {
        const A: KeyId = 0x0a0b_0c01;
        const B: KeyId = 0x0a0b_0c02;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Some(ring(A, &[A]))).unwrap();
        fill(&store, 1, 100);
        store.compact().unwrap();
        assert_eq!(
            store
                .key_usage()
                .unwrap()
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            vec![A]
        );
        drop(store);
        let header_a = [&[crypto::FORMAT_V1][..], &A.to_be_bytes()].concat();
        assert!(!files_containing(dir.path(), &header_a).is_empty());

        // Removing A before anything was re-sealed is refused, naming it.
        let err = Store::open(dir.path(), Some(ring(B, &[B]))).unwrap_err();
        assert!(matches!(err, Error::UnknownKey { key_id: A, .. }), "{err}");

        // B becomes current with A kept: opening re-seals and compacts.
        let store = Store::open(dir.path(), Some(ring(B, &[A, B]))).unwrap();
        check(&store, 1, 100);
        assert_eq!(
            store.key_usage().unwrap(),
            BTreeMap::from([(B, 99 + 2 + 1)])
        );
        fill(&store, 100, 110);
        drop(store);
        assert_eq!(
            files_containing(dir.path(), &header_a),
            Vec::<PathBuf>::new(),
            "A's ciphertexts left the disk"
        );

        let store = Store::open(dir.path(), Some(ring(B, &[B]))).unwrap();
        check(&store, 1, 110);
    }

    #[test]
    fn online_reseal_rewrites_old_records_and_races_no_write() {
        const A: KeyId = 1;
        const B: KeyId = 2;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Some(ring(A, &[A]))).unwrap();
        fill(&store, 1, 1000);
        drop(store);
        let ab = ring(B, &[A, B]);
        // Plant records sealed under A in a database now opened with B
        // current, as a node would have them had it not re-sealed at open.
        let store = Store::open(dir.path(), Some(ab.clone())).unwrap();
        for i in 1..1000u64 {
            let key = i.to_be_bytes();
            let sealed_a = ring(A, &[A]).seal("logs", &key, &user_value(i)).unwrap();
            store.put_raw(Cf::Logs, &key, &sealed_a).unwrap();
        }
        assert_eq!(store.key_usage().unwrap()[&A], 999);
        let store = Arc::new(store);
        // Concurrent purges and appends while re-sealing.
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    store
                        .write(
                            vec![
                                BatchOp::DeleteRange(
                                    Cf::Logs,
                                    0u64.to_be_bytes().to_vec(),
                                    (i * 10).to_be_bytes().to_vec(),
                                ),
                                BatchOp::Put(
                                    Cf::Logs,
                                    (1000 + i).to_be_bytes().to_vec(),
                                    user_value(1000 + i),
                                ),
                            ],
                            false,
                        )
                        .unwrap();
                }
            })
        };
        store.reseal().unwrap();
        writer.join().unwrap();
        store.reseal().unwrap();
        assert_eq!(
            store
                .key_usage()
                .unwrap()
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            vec![B]
        );
        // The purge won: nothing below 490 came back.
        let first = store
            .range(Cf::Logs, &0u64.to_be_bytes(), &[0xff; 9], 1)
            .unwrap();
        assert_eq!(first[0].0, 490u64.to_be_bytes());
        check(&store, 490, 1050);
    }

    #[test]
    fn rocksdb_files_without_current_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), None).unwrap());
        std::fs::remove_file(dir.path().join("CURRENT")).unwrap();
        let err = Store::open(dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("no CURRENT"), "{err}");
    }

    impl Store {
        /// The raw database, bypassing every check (tests only).
        fn open_unchecked(dir: &Path) -> DB {
            DB::open_cf(&db_options(), dir, ALL_CF_NAMES).unwrap()
        }
    }
}
