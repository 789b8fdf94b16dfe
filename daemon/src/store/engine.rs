//! sled itself: opening a database (waiting a moment for its lock on the files) and
//! the JSON encoding of records.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::StoreError;
use crate::model::Account;

/// How long an open waits for sled's lock on the files: the background threads of a
/// handle just dropped (a reopen after a write fault) can hold them a moment longer.
const LOCK_WAIT: Duration = Duration::from_secs(2);

pub(super) fn open_sled(path: &Path, cache_capacity: u64) -> Result<sled::Db, StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(StoreError::Io)?;
    }
    let started = Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity)
            // We flush explicitly after every credential write; the background flusher
            // only bounds how much of the rest (audit, timestamps) a power cut can lose.
            .flush_every_ms(Some(1000))
            .open();
        match opened {
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.map_err(|e| StoreError::from_sled(path, e)),
        }
    }
}

pub(super) fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Decode {
        key: key.into(),
        detail: e.to_string(),
    })
}

pub(super) fn decode(key: &str, bytes: &[u8]) -> Result<Account, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        key: key.into(),
        detail: e.to_string(),
    })
}
