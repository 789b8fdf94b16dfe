//! Typed wrapper over the two sled databases on flash (spec §3).
//!
//! - [`BoardDb`]: factory data written once by `provision`, read-only at run time, never
//!   erased. Tree `board`: `model`, `serial`, `mac`, `initial_password_hash`, `hw`.
//! - [`DataDb`]: user data, erased by a factory reset. Trees `accounts` (username → JSON
//!   [`Account`]), `settings` (name → JSON, e.g. `smtp`), `tokens` (SHA-256 of a reset
//!   token → JSON [`ResetToken`]; the token itself is never stored).
//!
//! Every write that changes a credential or a setting is flushed (fsync) before it
//! returns, so a response is only sent for a write that survives a power cut.
//! Callers run these blocking methods off the async runtime.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{PoisonError, RwLock};

use pbx_board::BoardProfile;
use serde::{Deserialize, Serialize};

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
}

impl StoreError {
    fn from_sled(path: &Path, e: sled::Error) -> StoreError {
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

fn open_sled(path: &Path, cache_capacity: u64) -> Result<sled::Db, StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(StoreError::Io)?;
    }
    sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity)
        // We flush explicitly after every credential write; the background flusher
        // only bounds how much of the rest (audit, timestamps) a power cut can lose.
        .flush_every_ms(Some(1000))
        .open()
        .map_err(|e| StoreError::from_sled(path, e))
}

/// A private copy in RAM (the temp dir: tmpfs on the boxes) of a database directory,
/// opened when the flash copy cannot be: sled's open writes, so on a full flash it
/// fails even for reading. Removed when dropped.
struct RamCopy(PathBuf);

impl RamCopy {
    /// Copies `src` to `pbx-authd-<pid>-<name>-readonly` in the temp dir, and removes
    /// such copies left by processes that are gone (a crash during a flash fault).
    fn of(src: &Path, name: &str) -> std::io::Result<RamCopy> {
        let tmp = std::env::temp_dir();
        let suffix = format!("-{name}-readonly");
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let file_name = e.file_name();
                let Some(pid) = file_name
                    .to_str()
                    .and_then(|n| n.strip_prefix("pbx-authd-"))
                    .and_then(|n| n.strip_suffix(suffix.as_str()))
                else {
                    continue;
                };
                let alive = pid.parse::<u32>().is_ok_and(|pid| {
                    pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists()
                });
                if !alive {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("pbx-authd-{}{suffix}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = crate::fsutil::copy_dir(src, &dir) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(RamCopy(dir))
    }
}

impl Drop for RamCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------

/// Factory data of the board.
#[derive(Clone, PartialEq, Eq)]
pub struct BoardInfo {
    pub model: String,
    pub serial: String,
    pub mac: String,
    /// Argon2id PHC string of the password printed on the label.
    pub initial_password_hash: String,
    pub hw: BoardProfile,
}

impl fmt::Debug for BoardInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoardInfo")
            .field("model", &self.model)
            .field("serial", &self.serial)
            .field("mac", &self.mac)
            .field("hw", &self.hw)
            .finish_non_exhaustive()
    }
}

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

// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub username: String,
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub email: Option<String>,
    pub must_change_password: bool,
    pub created_at: u64,
    pub password_changed_at: u64,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

pub const ADMIN: &str = "admin";

/// Starts in a row that may die inside the data DB's open before it counts as damaged.
pub const OPEN_ATTEMPTS: u32 = 3;

pub struct DataDb {
    path: PathBuf,
    cache_capacity: u64,
    /// The open database. After a write fault (flash full, I/O error) it is replaced by
    /// a fresh open from flash, see [`DataDb::with`]; `None` only while that reopen
    /// keeps failing.
    open: RwLock<Option<Trees>>,
    /// Key of the next audit event. Kept in memory because finding the last key would
    /// need a backward scan, and sled's backward iteration links a 1 MiB constant.
    audit_next: AtomicU64,
    /// Events in the ring; sled's `len()` would scan the whole tree on every login.
    audit_len: AtomicUsize,
}

/// One open instance of the data DB.
struct Trees {
    db: sled::Db,
    accounts: sled::Tree,
    settings: sled::Tree,
    tokens: sled::Tree,
    audit: sled::Tree,
    /// Set while the flash copy cannot be opened (a write fault, a full flash): this
    /// instance is a copy in RAM of what is on flash, for reads only. Last, so that sled
    /// lets go of the files before the copy is removed.
    ram_copy: Option<RamCopy>,
}

