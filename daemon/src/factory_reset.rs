//! The factory-reset erase (spec §6): write a *reset-pending* marker (flushed) → erase
//! every user-data target (the data DB, `reset.erase_paths`, the MTD partitions and UBI
//! volumes named in the board profile) → remove the marker → reboot.
//!
//! Every step is idempotent, so an erase cut short (power loss, SIGKILL) is simply run
//! again: at start-up a present marker means "finish the erase before serving anything".
//! The board DB (factory data and the label password's hash) is never touched.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pbx_board::{Board, BoardProfile, Pattern};

use crate::app::App;
use crate::config::Config;
use crate::model::AuditKind;

pub const MARKER: &str = "reset-pending";

pub fn marker_path(config: &Config) -> PathBuf {
    config.storage.state_dir.join(MARKER)
}

fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            // Contents first: a target that is a mount point (its own flash volume)
            // cannot itself be removed, but emptying it is the erase.
            for entry in std::fs::read_dir(path)? {
                remove_tree(&entry?.path())?;
            }
            match std::fs::remove_dir(path) {
                Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => Ok(()),
                other => other,
            }
        }
        // Files, and symlinks *inside* a target: unlinked, never followed.
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Erases one configured target: what it resolves to (a symlinked target's data is the
/// data to erase), then the link itself. A target that resolves into the board DB, a
/// system directory or the binary's directory is refused (validation refuses it too; a
/// link changed since then is caught here).
fn remove_target(path: &Path, keep: &[(&str, PathBuf)]) -> io::Result<()> {
    let real = crate::fsutil::resolve(path)?;
    if let Some(why) = crate::fsutil::forbidden_target(&real, keep) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("not erased: it resolves to {}, and {why}", real.display()),
        ));
    }
    remove_tree(&real)?;
    sync_parent(&real);
    if real != path && std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
        crate::fsutil::remove_durably(path)?;
    }
    Ok(())
}

fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

fn write_marker(marker: &Path) -> io::Result<()> {
    crate::fsutil::write_atomic(marker, b"factory reset in progress\n", 0o600)
}

/// A finished erase: the accounts and passwords are gone. `left` names the other targets
/// that could not be erased (logged; a half-dead partition must not keep the box in a
/// reset loop).
#[derive(Debug, Default)]
pub struct Erased {
    pub left: Vec<Leftover>,
}

/// One erase target that failed.
#[derive(Debug)]
pub struct Leftover {
    pub target: String,
    pub error: String,
}

/// The data DB — the accounts and their passwords — could not be erased: the old
/// password would survive a reset reported as done. The marker stays (the erase is tried
/// again at the next start) and the box must not reboot as if the reset were done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotErased {
    pub path: PathBuf,
    pub error: String,
}

impl std::fmt::Display for NotErased {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the factory reset could not erase the user data at {} ({})",
            self.path.display(),
            self.error
        )
    }
}

