//! The store's error type, and how sled's errors map onto it (a full flash, an I/O
//! error, damage): what callers and the API tell apart.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database at {path} is damaged: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("flash is full")]
    Full,
    #[error("flash I/O error: {0}")]
    Io(std::io::Error),
    #[error("the board is not provisioned (no factory data in {0})")]
    NotProvisioned(PathBuf),
    #[error("the board is already provisioned ({0}); factory data is written once")]
    AlreadyProvisioned(PathBuf),
    #[error("record {key:?} cannot be decoded: {detail}")]
    Decode { key: String, detail: String },
    /// A later firmware wrote the data DB in a format this one does not know (after a
    /// rollback): no record is written to it, so that firmware can read it again.
    #[error(
        "written by a newer firmware, format {found}; this firmware reads up to format {supported}"
    )]
    NewerFormat { found: u32, supported: u32 },
}

impl StoreError {
    pub(super) fn from_sled(path: &Path, e: sled::Error) -> StoreError {
        match e {
            // sled hands out copies of a stopped log writer's error: kind kept, errno not.
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => StoreError::Full,
            sled::Error::Io(io) => StoreError::Io(io),
            sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: e.to_string(),
            },
            sled::Error::ReportableBug(b) => StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: b,
            },
            sled::Error::CollectionNotFound(_) => StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: "a tree is missing".into(),
            },
        }
    }
}