/// Most audit events kept; the oldest go first.
pub const AUDIT_MAX: usize = 1000;

/// File in the data DB directory written once `admin` exists.
const INITIALISED: &str = "pbx-initialised";

/// What a [`DataDb::with`] call does: reads may use the RAM copy kept during a flash
/// fault; writes need flash; audit events are best effort and never wait for a reopen.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    Audit,
}

/// One audit event (`GET /api/v1/audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: u64,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A password-reset token as stored: only its hash is the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetToken {
    pub username: String,
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
    pub issued_ip: String,
    pub issued_at: u64,
}

/// Outcome of consuming a reset token.
#[derive(Debug, PartialEq, Eq)]
pub enum Consumed {
    /// The token was valid: the account now has the new hash and the token is gone.
    Done(Account),
    /// Unknown, already used, or expired: one answer for all three.
    Invalid,
}

impl DataDb {
    /// Opens the data DB. `guard` counts the starts that began opening it and did not
    /// finish: it is written before the open and removed after it. A crash inside the
    /// storage engine on damaged flash (a panic aborts) leaves it behind; after
    /// [`OPEN_ATTEMPTS`] such starts in a row the DB is reported as damaged instead of
    /// crashing again — no crash loop. A single power cut or kill during the open is not
    /// taken for damage.
    pub fn open(path: &Path, cache_capacity: u64, guard: &Path) -> Result<DataDb, StoreError> {
        let attempts = std::fs::read_to_string(guard)
            .ok()
            .map(|t| t.trim().parse::<u32>().unwrap_or(OPEN_ATTEMPTS))
            .unwrap_or(0);
        if attempts >= OPEN_ATTEMPTS {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "{attempts} starts in a row stopped while opening it (guard file {})",
                    guard.display()
                ),
            });
        }
        if let Some(parent) = guard.parent() {
            std::fs::create_dir_all(parent).map_err(StoreError::Io)?;
        }
        let guarded = match crate::fsutil::write_atomic(
            guard,
            format!("{}\n", attempts + 1).as_bytes(),
            0o600,
        ) {
            Ok(()) => true,
            // A full flash has no room for the guard either; the open goes on without
            // it (the admin must be able to sign in to free space).
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                tracing::warn!("the flash is full: opening the data DB without its guard file");
                false
            }
            Err(e) => return Err(StoreError::Io(e)),
        };
        let this = DataDb {
            path: path.to_path_buf(),
            cache_capacity,
            open: RwLock::new(None),
            audit_next: AtomicU64::new(0),
            audit_len: AtomicUsize::new(0),
        };
        let opened = {
            let mut slot = this.slot_mut();
            match this.load(path, None, &mut slot) {
                // sled's open writes: on a full flash it fails even for reading. Start
                // on a RAM copy (sign-in works, writes answer 507 and try flash again).
                Err(StoreError::Full) if path.exists() => {
                    tracing::warn!(
                        "data DB {}: the flash is full; reading from a copy in RAM until \
                         writes work again",
                        path.display()
                    );
                    this.load_ram_copy(&mut slot);
                    if slot.is_some() {
                        Ok(())
                    } else {
                        Err(StoreError::Full)
                    }
                }
                other => other,
            }
        };
        // The open returned (well or badly): it did not crash, so the guard goes.
        if guarded {
            std::fs::remove_file(guard).map_err(StoreError::Io)?;
        }
        opened.map(|()| this)
    }

    fn slot_mut(&self) -> std::sync::RwLockWriteGuard<'_, Option<Trees>> {
        self.open.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the DB from `dir` (the flash copy, or a RAM copy of it) into `slot`,
    /// recounts the audit ring and checks the accounts.
    fn load(
        &self,
        dir: &Path,
        ram_copy: Option<RamCopy>,
        slot: &mut Option<Trees>,
    ) -> Result<(), StoreError> {
        let db = open_sled(dir, self.cache_capacity)?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| self.err(e));
        let t = Trees {
            ram_copy,
            accounts: tree("accounts")?,
            settings: tree("settings")?,
            tokens: tree("tokens")?,
            audit: tree("audit")?,
            db,
        };
        let (mut next, mut len) = (0, 0);
        for k in t.audit.iter().keys() {
            let k = k.map_err(|e| self.err(e))?;
            let seq = k.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
            next = next.max(seq + 1);
            len += 1;
        }
        self.audit_next.store(next, SeqCst);
        self.audit_len.store(len, SeqCst);
        // Read every account once: a damaged record is found now, at start, not at login.
        self.accounts_in(&t)?;
        // sled reads some kinds of overwritten files as an *empty* database. If this DB
        // was initialised before and `admin` is gone, the data was lost: report damage
        // rather than silently starting over from the label password.
        let admin = t.accounts.get(ADMIN).map_err(|e| self.err(e))?;
        if dir.join(INITIALISED).exists() && admin.is_none() {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: "the admin account is missing from an initialised database".into(),
            });
        }
        *slot = Some(t);
        Ok(())
    }

    /// Runs `f` on the open DB.
    ///
    /// A write fault (flash full, I/O error) stops sled's log writer for good, while its
    /// memory may still hold the write that failed — a change the client was told did
    /// not happen. So after one, the DB is closed and opened again from flash: what was
    /// acknowledged is there, the failed write is not, and the next write works again
    /// once the fault has cleared. sled's open writes too, so while the fault lasts it
    /// fails: reads then go to a copy in RAM of what is on flash (the admin can still
    /// sign in to a box whose flash is full), and every write tries flash again first.
    fn with<R>(
        &self,
        access: Access,
        f: impl FnOnce(&Trees) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let usable = |slot: &Option<Trees>| match slot {
            Some(t) if t.db.io_error().is_ok() => t.ram_copy.is_none() || access == Access::Read,
            _ => false,
        };
        let mut slot = self.open.read().unwrap_or_else(PoisonError::into_inner);
        if !usable(&slot) {
            drop(slot);
            if access == Access::Audit {
                // Best effort: an audit event never waits for a reopen.
                return Err(StoreError::Io(std::io::Error::other(
                    "the data DB is recovering from a flash fault",
                )));
            }
            let reopened = self.reopen();
            slot = self.open.read().unwrap_or_else(PoisonError::into_inner);
            if !usable(&slot) {
                return Err(reopened.err().unwrap_or_else(|| {
                    StoreError::Io(std::io::Error::other(
                        "the data DB failed again right after it was reopened",
                    ))
                }));
            }
        }
        let Some(t) = slot.as_ref() else {
            unreachable!("usable() holds only for an open DB")
        };
        let r = f(t);
        if matches!(r, Err(StoreError::Full | StoreError::Io(_))) && t.db.io_error().is_err() {
            drop(slot);
            let _ = self.reopen();
        }
        r
    }

    /// Replaces a DB whose log writer stopped (or a RAM copy) by a fresh open from
    /// flash; if that fails, by a RAM copy of the flash files for reads, and returns the
    /// flash error.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self.slot_mut();
        if let Some(t) = slot.as_ref() {
            match t.db.io_error() {
                Ok(()) if t.ram_copy.is_none() => return Ok(()), // another request did it
                Ok(()) => {}
                Err(e) => tracing::warn!(
                    "data DB {}: a write to flash failed ({}); reopening it from flash",
                    self.path.display(),
                    self.err(e)
                ),
            }
        }
        // The old instance goes first: sled holds a lock on its files.
        *slot = None;
        let flash = self.load(&self.path, None, &mut slot);
        match &flash {
            Ok(()) => tracing::info!("data DB {}: reopened from flash", self.path.display()),
            Err(e) => {
                tracing::warn!(
                    "data DB {}: cannot reopen it from flash ({e}); reads go to a RAM copy, \
                     writes fail until flash works again",
                    self.path.display()
                );
                self.load_ram_copy(&mut slot);
            }
        }
        flash
    }

    /// Opens a RAM copy of the flash files into `slot` (reads only); logs if it cannot.
    fn load_ram_copy(&self, slot: &mut Option<Trees>) {
        let copied = RamCopy::of(&self.path, "data").map_err(StoreError::Io);
        let loaded = copied.and_then(|copy| {
            let dir = copy.0.clone();
            self.load(&dir, Some(copy), slot)
        });
        if let Err(e) = loaded {
            tracing::warn!("data DB {}: no RAM copy either: {e}", self.path.display());
        }
    }

    /// Written once `admin` exists; lives inside the DB directory, so erasing the data DB
    /// erases it too.
    fn initialised_marker(&self) -> PathBuf {
        self.path.join(INITIALISED)
    }

    fn err(&self, e: sled::Error) -> StoreError {
        StoreError::from_sled(&self.path, e)
    }

    fn flush(&self, t: &Trees) -> Result<(), StoreError> {
        t.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }

    pub fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        self.with(Access::Read, |t| {
            let v = t.accounts.get(username).map_err(|e| self.err(e))?;
            v.map(|b| decode(username, &b)).transpose()
        })
    }

    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.with(Access::Read, |t| self.accounts_in(t))
    }

    fn accounts_in(&self, t: &Trees) -> Result<Vec<Account>, StoreError> {
        let mut out = Vec::new();
        for kv in t.accounts.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push(decode(&String::from_utf8_lossy(&k), &v)?);
        }
        Ok(out)
    }

    /// Creates or replaces an account and flushes it to flash before returning.
    pub fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        let bytes = encode(&account.username, account)?;
        self.with(Access::Write, |t| {
            t.accounts
                .insert(account.username.as_bytes(), bytes)
                .map_err(|e| self.err(e))?;
            self.flush(t)
        })
    }

    /// Changes an account in place and flushes it: `change` is applied to the record as
    /// it is at write time (compare-and-swap, retried if another write got in between), so
    /// a slow flow — a password change that hashed for 50 ms — cannot put back fields that
    /// changed meanwhile. `None` if the account does not exist.
    pub fn update_account(
        &self,
        username: &str,
        change: impl Fn(&mut Account),
    ) -> Result<Option<Account>, StoreError> {
        self.with(Access::Write, |t| {
            let updated = self.update_in(t, username, &change)?;
            if updated.is_some() {
                self.flush(t)?;
            }
            Ok(updated)
        })
    }

    /// [`Self::update_account`] for a change of password or recovery address: every
    /// reset token of the account goes in the same flushed write — removed first, so a
    /// power cut between the two can only have removed tokens, never kept one alive.
    pub fn update_account_revoking_tokens(
        &self,
        username: &str,
        change: impl Fn(&mut Account),
    ) -> Result<Option<Account>, StoreError> {
        self.with(Access::Write, |t| {
            self.remove_tokens_of(t, username)?;
            let updated = self.update_in(t, username, &change)?;
            self.flush(t)?;
            Ok(updated)
        })
    }

    fn update_in(
        &self,
        t: &Trees,
        username: &str,
        change: &impl Fn(&mut Account),
    ) -> Result<Option<Account>, StoreError> {
        loop {
            let Some(old) = t.accounts.get(username).map_err(|e| self.err(e))? else {
                return Ok(None);
            };
            let mut account = decode(username, &old)?;
            change(&mut account);
            let new = encode(username, &account)?;
            let swapped = t
                .accounts
                .compare_and_swap(username, Some(old), Some(new))
                .map_err(|e| self.err(e))?;
            if swapped.is_ok() {
                return Ok(Some(account));
            }
        }
    }

    /// Creates an account unless one with that name exists (checked and written in one
    /// step); flushed. False if it existed.
    pub fn insert_new_account(&self, account: &Account) -> Result<bool, StoreError> {
        let bytes = encode(&account.username, account)?;
        self.with(Access::Write, |t| {
            let swapped = t
                .accounts
                .compare_and_swap(
                    account.username.as_bytes(),
                    None as Option<&[u8]>,
                    Some(bytes),
                )
                .map_err(|e| self.err(e))?;
            if swapped.is_err() {
                return Ok(false);
            }
            self.flush(t)?;
            Ok(true)
        })
    }

    /// Deletes an account and its reset tokens, flushed. Returns false if it did not exist.
    pub fn delete_account(&self, username: &str) -> Result<bool, StoreError> {
        self.with(Access::Write, |t| {
            let existed = t
                .accounts
                .remove(username)
                .map_err(|e| self.err(e))?
                .is_some();
            self.remove_tokens_of(t, username)?;
            self.flush(t)?;
            Ok(existed)
        })
    }

    /// A JSON setting, if set.
    pub fn setting<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let v = self.with(Access::Read, |t| {
            t.settings.get(name).map_err(|e| self.err(e))
        })?;
        v.map(|b| {
            serde_json::from_slice(&b).map_err(|e| StoreError::Decode {
                key: format!("settings/{name}"),
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    /// Stores a JSON setting and flushes it before returning.
    pub fn put_setting<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let bytes = encode(&format!("settings/{name}"), value)?;
        self.with(Access::Write, |t| {
            t.settings.insert(name, bytes).map_err(|e| self.err(e))?;
            self.flush(t)
        })
    }

    fn remove_tokens_of(&self, t: &Trees, username: &str) -> Result<usize, StoreError> {
        let mut n = 0;
        for kv in t.tokens.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let stale = match serde_json::from_slice::<ResetToken>(&v) {
                Ok(t) => t.username == username,
                Err(_) => true, // an undecodable token can never be used: drop it
            };
            if stale {
                t.tokens.remove(k).map_err(|e| self.err(e))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Stores a new reset token (by its digest) and removes the account's older ones and
    /// every expired one; flushed before returning.
    pub fn issue_token(
        &self,
        digest: [u8; 32],
        token: &ResetToken,
        now: u64,
    ) -> Result<(), StoreError> {
        let bytes = encode("token", token)?;
        self.with(Access::Write, |t| {
            self.remove_tokens_of(t, &token.username)?;
            for kv in t.tokens.iter() {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                if serde_json::from_slice::<ResetToken>(&v).map_or(true, |t| t.expires_at <= now) {
                    t.tokens.remove(k).map_err(|e| self.err(e))?;
                }
            }
            t.tokens.insert(digest, bytes).map_err(|e| self.err(e))?;
            self.flush(t)
        })
    }

    /// Whether a token digest is currently valid (for the reset page), without using it.
    pub fn token_valid(
        &self,
        digest: &[u8; 32],
        now: u64,
    ) -> Result<Option<ResetToken>, StoreError> {
        let v = self.with(Access::Read, |t| {
            t.tokens.get(digest).map_err(|e| self.err(e))
        })?;
        Ok(
            v.and_then(|b| serde_json::from_slice::<ResetToken>(&b).ok())
                .filter(|t| t.expires_at > now && t.issued_at <= now),
        )
    }

    /// Atomically: checks the token, sets the account's new password hash, clears the
    /// forced change, and removes the token — so a token works exactly once even when two
    /// requests race. Flushed before returning.
    pub fn consume_token(
        &self,
        digest: &[u8; 32],
        now: u64,
        new_hash: &str,
    ) -> Result<Consumed, StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let abort = |key: &str, e: serde_json::Error| {
            ConflictableTransactionError::Abort(StoreError::Decode {
                key: key.into(),
                detail: e.to_string(),
            })
        };
        self.with(Access::Write, |t| {
            let result = (&t.tokens, &t.accounts).transaction(|(tokens, accounts)| {
                let Some(raw) = tokens.remove(&digest[..])? else {
                    return Ok(Consumed::Invalid);
                };
                let token: ResetToken =
                    serde_json::from_slice(&raw).map_err(|e| abort("token", e))?;
                // Expired, or issued "after now" (a board without RTC whose clock
                // jumped back): one answer.
                if token.expires_at <= now || now < token.issued_at {
                    return Ok(Consumed::Invalid);
                }
                let Some(raw) = accounts.get(token.username.as_bytes())? else {
                    return Ok(Consumed::Invalid);
                };
                let mut account: Account =
                    serde_json::from_slice(&raw).map_err(|e| abort(&token.username, e))?;
                account.password_hash = new_hash.to_string();
                account.must_change_password = false;
                account.password_changed_at = now;
                let bytes = serde_json::to_vec(&account).map_err(|e| abort(&token.username, e))?;
                accounts.insert(account.username.as_bytes(), bytes)?;
                Ok(Consumed::Done(account))
            });
            let consumed = match result {
                Ok(c) => c,
                Err(TransactionError::Abort(e)) => return Err(e),
                Err(TransactionError::Storage(e)) => return Err(self.err(e)),
            };
            if let Consumed::Done(a) = &consumed {
                // Any other token of the account dies with this one.
                self.remove_tokens_of(t, &a.username)?;
            }
            self.flush(t)?;
            Ok(consumed)
        })
    }

    /// Appends an audit event to the bounded ring. Not flushed on its own: sled's
    /// background flush (1 s) batches them, so a flood of failed logins does not turn
    /// into one flash write each.
    pub fn audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let bytes = encode("audit", event)?;
        self.with(Access::Audit, |t| {
            let next = self.audit_next.fetch_add(1, SeqCst);
            t.audit
                .insert(next.to_be_bytes(), bytes)
                .map_err(|e| self.err(e))?;
            if self.audit_len.fetch_add(1, SeqCst) >= AUDIT_MAX
                && t.audit.pop_min().map_err(|e| self.err(e))?.is_some()
            {
                self.audit_len.fetch_sub(1, SeqCst);
            }
            Ok(())
        })
    }

    /// Audit events, newest first.
    pub fn audit_events(&self) -> Result<Vec<AuditEvent>, StoreError> {
        let mut out = Vec::new();
        self.with(Access::Read, |t| {
            for kv in t.audit.iter() {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                if let Ok(ev) = serde_json::from_slice(&v) {
                    out.push(ev);
                }
            }
            Ok(())
        })?;
        out.reverse();
        Ok(out)
    }

    /// Flushes everything written so far (audit events before a reboot).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.with(Access::Write, |t| self.flush(t))
    }

    /// First boot: creates `admin` from the label password's hash, with a forced change.
    /// Returns true when it created the account.
    pub fn ensure_admin(&self, initial_password_hash: &str, now: u64) -> Result<bool, StoreError> {
        // A read first: at a start on a full flash (a RAM copy) a write would fail.
        if self.account(ADMIN)?.is_some() && self.initialised_marker().exists() {
            return Ok(false);
        }
        let created = self.insert_new_account(&Account {
            username: ADMIN.into(),
            role: Role::Admin,
            password_hash: initial_password_hash.into(),
            email: None,
            must_change_password: true,
            created_at: now,
            password_changed_at: now,
        })?;
        let marker = self.initialised_marker();
        if !marker.exists() {
            crate::fsutil::write_atomic(&marker, b"admin created\n", 0o600)
                .map_err(StoreError::Io)?;
        }
        Ok(created)
    }
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Decode {
        key: key.into(),
        detail: e.to_string(),
    })
}

