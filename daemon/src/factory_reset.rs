//! The factory-reset erase (spec §6): write a *reset-pending* marker (flushed) → erase
//! every user-data target (the data DB, `reset.erase_paths`, the MTD partitions and UBI
//! volumes named in the board profile) → remove the marker → reboot.
//!
//! Every step is idempotent, so an erase cut short (power loss, SIGKILL) is simply run
//! again: at start-up a present marker means "finish the erase before serving anything".
//! The board DB (factory data and the label password's hash) is never touched.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use pbx_board::{Board, BoardProfile, Pattern};

use crate::app::App;
use crate::config::Config;

pub const MARKER: &str = "reset-pending";

pub fn marker_path(config: &Config) -> PathBuf {
    config.state_dir.join(MARKER)
}

fn remove_all(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Runs the whole erase. Errors on single targets are logged and the erase goes on: a
/// half-dead partition must not keep the box in a reset loop. Returns the failures.
pub fn erase(
    config: &Config,
    board: &dyn Board,
    profile: Option<&BoardProfile>,
) -> io::Result<Vec<String>> {
    let marker = marker_path(config);
    std::fs::create_dir_all(&config.state_dir)?;
    crate::fsutil::write_atomic(&marker, b"factory reset in progress\n", 0o600)?;
    tracing::warn!("factory reset: erasing all user data");
    if let Some(led) = profile.and_then(|p| p.status_led.as_deref()) {
        let _ = board.set_led(led, Pattern::Erasing);
    }
    let mut failures = Vec::new();
    let mut step = |what: String, r: io::Result<()>| match r {
        Ok(()) => tracing::info!("factory reset: erased {what}"),
        Err(e) => {
            tracing::error!("factory reset: {what}: {e}");
            failures.push(format!("{what}: {e}"));
        }
    };
    step(
        format!("data DB {}", config.data_db.display()),
        remove_all(&config.data_db),
    );
    sync_parent(&config.data_db);
    // The failed-open counter belongs to the erased DB: a reset is the way out of it.
    let guard = crate::app::open_guard_path(config);
    step(guard.display().to_string(), remove_all(&guard));
    for p in &config.erase_paths {
        step(p.display().to_string(), remove_all(p));
        sync_parent(p);
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
    std::fs::remove_file(&marker)?;
    sync_parent(&marker);
    tracing::warn!("factory reset: erase complete");
    Ok(failures)
}

/// At start-up, before anything is served: finishes an interrupted erase. True if one
/// was pending.
pub fn resume_if_pending(
    config: &Config,
    board: &dyn Board,
    profile: Option<&BoardProfile>,
) -> io::Result<bool> {
    if !marker_path(config).exists() {
        return Ok(false);
    }
    tracing::warn!("a factory reset was interrupted; finishing it before serving");
    erase(config, board, profile)?;
    Ok(true)
}

/// Starts a factory reset from a running daemon (button, control socket, API): the
/// erase runs off the runtime, then the box reboots. Later presses are ignored.
pub fn start(app: &Arc<App>, source: &str) -> bool {
    if app.resetting.swap(true, Ordering::SeqCst) {
        return false;
    }
    app.audit("factory_reset", None, None, Some(source));
    if let Ok(data) = app.data() {
        // The audit ring is erased too, but the line reaches the log first.
        let _ = data.sync();
    }
    tracing::warn!(source, "factory reset requested");
    let app = Arc::clone(app);
    std::thread::spawn(move || {
        let config = app.config();
        let profile = app.board_info.as_ref().map(|b| b.hw.clone());
        if let Err(e) = erase(&config, app.board.as_ref(), profile.as_ref()) {
            tracing::error!("factory reset could not finish ({e}); it resumes at the next start");
        }
        let e = app.board.reboot();
        tracing::error!("reboot failed: {e}");
    });
    true
}

#[cfg(test)]
mod tests {
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
        std::fs::create_dir_all(config.data_db.join("x")).expect("data");
        std::fs::write(crate::app::open_guard_path(&config), "3\n").expect("guard");
        std::fs::create_dir_all(&config.erase_paths[0]).expect("userfiles");
        std::fs::write(config.erase_paths[0].join("greeting.wav"), b"RIFF").expect("file");
        std::fs::create_dir_all(&config.board_db).expect("board db");
        std::fs::write(config.board_db.join("db"), b"factory").expect("board");

        for _ in 0..2 {
            let failures = erase(&config, &board, Some(&profile)).expect("erase");
            assert!(failures.is_empty(), "{failures:?}");
            assert!(!config.data_db.exists());
            assert!(
                !crate::app::open_guard_path(&config).exists(),
                "degraded-by-guard cleared"
            );
            assert!(!config.erase_paths[0].exists());
            assert!(!marker_path(&config).exists());
            for m in &profile.mtd_erase {
                let bytes = std::fs::read(board.partition_path(m)).expect("partition");
                assert!(bytes.iter().all(|&b| b == 0xFF), "{m} erased");
            }
            assert_eq!(
                std::fs::read(config.board_db.join("db")).expect("board"),
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
