//! RAM copies of a database directory, for when the flash copy cannot be opened.

use std::path::{Path, PathBuf};

/// A private copy in RAM (the temp dir: tmpfs on the boxes) of a database directory,
/// opened when the flash copy cannot be: sled's open writes, so on a full flash it
/// fails even for reading. Removed when dropped.
pub(super) struct RamCopy(pub(super) PathBuf);

impl RamCopy {
    /// Copies `src` to `pbx-authd-<pid>-<name>-readonly` in the temp dir, and removes
    /// such copies left by processes that are gone (a crash during a flash fault).
    pub(super) fn of(src: &Path, name: &str) -> std::io::Result<RamCopy> {
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