/// Runs the whole erase. Errors on single targets are logged and the erase goes on;
/// only the data DB's decides the outcome (see [`NotErased`]).
pub fn erase(
    config: &Config,
    board: &dyn Board,
    profile: Option<&BoardProfile>,
) -> Result<Erased, NotErased> {
    let marker = marker_path(config);
    let keep = crate::fsutil::kept_paths(&config.storage.board_db);
    if let Some(led) = profile.and_then(|p| p.status_led.as_deref()) {
        let _ = board.set_led(led, Pattern::Erasing);
    }
    tracing::warn!("factory reset: erasing all user data");
    let erase_data_db = || {
        let r = remove_target(&config.storage.data_db, &keep);
        sync_parent(&config.storage.data_db);
        r
    };
    // The marker first, so a power cut mid-erase is finished at the next start. On a
    // full flash — exactly when the button may be the only way back — it cannot be
    // written: the data DB goes first then (which frees space), and the marker after.
    let mut data_db = None;
    let _ = std::fs::create_dir_all(&config.storage.state_dir);
    if let Err(e) = write_marker(&marker) {
        tracing::warn!(
            "factory reset: cannot write the marker ({e}); erasing the data DB first to make room"
        );
        let r = erase_data_db();
        if let Err(e) = &r {
            let why = NotErased {
                path: config.storage.data_db.clone(),
                error: e.to_string(),
            };
            tracing::error!("{why}; nothing else was touched");
            return Err(why);
        }
        data_db = Some(r);
        if let Err(e) = write_marker(&marker) {
            tracing::warn!(
                "factory reset: still cannot write the marker ({e}); going on without it"
            );
        }
    }
    let mut done = Erased::default();
    let mut step = |target: String, r: io::Result<()>| match r {
        Ok(()) => tracing::info!("factory reset: erased {target}"),
        Err(e) => {
            tracing::error!("factory reset: {target}: {e}");
            done.left.push(Leftover {
                target,
                error: e.to_string(),
            });
        }
    };
    let data_db = data_db.unwrap_or_else(erase_data_db);
    let data_db_error = data_db.as_ref().err().map(|e| e.to_string());
    step(
        format!("data DB {}", config.storage.data_db.display()),
        data_db,
    );
    // The failed-open counter belongs to the erased DB: a reset is the way out of it.
    let guard = crate::app::open_guard_path(config);
    step(guard.display().to_string(), remove_tree(&guard));
    for p in &config.reset.erase_paths {
        step(p.display().to_string(), remove_target(p, &keep));
    }
    if let Some(profile) = profile {
        for m in &profile.mtd_erase {
            step(
                format!("MTD partition {m:?}"),
                board.erase_partition(m, false),
            );
        }
        for u in &profile.ubi_erase {
            step(format!("UBI volume {u:?}"), board.erase_partition(u, true));
        }
    }
    nix::unistd::sync();
    if let Some(error) = data_db_error {
        // The old password would survive a reset reported as done: keep the marker.
        let why = NotErased {
            path: config.storage.data_db.clone(),
            error,
        };
        tracing::error!("{why}; the reset is tried again at the next start");
        return Err(why);
    }
    if let Err(e) = crate::fsutil::remove_durably(&marker) {
        tracing::warn!("factory reset: cannot remove the marker: {e}");
    }
    tracing::warn!("factory reset: erase complete");
    Ok(done)
}

/// At start-up, before anything is served: finishes an interrupted erase. `Ok(true)` if
/// one was pending and is done; `Err` if the user data could not be erased (the
/// daemon then starts degraded with that reason, instead of exiting into a respawn loop).
pub fn resume_if_pending(
    config: &Config,
    board: &dyn Board,
    profile: Option<&BoardProfile>,
) -> Result<bool, NotErased> {
    if !marker_path(config).exists() {
        return Ok(false);
    }
    tracing::warn!("a factory reset was interrupted; finishing it before serving");
    erase(config, board, profile).map(|_| true)
}

/// What the box says when an erase failed: LED, status (health), audit.
pub fn report_failure(app: &App, why: NotErased) {
    if let Some(led) = app
        .board_info()
        .as_ref()
        .and_then(|b| b.hw.status_led.clone())
    {
        let _ = app.board().set_led(&led, Pattern::ResetFailed);
    }
    let why = why.to_string();
    app.audit(AuditKind::FactoryResetFailed, None, None, Some(&why));
    app.reset_failed(why);
}

/// Starts a factory reset from a running daemon (button, control socket, API): the
/// erase runs off the runtime, then the box reboots. Later presses are ignored. From
/// now on sign-in and the API answer 503 `factory_reset_in_progress`.
pub fn start(app: &Arc<App>, source: &str) -> bool {
    if !app.begin_reset() {
        return false;
    }
    app.audit(AuditKind::FactoryReset, None, None, Some(source));
    tracing::warn!(source, "factory reset requested");
    let app = Arc::clone(app);
    // Off the runtime: the flush and the erase are flash I/O.
    std::thread::spawn(move || {
        // The audit ring is erased too, but the event reaches the flash first. Closed,
        // the DB's files are no longer open: a flash volume that holds them can be
        // unmounted and emptied as a whole (UBI refuses to update a mounted volume).
        let data = app.data().ok();
        if let Some(Err(e)) = data.as_ref().map(|d| d.blocking().close()) {
            tracing::warn!("factory reset: last flush of the data DB failed: {e}");
        }
        let config = app.config();
        let profile = app.board_info().map(|b| b.hw.clone());
        match erase(&config, app.board(), profile.as_ref()) {
            Ok(_) => {
                let e = app.board().reboot();
                tracing::error!("reboot failed: {e}");
            }
            Err(why) => {
                // No reboot: nothing that matters was erased, and a restart would only
                // find the same fault. The box says so and a new reset may be tried.
                if let Some(d) = &data {
                    d.blocking().open_again();
                }
                // Degraded with the reason; a new reset may be tried.
                report_failure(&app, why);
            }
        }
    });
    true
}

