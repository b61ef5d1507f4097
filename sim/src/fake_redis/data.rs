//! The keyspace: typed values with an optional expiry, and Redis's rule for when a key is
//! gone (`keyIsExpired`: expired once `now_ms > expires_at_ms`). Expired keys are never
//! visible; commands purge them lazily when they touch them.

use std::collections::{BTreeMap, BTreeSet};

use super::errors::CmdError;

/// The members of a set, ordered so that iteration is deterministic.
pub type Members = BTreeSet<Vec<u8>>;
/// The fields of a hash and their values, ordered so that iteration is deterministic.
pub type Fields = BTreeMap<Vec<u8>, Vec<u8>>;

/// One value, of one of the types the fake supports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string (binary safe).
    String(Vec<u8>),
    /// A set of members, ordered so that iteration is deterministic.
    Set(Members),
    /// A hash of fields to values, ordered so that iteration is deterministic.
    Hash(Fields),
}

impl Value {
    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) => "string",
            Self::Set(_) => "set",
            Self::Hash(_) => "hash",
        }
    }
}

/// A key's value and its expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What the key holds.
    pub value: Value,
    /// When the key stops existing (it still exists at exactly this time); `None` = never.
    pub expires_at_ms: Option<u64>,
}

impl Entry {
    /// An entry without expiry.
    pub fn persistent(value: Value) -> Self {
        Self {
            value,
            expires_at_ms: None,
        }
    }

    /// Redis's `keyIsExpired`: the key is gone once now is strictly past its expiry.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        matches!(self.expires_at_ms, Some(expires_at_ms) if now_ms > expires_at_ms)
    }
}

/// The database: every key, live or not yet purged.
#[derive(Debug, Default)]
pub struct Db {
    /// Keys in byte order, so SCAN, KEYS and dumps are deterministic.
    entries: BTreeMap<Vec<u8>, Entry>,
}

impl Db {
    /// Drops `key` if it has expired, as Redis does on access.
    fn purge(&mut self, key: &[u8], now_ms: u64) {
        if self
            .entries
            .get(key)
            .is_some_and(|entry| entry.is_expired(now_ms))
        {
            self.entries.remove(key);
        }
    }