fn decode(key: &str, bytes: &[u8]) -> Result<Account, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        key: key.into(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pbx-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn info() -> BoardInfo {
        BoardInfo {
            model: "S50".into(),
            serial: "S50-0001".into(),
            mac: "02:00:00:00:00:01".into(),
            initial_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            hw: BoardProfile::sim(),
        }
    }

    #[test]
    fn board_db_is_written_once_and_reads_back() {
        let d = tmp("board");
        let b = BoardDb::open(&d.join("board.db"), 1 << 20).expect("open");
        assert!(!b.is_provisioned().expect("read"));
        assert!(matches!(b.read(), Err(StoreError::NotProvisioned(_))));
        b.provision(&info()).expect("provision");
        assert_eq!(b.read().expect("read"), info());
        assert!(matches!(
            b.provision(&info()),
            Err(StoreError::AlreadyProvisioned(_))
        ));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn first_boot_creates_admin_with_forced_change_once() {
        let d = tmp("admin");
        let g = d.join("guard");
        let db = DataDb::open(&d.join("data.db"), 1 << 20, &g).expect("open");
        assert!(!g.exists(), "guard removed after a good open");
        assert!(db.ensure_admin("HASH", 5).expect("create"));
        assert!(!db.ensure_admin("OTHER", 6).expect("exists"));
        let a = db.account(ADMIN).expect("read").expect("present");
        assert_eq!(a.password_hash, "HASH");
        assert!(a.must_change_password);
        assert_eq!(a.role, Role::Admin);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn one_interrupted_open_is_forgiven_three_in_a_row_mean_damage() {
        let d = tmp("guard");
        std::fs::create_dir_all(&d).expect("mkdir");
        let g = d.join("guard");
        // A start killed (or a power cut) inside the open: the next start retries.
        std::fs::write(&g, "1\n").expect("write");
        let db = DataDb::open(&d.join("data.db"), 1 << 20, &g).expect("second try opens");
        assert!(!g.exists(), "guard removed after a good open");
        drop(db);
        // Three starts in a row died inside the open: damaged, no fourth crash.
        std::fs::write(&g, "3\n").expect("write");
        let r = DataDb::open(&d.join("data.db"), 1 << 20, &g);
        assert!(matches!(r, Err(StoreError::Corrupt { .. })));
        assert!(g.exists(), "stays degraded until a factory reset");
        std::fs::write(&g, "garbage").expect("write");
        assert!(
            DataDb::open(&d.join("data.db"), 1 << 20, &g).is_err(),
            "unreadable counter counts as exhausted"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn garbage_in_the_db_file_is_reported_as_corrupt() {
        let d = tmp("garbage");
        let g = d.join("guard");
        {
            let db = DataDb::open(&d.join("data.db"), 1 << 20, &g).expect("open");
            db.ensure_admin("HASH", 1).expect("create");
        }
        std::fs::write(d.join("data.db/db"), vec![0x5a; 4096]).expect("garbage");
        let r = DataDb::open(&d.join("data.db"), 1 << 20, &g);
        assert!(
            matches!(r, Err(StoreError::Corrupt { .. })),
            "{:?}",
            r.err()
        );
        assert!(!g.exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_db_that_reads_back_empty_after_init_is_damaged() {
        let d = tmp("emptied");
        let g = d.join("guard");
        {
            let db = DataDb::open(&d.join("data.db"), 1 << 20, &g).expect("open");
            db.ensure_admin("HASH", 1).expect("create");
        }
        // Remove sled's files but not the marker: the records are gone.
        for f in ["db", "conf"] {
            std::fs::remove_file(d.join("data.db").join(f)).expect("rm");
        }
        let r = DataDb::open(&d.join("data.db"), 1 << 20, &g);
        assert!(
            matches!(r, Err(StoreError::Corrupt { .. })),
            "{:?}",
            r.err()
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    fn token(user: &str, expires_at: u64) -> ResetToken {
        ResetToken {
            username: user.into(),
            expires_at,
            issued_ip: "127.0.0.1".into(),
            issued_at: 0,
        }
    }

    #[test]
    fn reset_token_works_once_and_a_newer_one_replaces_it() {
        let d = tmp("tokens");
        let db = DataDb::open(&d.join("data.db"), 1 << 20, &d.join("guard")).expect("open");
        db.ensure_admin("OLD", 1).expect("admin");
        db.issue_token([1; 32], &token(ADMIN, 100), 10)
            .expect("issue");
        db.issue_token([2; 32], &token(ADMIN, 100), 11)
            .expect("issue newer");
        assert_eq!(
            db.consume_token(&[1; 32], 20, "NEW").expect("use"),
            Consumed::Invalid,
            "replaced"
        );
        assert!(db.token_valid(&[2; 32], 20).expect("read").is_some());
        match db.consume_token(&[2; 32], 20, "NEW").expect("use") {
            Consumed::Done(a) => assert_eq!(a.password_hash, "NEW"),
            Consumed::Invalid => panic!("valid token refused"),
        }
        assert_eq!(
            db.account(ADMIN)
                .expect("read")
                .expect("admin")
                .password_hash,
            "NEW"
        );
        assert!(
            !db.account(ADMIN)
                .expect("read")
                .expect("admin")
                .must_change_password
        );
        assert_eq!(
            db.consume_token(&[2; 32], 21, "AGAIN").expect("use"),
            Consumed::Invalid,
            "used"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn expired_token_is_refused_and_changes_nothing() {
        let d = tmp("expired");
        let db = DataDb::open(&d.join("data.db"), 1 << 20, &d.join("guard")).expect("open");
        db.ensure_admin("OLD", 1).expect("admin");
        db.issue_token([3; 32], &token(ADMIN, 100), 10)
            .expect("issue");
        assert!(db.token_valid(&[3; 32], 100).expect("read").is_none());
        assert_eq!(
            db.consume_token(&[3; 32], 100, "NEW").expect("use"),
            Consumed::Invalid
        );
        assert_eq!(
            db.account(ADMIN)
                .expect("read")
                .expect("admin")
                .password_hash,
            "OLD"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A board without an RTC whose clock jumped back: a token "from the future" is
    /// not valid (its expiry would be meaningless).
    #[test]
    fn a_token_issued_after_now_is_refused() {
        let d = tmp("clock-back");
        let db = DataDb::open(&d.join("data.db"), 1 << 20, &d.join("guard")).expect("open");
        db.ensure_admin("OLD", 1).expect("admin");
        let t = ResetToken {
            issued_at: 5000,
            ..token(ADMIN, 6800)
        };
        db.issue_token([4; 32], &t, 5000).expect("issue");
        assert!(db.token_valid(&[4; 32], 5000).expect("read").is_some());
        assert!(db.token_valid(&[4; 32], 4999).expect("read").is_none());
        assert_eq!(
            db.consume_token(&[4; 32], 100, "NEW").expect("use"),
            Consumed::Invalid
        );
        assert_eq!(
            db.account(ADMIN)
                .expect("read")
                .expect("admin")
                .password_hash,
            "OLD"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn revoking_update_removes_the_accounts_tokens_in_the_same_write() {
        let d = tmp("revoke");
        let db = DataDb::open(&d.join("data.db"), 1 << 20, &d.join("guard")).expect("open");
        db.ensure_admin("OLD", 1).expect("admin");
        db.issue_token([5; 32], &token(ADMIN, 100), 10)
            .expect("issue");
        db.update_account_revoking_tokens(ADMIN, |a| a.password_hash = "NEW".into())
            .expect("update");
        assert!(db.token_valid(&[5; 32], 20).expect("read").is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn audit_ring_keeps_the_newest_1000() {
        let d = tmp("audit");
        let db = DataDb::open(&d.join("data.db"), 1 << 20, &d.join("guard")).expect("open");
        for i in 0..(AUDIT_MAX as u64 + 5) {
            let ev = AuditEvent {
                at: i,
                event: "login_failed".into(),
                username: None,
                ip: None,
                detail: None,
            };
            db.audit(&ev).expect("audit");
        }
        let all = db.audit_events().expect("read");
        assert_eq!(all.len(), AUDIT_MAX);
        assert_eq!(all[0].at, AUDIT_MAX as u64 + 4, "newest first");
        assert_eq!(all[AUDIT_MAX - 1].at, 5, "oldest dropped");
        drop(db);
        // After a restart the sequence continues: the new event is the newest.
        let db = DataDb::open(&d.join("data.db"), 1 << 20, &d.join("guard")).expect("reopen");
        let ev = AuditEvent {
            at: 9999,
            event: "login".into(),
            username: None,
            ip: None,
            detail: None,
        };
        db.audit(&ev).expect("audit");
        let all = db.audit_events().expect("read");
        assert_eq!((all.len(), all[0].at), (AUDIT_MAX, 9999));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn updates_apply_to_the_record_as_it_is_at_write_time() {
        let d = tmp("update");
        let db = DataDb::open(&d.join("data.db"), 1 << 20, &d.join("guard")).expect("open");
        db.ensure_admin("OLD", 1).expect("admin");
        // A slow flow read the account earlier; meanwhile the email was bound.
        let stale = db.account(ADMIN).expect("read").expect("admin");
        db.update_account(ADMIN, |a| a.email = Some("a@pbx.test".into()))
            .expect("email");
        db.update_account(ADMIN, |a| a.password_hash = "NEW".into())
            .expect("password");
        let a = db.account(ADMIN).expect("read").expect("admin");
        assert_eq!(
            (a.password_hash.as_str(), a.email.as_deref()),
            ("NEW", Some("a@pbx.test"))
        );
        assert_eq!(stale.email, None);
        assert_eq!(db.update_account("nobody", |_| {}).expect("read"), None);
        let mut ext = a.clone();
        ext.username = "1001".into();
        assert!(db.insert_new_account(&ext).expect("create"));
        assert!(
            !db.insert_new_account(&ext).expect("exists"),
            "no overwrite"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn settings_round_trip() {
        let d = tmp("settings");
        let db = DataDb::open(&d.join("data.db"), 1 << 20, &d.join("guard")).expect("open");
        assert_eq!(db.setting::<String>("smtp").expect("read"), None);
        db.put_setting("smtp", &"x".to_string()).expect("write");
        assert_eq!(
            db.setting::<String>("smtp").expect("read").as_deref(),
            Some("x")
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn debug_output_hides_hashes() {
        let s = format!("{:?}", info());
        assert!(!s.contains("argon2id"), "{s}");
    }
}
