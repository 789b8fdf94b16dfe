//! The board DB: factory data written once by `provision`, read-only at run time, never
//! erased (tree `board`: `model`, `serial`, `mac`, `initial_password_hash`, `hw`).

use std::path::{Path, PathBuf};

use super::ramcopy::RamCopy;
use super::{open_sled, StoreError};
use crate::model::BoardInfo;

pub struct BoardDb {
    path: PathBuf,
    tree: sled::Tree,
    /// Set when the flash copy could not be opened because the flash is full: the factory
    /// data is read from a RAM copy (and cannot be written).
    ram_copy: Option<RamCopy>,
}

impl BoardDb {
    pub fn open(path: &Path, cache_capacity: u64) -> Result<BoardDb, StoreError> {
        let (db, ram_copy) = match open_sled(path, cache_capacity) {
            Ok(db) => (db, None),
            Err(StoreError::Full) if path.exists() => {
                tracing::warn!(
                    "board DB {}: the flash is full; reading the factory data from a copy in RAM",
                    path.display()
                );
                let copy = RamCopy::of(path, "board").map_err(|_| StoreError::Full)?;
                (open_sled(&copy.0, cache_capacity)?, Some(copy))
            }
            Err(e) => return Err(e),
        };
        let tree = db
            .open_tree("board")
            .map_err(|e| StoreError::from_sled(path, e))?;
        Ok(BoardDb {
            path: path.to_path_buf(),
            tree,
            ram_copy,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn text(&self, key: &str) -> Result<Option<String>, StoreError> {
        let v = self
            .tree
            .get(key)
            .map_err(|e| StoreError::from_sled(&self.path, e))?;
        v.map(|b| {
            String::from_utf8(b.to_vec()).map_err(|_| StoreError::Decode {
                key: key.into(),
                detail: "not UTF-8".into(),
            })
        })
        .transpose()
    }

    pub fn is_provisioned(&self) -> Result<bool, StoreError> {
        Ok(self.text("initial_password_hash")?.is_some())
    }

    /// Reads the factory data; all keys must be present.
    pub fn read(&self) -> Result<BoardInfo, StoreError> {
        let get = |k: &str| -> Result<String, StoreError> {
            self.text(k)?
                .ok_or_else(|| StoreError::NotProvisioned(self.path.clone()))
        };
        let hw_text = get("hw")?;
        let hw = serde_json::from_str(&hw_text).map_err(|e| StoreError::Decode {
            key: "hw".into(),
            detail: e.to_string(),
        })?;
        Ok(BoardInfo {
            model: get("model")?,
            serial: get("serial")?,
            mac: get("mac")?,
            initial_password_hash: get("initial_password_hash")?,
            hw,
        })
    }

    /// Writes the factory data once and flushes it. Refuses to overwrite: the label
    /// printed for this box must stay true.
    pub fn provision(&self, info: &BoardInfo) -> Result<(), StoreError> {
        if self.ram_copy.is_some() {
            return Err(StoreError::Full);
        }
        if self.is_provisioned()? {
            return Err(StoreError::AlreadyProvisioned(self.path.clone()));
        }
        let hw = serde_json::to_string(&info.hw).map_err(|e| StoreError::Decode {
            key: "hw".into(),
            detail: e.to_string(),
        })?;
        let mut batch = sled::Batch::default();
        batch.insert("model", info.model.as_bytes());
        batch.insert("serial", info.serial.as_bytes());
        batch.insert("mac", info.mac.as_bytes());
        batch.insert("hw", hw.as_bytes());
        // Written last in the same atomic batch: its presence means "provisioned".
        batch.insert(
            "initial_password_hash",
            info.initial_password_hash.as_bytes(),
        );
        self.tree
            .apply_batch(batch)
            .map_err(|e| StoreError::from_sled(&self.path, e))?;
        self.tree
            .flush()
            .map_err(|e| StoreError::from_sled(&self.path, e))?;
        Ok(())
    }
}
