//! Reboot: flush the file systems, then ask the kernel to restart.

/// Syncs and reboots. Returns only on failure (e.g. not root).
pub fn reboot() -> std::io::Error {
    nix::unistd::sync();
    match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT) {
        Ok(never) => match never {},
        Err(e) => e.into(),
    }
}
