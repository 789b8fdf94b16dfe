//! Board support for `pbx-authd`: everything that touches the appliance's hardware or
//! pretends to. The daemon talks to a board only through the [`Board`] trait, so the
//! same code runs on an S-Series box, a K2, or the simulated board of `pbx-authd --dev`.
//!
//! Module map:
//! - [`profile`]: board profiles (TOML): button, LED, flash partitions by name; the pure
//!   classification of button presses.
//! - [`net`]: the device's own interfaces and their subnets (getifaddrs).
//! - [`mtd`]: MTD and UBI erase through ioctls; with [`sched`] the only `unsafe` in the
//!   workspace.
//! - [`button`]: Linux input events → held duration.
//! - [`led`], [`power`]: sysfs LED patterns; sync + reboot.
//! - [`sched`]: the hashing threads' CPU priority (SCHED_IDLE, else nice 19), and the
//!   HTTP thread giving way after a long stretch on its core: three system calls, each
//!   with its `// SAFETY:`.
//! - [`sim`]: the simulated board: files for flash and LEDs, re-exec for reboot.
#![deny(unsafe_code)]

pub mod button;
pub mod led;
pub mod mtd;
pub mod net;
pub mod power;
pub mod profile;
pub mod sched;
pub mod sim;

use std::io;
use std::path::{Path, PathBuf};

pub use led::Pattern;
pub use net::{InterfaceAddr, Subnet};
pub use profile::{BoardProfile, ButtonWindows, Press};
pub use sim::SimBoard;

/// What the daemon needs from the hardware it runs on.
pub trait Board: Send + Sync + 'static {
    /// Short name for logs and `ctl status` (`"linux"`, `"sim"`).
    fn kind(&self) -> &'static str;
    /// The addresses of the device's own network interfaces, loopback excluded.
    fn interfaces(&self) -> io::Result<Vec<InterfaceAddr>>;
    /// Erases one user-data partition named in the profile (MTD: every block reads
    /// 0xFF afterwards; UBI: the volume is empty). Idempotent, so an interrupted factory
    /// reset can simply run again.
    fn erase_partition(&self, name: &str, ubi: bool) -> io::Result<()>;
    /// Shows a pattern on the status LED; best effort.
    fn set_led(&self, led: &str, pattern: Pattern) -> io::Result<()>;
    /// The input device carrying the reset button, if the board has one we can watch.
    fn button_device(&self, input_name: &str) -> Option<PathBuf>;
    /// Restarts the box. Returns only on failure.
    fn reboot(&self) -> io::Error;

    /// Hardware named in the profile but not found: warnings for the log, never fatal.
    fn missing_hardware(&self, profile: &BoardProfile) -> Vec<String> {
        let _ = profile;
        Vec::new()
    }
}

/// The board of a real appliance: the kernel's view of the hardware.
#[derive(Debug, Default)]
pub struct LinuxBoard;

impl Board for LinuxBoard {
    fn kind(&self) -> &'static str {
        "linux"
    }
    fn interfaces(&self) -> io::Result<Vec<InterfaceAddr>> {
        net::interfaces()
    }
    fn erase_partition(&self, name: &str, ubi: bool) -> io::Result<()> {
        let not_found = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no partition named {name:?}"),
            )
        };
        if ubi {
            let dev =
                mtd::find_ubi_volume(Path::new("/sys/class/ubi"), name).ok_or_else(not_found)?;
            mtd::empty_ubi_volume(&dev, name)
        } else {
            let proc_mtd = std::fs::read_to_string("/proc/mtd")?;
            let dev = mtd::find_mtd(&proc_mtd, name).ok_or_else(not_found)?;
            mtd::erase_mtd(&dev).map(|_| ())
        }
    }
    fn set_led(&self, led: &str, pattern: Pattern) -> io::Result<()> {
        led::set_sysfs(&Path::new("/sys/class/leds").join(led), pattern)
    }
    fn button_device(&self, input_name: &str) -> Option<PathBuf> {
        let text = std::fs::read_to_string("/proc/bus/input/devices").ok()?;
        button::find_input_device(&text, input_name)
    }
    fn reboot(&self) -> io::Error {
        power::reboot()
    }
    fn missing_hardware(&self, p: &BoardProfile) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(b) = &p.button_input {
            if self.button_device(b).is_none() {
                out.push(format!("reset button input device {b:?} not found; use `pbx-authd ctl button` from the button handler"));
            }
        }
        if let Some(l) = &p.status_led {
            if !Path::new("/sys/class/leds").join(l).exists() {
                out.push(format!("status LED {l:?} not found in /sys/class/leds"));
            }
        }
        let proc_mtd = std::fs::read_to_string("/proc/mtd").unwrap_or_default();
        for m in &p.mtd_erase {
            if mtd::find_mtd(&proc_mtd, m).is_none() {
                out.push(format!("MTD partition {m:?} not found in /proc/mtd"));
            }
        }
        for u in &p.ubi_erase {
            if mtd::find_ubi_volume(Path::new("/sys/class/ubi"), u).is_none() {
                out.push(format!("UBI volume {u:?} not found"));
            }
        }
        out
    }
}
