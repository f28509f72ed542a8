//! The embedded state store: one crash-safe redb file (`state.redb`) in the state directory.
//!
//! redb commits are copy-on-write with a checksummed, double-buffered root: after `kill -9` or a
//! power cut the file opens at the last committed transaction, never half-written. Callers
//! batch their writes: a [`Table`] keeps a bounded in-memory cache of typed records in front of
//! one redb table, marks what changed, and [`Store::commit`] writes every dirty record of every
//! table in one transaction. Whatever was committed survives; what was only in memory is lost,
//! which costs at most one commit interval of history.
//!
//! Every table is bounded twice: the cache holds at most `cache_cap` records (clean records are
//! dropped after a commit when it is over, counted in `cache_evictions`), and the table holds at
//! most `row_cap` rows (past that, the least recently seen 10 % are deleted, counted in
//! `row_evictions`). Values are stored as 8 bytes of last-seen time (little endian, so the
//! pruning pass reads no JSON) followed by the record as JSON.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A store failure; the analysis keeps running and counts it.
pub type Error = redb::Error;

/// A record kept in a [`Table`].
pub trait Record: Serialize + DeserializeOwned {
    /// Event time (µs) the record was last touched; the pruning order.
    fn last_us(&self) -> u64;
}

/// The open database.
pub struct Store {
    db: Database,
    /// Commits that failed (the records stay dirty and are retried at the next commit).
    pub commit_errors: u64,
    /// Reads that failed or returned undecodable records (treated as absent).
    pub read_errors: u64,
}

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