    /// The live entry under `key`.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.purge(key, now_ms);
        self.entries.get(key)
    }

    /// The live entry under `key`, without purging (for readers holding `&self`).
    pub fn peek(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.entries
            .get(key)
            .filter(|entry| !entry.is_expired(now_ms))
    }

    /// The live entry under `key`, for changing it.
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        self.purge(key, now_ms);
        self.entries.get_mut(key)
    }

    /// Removes the live entry under `key`, returning it.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        self.purge(key, now_ms);
        self.entries.remove(key)
    }

    /// Stores `entry` under `key`, replacing whatever was there.
    pub fn insert(&mut self, key: Vec<u8>, entry: Entry) {
        self.entries.insert(key, entry);
    }

    /// Drops every key.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Every live key and entry, in key order.
    pub fn live(&self, now_ms: u64) -> impl Iterator<Item = (&Vec<u8>, &Entry)> {
        self.entries
            .iter()
            .filter(move |(_, entry)| !entry.is_expired(now_ms))
    }

    /// Removes `key` when it holds an empty set or hash (Redis never keeps empty ones).
    pub fn remove_if_empty(&mut self, key: &[u8]) {
        let empty = match self.entries.get(key).map(|entry| &entry.value) {
            Some(Value::Set(members)) => members.is_empty(),
            Some(Value::Hash(fields)) => fields.is_empty(),
            _ => false,
        };
        if empty {
            self.entries.remove(key);
        }
    }

    /// The set under `key`; `None` when missing; WRONGTYPE when another type.
    pub fn set(&mut self, key: &[u8], now_ms: u64) -> Result<Option<&Members>, CmdError> {
        match self.get(key, now_ms).map(|entry| &entry.value) {
            None => Ok(None),
            Some(Value::Set(members)) => Ok(Some(members)),
            Some(_) => Err(CmdError::wrong_type()),
        }
    }

    /// The set under `key` for changing it; `None` when missing.
    pub fn set_mut(&mut self, key: &[u8], now_ms: u64) -> Result<Option<&mut Members>, CmdError> {
        match self.get_mut(key, now_ms).map(|entry| &mut entry.value) {
            None => Ok(None),
            Some(Value::Set(members)) => Ok(Some(members)),
            Some(_) => Err(CmdError::wrong_type()),
        }
    }

    /// The set under `key`, created empty when missing (the caller must add to it).
    pub fn set_or_create(&mut self, key: &[u8], now_ms: u64) -> Result<&mut Members, CmdError> {
        self.purge(key, now_ms);
        let entry = self
            .entries
            .entry(key.to_vec())
            .or_insert_with(|| Entry::persistent(Value::Set(Members::new())));
        match &mut entry.value {
            Value::Set(members) => Ok(members),
            _ => Err(CmdError::wrong_type()),
        }
    }

    /// The hash under `key`; `None` when missing; WRONGTYPE when another type.
    pub fn hash(&mut self, key: &[u8], now_ms: u64) -> Result<Option<&Fields>, CmdError> {
        match self.get(key, now_ms).map(|entry| &entry.value) {
            None => Ok(None),
            Some(Value::Hash(fields)) => Ok(Some(fields)),
            Some(_) => Err(CmdError::wrong_type()),
        }
    }

    /// The hash under `key` for changing it; `None` when missing.
    pub fn hash_mut(&mut self, key: &[u8], now_ms: u64) -> Result<Option<&mut Fields>, CmdError> {
        match self.get_mut(key, now_ms).map(|entry| &mut entry.value) {
            None => Ok(None),
            Some(Value::Hash(fields)) => Ok(Some(fields)),
            Some(_) => Err(CmdError::wrong_type()),
        }
    }

    /// The hash under `key`, created empty when missing (the caller must add to it).
    pub fn hash_or_create(&mut self, key: &[u8], now_ms: u64) -> Result<&mut Fields, CmdError> {
        self.purge(key, now_ms);
        let entry = self
            .entries
            .entry(key.to_vec())
            .or_insert_with(|| Entry::persistent(Value::Hash(Fields::new())));
        match &mut entry.value {
            Value::Hash(fields) => Ok(fields),
            _ => Err(CmdError::wrong_type()),
        }
    }

    /// The string under `key`; `None` when missing; WRONGTYPE when another type.
    pub fn string(&mut self, key: &[u8], now_ms: u64) -> Result<Option<&Vec<u8>>, CmdError> {
        match self.get(key, now_ms).map(|entry| &entry.value) {
            None => Ok(None),
            Some(Value::String(bytes)) => Ok(Some(bytes)),
            Some(_) => Err(CmdError::wrong_type()),
        }
    }
}

/// A read-only view of the live data at one instant, for the simulation's oracle.
/// Expired keys are invisible, exactly as they are to commands.
#[derive(Debug)]
pub struct DataView<'a> {
    /// The database being viewed.
    db: &'a Db,
    /// The instant the view is taken at; decides which keys have expired.
    now_ms: u64,
}

impl<'a> DataView<'a> {
    /// A view of `db` as of `now_ms`.
    pub(crate) fn new(db: &'a Db, now_ms: u64) -> Self {
        Self { db, now_ms }
    }

    /// The instant this view shows.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Every live key and entry, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&'a [u8], &'a Entry)> + '_ {
        self.db
            .live(self.now_ms)
            .map(|(key, entry)| (key.as_slice(), entry))
    }

    /// The live entry under `key`.
    pub fn entry(&self, key: &str) -> Option<&'a Entry> {
        self.db.peek(key.as_bytes(), self.now_ms)
    }

    /// The set under `key`, when it is a live set.
    pub fn set(&self, key: &str) -> Option<&'a Members> {
        match self.entry(key).map(|entry| &entry.value) {
            Some(Value::Set(members)) => Some(members),
            _ => None,
        }
    }

    /// The hash under `key`, when it is a live hash.
    pub fn hash(&self, key: &str) -> Option<&'a Fields> {
        match self.entry(key).map(|entry| &entry.value) {
            Some(Value::Hash(fields)) => Some(fields),
            _ => None,
        }
    }

    /// The string under `key`, when it is a live string.
    pub fn string(&self, key: &str) -> Option<&'a [u8]> {
        match self.entry(key).map(|entry| &entry.value) {
            Some(Value::String(bytes)) => Some(bytes),
            _ => None,
        }
    }
}
