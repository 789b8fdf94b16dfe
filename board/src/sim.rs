//! The simulated board of `pbx-authd --dev` and the tests: a real process on a real
//! network stack, with the board-specific parts kept under a state directory:
//! partitions are files `mtd/<name>.img` (erased = every byte 0xFF, like NAND), LEDs are
//! files `leds/<name>` holding the pattern's name, and a reboot re-executes the daemon
//! with its original arguments.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{net, Board, BoardProfile, InterfaceAddr, Pattern};

/// Size of each simulated partition.
pub const PARTITION_BYTES: usize = 128 * 1024;
const CHUNK: usize = 16 * 1024;

/// Slows the simulated erase down (per 16 KiB chunk) so tests can interrupt it.
pub const ERASE_DELAY_ENV: &str = "PBX_SIM_ERASE_DELAY_MS";

#[derive(Debug, Clone)]
pub struct SimBoard {
    state_dir: PathBuf,
}

impl SimBoard {
    pub fn new(state_dir: impl Into<PathBuf>) -> SimBoard {
        SimBoard {
            state_dir: state_dir.into(),
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn partition_path(&self, name: &str) -> PathBuf {
        self.state_dir.join("mtd").join(format!("{name}.img"))
    }

    pub fn led_path(&self, name: &str) -> PathBuf {
        self.state_dir.join("leds").join(name)
    }

    /// Creates the profile's partitions (filled with simulated user data) and LEDs on a
    /// fresh state dir. Existing files are left as they are, like real flash.
    pub fn prepare(&self, profile: &BoardProfile) -> io::Result<()> {
        for name in &profile.mtd_erase {
            let p = self.partition_path(name);
            if !p.exists() {
                std::fs::create_dir_all(p.parent().unwrap_or(Path::new(".")))?;
                let line = format!("simulated user data of partition {name}\n");
                let data: Vec<u8> = line.bytes().cycle().take(PARTITION_BYTES).collect();
                std::fs::write(&p, data)?;
            }
        }
        if let Some(led) = &profile.status_led {
            let p = self.led_path(led);
            if !p.exists() {
                std::fs::create_dir_all(p.parent().unwrap_or(Path::new(".")))?;
                std::fs::write(&p, Pattern::Off.name())?;
            }
        }
        Ok(())
    }
}

impl Board for SimBoard {
    fn kind(&self) -> &'static str {
        "sim"
    }
    fn interfaces(&self) -> io::Result<Vec<InterfaceAddr>> {
        // The simulated box shares the host's network stack.
        net::interfaces()
    }
    fn erase_partition(&self, name: &str, _ubi: bool) -> io::Result<()> {
        let path = self.partition_path(name);
        let len = std::fs::metadata(&path).map_or(PARTITION_BYTES, |m| m.len() as usize);
        let delay = std::env::var(ERASE_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let ff = [0xFFu8; CHUNK];
        let mut done = 0;
        while done < len {
            let n = CHUNK.min(len - done);
            f.write_all(&ff[..n])?;
            f.sync_data()?;
            done += n;
            if let Some(d) = delay {
                std::thread::sleep(d);
            }
        }
        Ok(())
    }
    fn set_led(&self, led: &str, pattern: Pattern) -> io::Result<()> {
        let p = self.led_path(led);
        std::fs::create_dir_all(p.parent().unwrap_or(Path::new(".")))?;
        std::fs::write(p, pattern.name())
    }
    fn button_device(&self, _input_name: &str) -> Option<PathBuf> {
        // The simulated button is `pbx-authd ctl button --held-ms N`.
        None
    }
    fn reboot(&self) -> io::Error {
        // A reboot of the simulated box: the same program with the same arguments.
        let mut args = std::env::args_os();
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => return e,
        };
        args.next();
        std::process::Command::new(exe).args(args).exec()
    }
    fn missing_hardware(&self, p: &BoardProfile) -> Vec<String> {
        p.mtd_erase
            .iter()
            .filter(|m| !self.partition_path(m).exists())
            .map(|m| format!("simulated partition {m:?} missing"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_partitions_hold_data_and_erase_to_ff() {
        let d = std::env::temp_dir().join(format!("pbx-sim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let b = SimBoard::new(&d);
        let p = BoardProfile::sim();
        b.prepare(&p).expect("prepare");
        let part = b.partition_path("userdata");
        let before = std::fs::read(&part).expect("read");
        assert_eq!(before.len(), PARTITION_BYTES);
        assert!(before.iter().any(|&x| x != 0xFF));
        b.erase_partition("userdata", false).expect("erase");
        assert!(std::fs::read(&part)
            .expect("read")
            .iter()
            .all(|&x| x == 0xFF));
        b.prepare(&p).expect("prepare again");
        assert!(
            std::fs::read(&part)
                .expect("read")
                .iter()
                .all(|&x| x == 0xFF),
            "not refilled"
        );
        b.set_led("status", Pattern::RecoveryNotConfigured)
            .expect("led");
        assert_eq!(
            std::fs::read_to_string(b.led_path("status")).expect("read"),
            "recovery-not-configured"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