impl Store {
    /// Opens (creating if needed) `dir/state.redb` with a page cache of `cache_bytes`. Fails
    /// when the directory cannot be made, the file is not a redb database, or another process
    /// has it open.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Store, Error> {
        std::fs::create_dir_all(dir)?;
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(dir.join("state.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(Store {
            db,
            commit_errors: 0,
            read_errors: 0,
        })
    }

    /// Reads one value from the `meta` table.
    pub fn meta(&mut self, key: &str) -> Option<Vec<u8>> {
        let res = (|| -> Result<Option<Vec<u8>>, Error> {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(META)?;
            Ok(t.get(key)?.map(|v| v.value().to_vec()))
        })();
        res.unwrap_or_else(|_| {
            self.read_errors += 1;
            None
        })
    }

    /// Writes the dirty records of `tables` and the `meta` entries in one durable transaction.
    pub fn commit(&mut self, tables: &mut [&mut dyn Flush], meta: &[(&str, Vec<u8>)]) -> bool {
        let res = (|| -> Result<(), Error> {
            let mut tx = self.db.begin_write()?;
            tx.set_durability(Durability::Immediate)?;
            for t in tables.iter_mut() {
                t.write(&tx)?;
            }
            {
                let mut m = tx.open_table(META)?;
                for (k, v) in meta {
                    m.insert(*k, v.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })();
        match res {
            Ok(()) => {
                for t in tables.iter_mut() {
                    t.committed();
                }
                true
            }
            Err(e) => {
                self.commit_errors += 1;
                tracing::warn!(error = %e, "state store commit failed; will retry");
                false
            }
        }
    }

    /// Every record of a table, in key order (for start-up loads of small tables).
    pub fn load_all<V: Record>(&mut self, name: &'static str, limit: usize) -> Vec<(String, V)> {
        let def: TableDefinition<&str, &[u8]> = TableDefinition::new(name);
        let res = (|| -> Result<Vec<(String, V)>, Error> {
            let tx = self.db.begin_read()?;
            let t = match tx.open_table(def) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            for item in t.iter()?.take(limit) {
                let (k, v) = item?;
                if let Some(r) = decode(v.value()) {
                    out.push((k.value().to_string(), r));
                }
            }
            Ok(out)
        })();
        res.unwrap_or_else(|_| {
            self.read_errors += 1;
            Vec::new()
        })
    }

    fn get(&mut self, def: TableDefinition<&str, &[u8]>, key: &str) -> Option<Vec<u8>> {
        let res = (|| -> Result<Option<Vec<u8>>, Error> {
            let tx = self.db.begin_read()?;
            let t = match tx.open_table(def) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(t.get(key)?.map(|v| v.value().to_vec()))
        })();
        res.unwrap_or_else(|_| {
            self.read_errors += 1;
            None
        })
    }

    fn rows(&mut self, def: TableDefinition<&str, &[u8]>) -> u64 {
        let res = (|| -> Result<u64, Error> {
            let tx = self.db.begin_read()?;
            match tx.open_table(def) {
                Ok(t) => Ok(t.len()?),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
                Err(e) => Err(e.into()),
            }
        })();
        res.unwrap_or(0)
    }
}

fn encode<V: Record>(v: &V) -> Vec<u8> {
    let mut out = v.last_us().to_le_bytes().to_vec();
    if serde_json::to_writer(&mut out, v).is_err() {
        out.truncate(8);
    }
    out
}

fn decode<V: Record>(b: &[u8]) -> Option<V> {
    serde_json::from_slice(b.get(8..)?).ok()
}

fn stamp(b: &[u8]) -> u64 {
    b.get(..8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// A table the store can flush in a commit.
pub trait Flush {
    fn write(&mut self, tx: &redb::WriteTransaction) -> Result<(), Error>;
    fn committed(&mut self);
}

/// Counters of one table.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct TableCounters {
    pub rows: u64,
    pub cached: u64,
    pub cache_evictions: u64,
    pub row_evictions: u64,
}

/// A bounded, write-back cache of typed records over one redb table, keyed by string.
pub struct Table<V: Record> {
    def: TableDefinition<'static, &'static str, &'static [u8]>,
    cache: HashMap<String, V>,
    dirty: HashSet<String>,
    cache_cap: usize,
    row_cap: u64,
    pub counters: TableCounters,
}

impl<V: Record> Table<V> {
    /// A table named `name`; `rows` is read from the store.
    pub fn new(store: &mut Store, name: &'static str, cache_cap: usize, row_cap: u64) -> Self {
        let def = TableDefinition::new(name);
        let rows = store.rows(def);
        Table {
            def,
            cache: HashMap::new(),
            dirty: HashSet::new(),
            cache_cap: cache_cap.max(16),
            row_cap: row_cap.max(16),
            counters: TableCounters {
                rows,
                ..TableCounters::default()
            },
        }
    }

    /// The record for `key`, from the cache or the store.
    pub fn get(&mut self, store: &mut Store, key: &str) -> Option<&V> {
        if !self.cache.contains_key(key) {
            let v = store.get(self.def, key).and_then(|b| decode::<V>(&b))?;
            self.cache.insert(key.to_string(), v);
        }
        self.cache.get(key)
    }

    /// The record for `key` for changing, created with `make` if absent; marked dirty.
    pub fn entry(&mut self, store: &mut Store, key: &str, make: impl FnOnce() -> V) -> &mut V {
        if !self.dirty.contains(key) {
            self.dirty.insert(key.to_string());
        }
        let def = self.def;
        match self.cache.entry(key.to_string()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let rec = store
                    .get(def, key)
                    .and_then(|b| decode::<V>(&b))
                    .unwrap_or_else(make);
                slot.insert(rec)
            }
        }
    }

    /// Records changed since the last commit.
    pub fn dirty_len(&self) -> usize {
        self.dirty.len()
    }

    /// Records in the cache.
    pub fn cached_len(&self) -> usize {
        self.cache.len()
    }
}

impl<V: Record> Flush for Table<V> {
    fn write(&mut self, tx: &redb::WriteTransaction) -> Result<(), Error> {
        let mut t = tx.open_table(self.def)?;
        for k in &self.dirty {
            if let Some(v) = self.cache.get(k) {
                t.insert(k.as_str(), encode(v).as_slice())?;
            }
        }
        let rows = t.len()?;
        if rows > self.row_cap {
            // Delete the least recently seen rows down to 90 % of the cap.
            let target = self.row_cap - self.row_cap / 10;
            let excess = (rows - target) as usize;
            let mut stamps = Vec::with_capacity(rows as usize);
            for item in t.iter()? {
                let (_, v) = item?;
                stamps.push(stamp(v.value()));
            }
            let (_, cut, _) = stamps.select_nth_unstable(excess.saturating_sub(1));
            let cut = *cut;
            let mut removed = 0u64;
            let mut budget = excess;
            t.retain(|_, v| {
                if budget > 0 && stamp(v) <= cut {
                    budget -= 1;
                    removed += 1;
                    false
                } else {
                    true
                }
            })?;
            self.counters.row_evictions += removed;
            // Cached copies of removed rows may linger; they are clean and re-written only if
            // touched again, which re-creates the row with its newer history.
        }
        self.counters.rows = t.len()?;
        Ok(())
    }

    fn committed(&mut self) {
        self.dirty.clear();
        if self.cache.len() > self.cache_cap {
            let before = self.cache.len();
            let keep = self.cache_cap / 2;
            // Keep the most recently seen half.
            let mut stamps: Vec<u64> = self.cache.values().map(Record::last_us).collect();
            let idx = stamps.len() - keep.max(1);
            let (_, cut, _) = stamps.select_nth_unstable(idx);
            let cut = *cut;
            self.cache.retain(|_, v| v.last_us() >= cut);
            if self.cache.len() > self.cache_cap {
                let extra = self.cache.len() - keep;
                let drop: Vec<String> = self.cache.keys().take(extra).cloned().collect();
                for k in drop {
                    self.cache.remove(&k);
                }
            }
            self.counters.cache_evictions += (before - self.cache.len()) as u64;
        }
        self.counters.cached = self.cache.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
    struct Rec {
        last: u64,
        hits: u64,
    }
    impl Record for Rec {
        fn last_us(&self) -> u64 {
            self.last
        }
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("crosswire-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn committed_records_survive_reopen_and_uncommitted_do_not() {
        let d = dir("reopen");
        {
            let mut s = Store::open(&d, 1 << 20).unwrap();
            let mut t: Table<Rec> = Table::new(&mut s, "t", 100, 100);
            t.entry(&mut s, "a", Rec::default).hits = 3;
            assert!(s.commit(&mut [&mut t], &[("k", b"v".to_vec())]));
            t.entry(&mut s, "b", Rec::default).hits = 1;
            // Dropped without commit: "b" is lost, "a" is intact.
        }
        let mut s = Store::open(&d, 1 << 20).unwrap();
        let mut t: Table<Rec> = Table::new(&mut s, "t", 100, 100);
        assert_eq!(t.get(&mut s, "a").map(|r| r.hits), Some(3));
        assert!(t.get(&mut s, "b").is_none());
        assert_eq!(s.meta("k").as_deref(), Some(&b"v"[..]));
        assert_eq!(t.counters.rows, 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rows_and_cache_are_bounded() {
        let d = dir("bounded");
        let mut s = Store::open(&d, 1 << 20).unwrap();
        let mut t: Table<Rec> = Table::new(&mut s, "t", 32, 100);
        for i in 0..500u64 {
            let r = t.entry(&mut s, &format!("k{i}"), Rec::default);
            r.last = i;
            if i % 50 == 49 {
                assert!(s.commit(&mut [&mut t], &[]));
            }
        }
        assert!(t.counters.rows <= 100, "{:?}", t.counters);
        assert!(t.counters.row_evictions >= 400, "{:?}", t.counters);
        assert!(t.cached_len() <= 50, "{}", t.cached_len());
        assert!(t.counters.cache_evictions > 0);
        // The newest rows are the ones kept.
        assert!(t.get(&mut s, "k499").is_some());
        assert!(t.get(&mut s, "k3").is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn second_open_is_refused_not_corrupting() {
        let d = dir("lock");
        let _a = Store::open(&d, 1 << 20).unwrap();
        assert!(Store::open(&d, 1 << 20).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