#[cfg(test)]
mod tests {
    /// A symlinked target's data is erased (and the link); links *inside* a target are
    /// unlinked, not followed; a target whose link was turned to the board DB after
    /// validation is refused at erase time and nothing behind it is touched.
    #[test]
    fn symlinked_targets_are_erased_behind_the_link_and_nothing_outside() {
        let d = std::env::temp_dir().join(format!("pbx-reset-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mk = |p: &str, content: &[u8]| {
            let p = d.join(p);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, content).expect("write");
        };
        mk("flash/voicemail/msg1.wav", b"RIFF");
        mk("outside/keep.txt", b"not user data");
        mk("factory/board.db/db", b"factory");
        std::os::unix::fs::symlink(d.join("outside"), d.join("flash/voicemail/escape"))
            .expect("link inside");
        std::os::unix::fs::symlink(d.join("flash/voicemail"), d.join("vm")).expect("link");
        std::os::unix::fs::symlink(d.join("factory/board.db"), d.join("trap")).expect("link");
        let keep = vec![("the board DB", d.join("factory/board.db"))];

        remove_target(&d.join("vm"), &keep).expect("erase through the link");
        assert!(
            !d.join("flash/voicemail").exists(),
            "data behind the link erased"
        );
        assert!(
            std::fs::symlink_metadata(d.join("vm")).is_err(),
            "link removed"
        );
        assert_eq!(
            std::fs::read(d.join("outside/keep.txt")).expect("kept"),
            b"not user data",
            "a link inside the target was not followed"
        );
        let e = remove_target(&d.join("trap"), &keep).expect_err("board DB refused");
        assert!(e.to_string().contains("board DB"), "{e}");
        assert_eq!(
            std::fs::read(d.join("factory/board.db/db")).expect("kept"),
            b"factory"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    use super::*;
    use pbx_board::SimBoard;
    use std::net::SocketAddr;

    #[test]
    fn erase_removes_user_data_keeps_board_db_and_is_repeatable() {
        let d = std::env::temp_dir().join(format!("pbx-reset-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let a: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let config = Config::dev(&d, a, a, None).expect("dev config");
        let board = SimBoard::new(&d);
        let profile = BoardProfile::sim();
        board.prepare(&profile).expect("prepare");
        std::fs::create_dir_all(config.storage.data_db.join("x")).expect("data");
        std::fs::write(crate::app::open_guard_path(&config), "3\n").expect("guard");
        std::fs::create_dir_all(&config.reset.erase_paths[0]).expect("userfiles");
        std::fs::write(config.reset.erase_paths[0].join("greeting.wav"), b"RIFF").expect("file");
        std::fs::create_dir_all(&config.storage.board_db).expect("board db");
        std::fs::write(config.storage.board_db.join("db"), b"factory").expect("board");

        for _ in 0..2 {
            let erased = erase(&config, &board, Some(&profile)).expect("erase");
            assert!(erased.left.is_empty(), "{:?}", erased.left);
            assert!(!config.storage.data_db.exists());
            assert!(
                !crate::app::open_guard_path(&config).exists(),
                "degraded-by-guard cleared"
            );
            assert!(!config.reset.erase_paths[0].exists());
            assert!(!marker_path(&config).exists());
            for m in &profile.mtd_erase {
                let bytes = std::fs::read(board.partition_path(m)).expect("partition");
                assert!(bytes.iter().all(|&b| b == 0xFF), "{m} erased");
            }
            assert_eq!(
                std::fs::read(config.storage.board_db.join("db")).expect("board"),
                b"factory"
            );
        }
        assert_eq!(
            std::fs::read_to_string(board.led_path("status")).expect("led"),
            "erasing"
        );
        assert!(!resume_if_pending(&config, &board, Some(&profile)).expect("resume"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
