//! Typed wrapper over the two sled databases on flash (spec §3).
//!
//! - [`BoardDb`] ([`board`]): factory data written once by `provision`, read-only at
//!   run time, never erased.
//! - [`DataDb`]: user data, erased by a factory reset. This file opens it (with the
//!   crash-loop guard), runs every access through [`DataDb::with`] (a write fault
//!   reopens it from flash; meanwhile reads use a [`ramcopy`]), flushes, and closes it
//!   for a factory reset. One file per tree: [`accounts`], [`settings`], [`tokens`],
//!   [`audit`]; sled itself (open, record encoding) in [`engine`].
//!
//! Every write that changes a credential or a setting is flushed (fsync) before it
//! returns, so a response is only sent for a write that survives a power cut.
//! These methods block on flash; async code calls them through [`Store`].

mod accounts;
mod audit;
mod board;
mod engine;
mod error;
mod handle;
mod ramcopy;
mod settings;
#[cfg(test)]
mod tests;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{PoisonError, RwLock};

use crate::model::{Account, ADMIN};

pub use board::BoardDb;
use engine::{decode, encode, open_sled};
pub use error::StoreError;
use ramcopy::RamCopy;

pub use handle::{Setting, Store};
pub use tokens::Consumed;

/// What an account update decided: the record as written (or as it was, when the change
/// left it alone) and what the change returned.
#[derive(Debug)]
pub struct Updated<R> {
    pub account: Account,
    pub decided: R,
}

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
    /// Set by [`DataDb::close`]: a factory reset is erasing the files; never reopened.
    closed: AtomicBool,
    /// Explicit flushes (fsyncs) since start, for `ctl status`: flash wear is visible.
    flushes: AtomicU64,
}

/// One open instance of the data DB.
pub(super) struct Trees {
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

/// The data DB's format: what this firmware writes, and the newest it reads. A DB
/// without one was written before formats were recorded, in format 1. Raise it with
/// every change of what is stored that an older firmware would misread, add the step
/// from the one before to [`DataDb::migrate`], and make a fixture of the last release
/// first (`make fixture`).
pub const FORMAT: u32 = 1;

/// The setting that records [`FORMAT`].
const FORMAT_KEY: &str = "format";

/// Most audit events kept; the oldest go first.
pub const AUDIT_MAX: usize = 1000;

/// File in the data DB directory written once `admin` exists.
const INITIALISED: &str = "pbx-initialised";

/// What a [`DataDb::with`] call does: reads may use the RAM copy kept during a flash
/// fault; writes need flash; audit events are best effort and never wait for a reopen.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
    Audit,
}

/// The kernel's id of this boot: a power cut or a reboot gives a new one.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Starts that stopped while opening the data DB, from the guard file's text
/// ("count boot-id"): those of an earlier boot ended with the machine (a power cut, a
/// reboot), not with a crash of the engine, and count for nothing. A count that cannot
/// be read counts as all of them.
fn attempts_in_this_boot(guard: Option<String>, boot: Option<&str>) -> u32 {
    let Some(text) = guard else { return 0 };
    let mut fields = text.split_whitespace();
    let count = fields.next().and_then(|c| c.parse::<u32>().ok());
    match (fields.next(), boot) {
        (Some(then), Some(now)) if then != now => 0,
        _ => count.unwrap_or(OPEN_ATTEMPTS),
    }
}

impl DataDb {
    /// Opens the data DB. `guard` counts the starts that began opening it and did not
    /// finish, with the boot they were in: it is written before the open and removed
    /// after it. A crash inside the storage engine on damaged flash (a panic aborts)
    /// leaves it behind; after [`OPEN_ATTEMPTS`] such starts in a row in one boot the DB
    /// is reported as damaged instead of crashing again — no crash loop. A kill during
    /// the open is forgiven once, power cuts always (the next start is a new boot).
    pub fn open(path: &Path, cache_capacity: u64, guard: &Path) -> Result<DataDb, StoreError> {
        let boot = std::fs::read_to_string(BOOT_ID).ok();
        let boot = boot.as_deref().map(str::trim);
        let attempts = attempts_in_this_boot(std::fs::read_to_string(guard).ok(), boot);
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
            format!("{} {}\n", attempts + 1, boot.unwrap_or_default()).as_bytes(),
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
            closed: AtomicBool::new(false),
            flushes: AtomicU64::new(0),
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
        // The open returned (well or badly): it did not crash, so the guard goes, for
        // good: a guard back from the journal after a power cut counts a start that
        // did not fail.
        if guarded {
            crate::fsutil::remove_durably(guard).map_err(StoreError::Io)?;
        }
        opened?;
        this.check_format()?;
        Ok(this)
    }

    /// Brings an older format up to [`FORMAT`] in one flushed step at start (a DB from
    /// before formats were recorded counts as format 1), and refuses a newer one without
    /// writing to it.
    fn check_format(&self) -> Result<(), StoreError> {
        let found = self.setting::<u32>(FORMAT_KEY)?;
        match found {
            Some(n) if n == FORMAT => Ok(()),
            Some(n) if n > FORMAT => Err(StoreError::NewerFormat {
                found: n,
                supported: FORMAT,
            }),
            _ => {
                let from = found.unwrap_or(1);
                match self.migrate(from) {
                    Ok(()) => {
                        tracing::info!(from, to = FORMAT, "data DB format recorded");
                        Ok(())
                    }
                    // A full flash (a RAM copy): reads go on, the step is taken at the
                    // next start with room.
                    Err(StoreError::Full) => {
                        tracing::warn!("the flash is full: the data DB format is recorded later");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Every step from format `from` to [`FORMAT`], and the new format, in one flushed
    /// write. There is one format so far: only the number is written.
    fn migrate(&self, from: u32) -> Result<(), StoreError> {
        debug_assert!(from <= FORMAT);
        self.put_setting(FORMAT_KEY, &FORMAT)
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
            if self.closed.load(SeqCst) {
                return Err(StoreError::Io(std::io::Error::other(
                    "the data DB is closed: a factory reset is erasing it",
                )));
            }
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
        self.flushes.fetch_add(1, SeqCst);
        t.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }

    /// Explicit flushes since start.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(SeqCst)
    }

    /// Flushes everything written so far (audit events before a reboot).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.with(Access::Write, |t| self.flush(t))
    }

    /// Closes the DB for good before a factory reset erases it: flushes, and lets go of
    /// sled's handle so that its files are no longer open — their flash volume can then
    /// be unmounted and emptied as a whole. Every later use fails; nothing reopens it.
    /// Waits for the calls in progress (they hold the slot).
    pub fn close(&self) -> Result<(), StoreError> {
        self.closed.store(true, SeqCst);
        let mut slot = self.slot_mut();
        let flushed = match slot.as_ref() {
            Some(t) => self.flush(t),
            None => Ok(()),
        };
        *slot = None;
        flushed
    }

    /// After an erase that failed (the box does not reboot): the next use opens the DB
    /// from flash again.
    pub fn open_again(&self) {
        self.closed.store(false, SeqCst);
    }
}
