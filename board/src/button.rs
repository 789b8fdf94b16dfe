//! The reset button as the kernel reports it: a Linux input device (gpio-keys) found by
//! name in `/proc/bus/input/devices`, read as `input_event` records; a `KEY_RESTART`
//! press and its release give the held duration. What a duration *means* is decided by
//! the pure [`crate::profile::ButtonWindows::classify`].

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const EV_KEY: u16 = 0x01;
pub const KEY_RESTART: u16 = 0x198;

/// Size of `struct input_event`: a `struct timeval` (two longs) plus type, code, value.
pub const EVENT_SIZE: usize = 2 * std::mem::size_of::<std::ffi::c_long>() + 2 + 2 + 4;

/// The `/dev/input/eventN` of the input device called `name`.
pub fn find_input_device(proc_devices: &str, name: &str) -> Option<PathBuf> {
    let wanted = format!("N: Name=\"{name}\"");
    proc_devices.split("\n\n").find_map(|block| {
        if !block.lines().any(|l| l.trim() == wanted) {
            return None;
        }
        let handlers = block.lines().find_map(|l| l.strip_prefix("H: Handlers="))?;
        let ev = handlers
            .split_whitespace()
            .find(|h| h.starts_with("event"))?;
        Some(PathBuf::from(format!("/dev/input/{ev}")))
    })
}

/// One decoded input event: (type, code, value).
pub fn decode(record: &[u8]) -> Option<(u16, u16, i32)> {
    if record.len() != EVENT_SIZE {
        return None;
    }
    let t = EVENT_SIZE - 8;
    let kind = u16::from_ne_bytes([record[t], record[t + 1]]);
    let code = u16::from_ne_bytes([record[t + 2], record[t + 3]]);
    let value = i32::from_ne_bytes([record[t + 4], record[t + 5], record[t + 6], record[t + 7]]);
    Some((kind, code, value))
}

/// Turns press/release events of one key into held durations.
#[derive(Debug)]
pub struct HoldTracker {
    key: u16,
    pressed_at: Option<Instant>,
}

impl HoldTracker {
    /// Watches key `key` (`KEY_RESTART` on the boxes; the board profile may name another).
    pub fn new(key: u16) -> HoldTracker {
        HoldTracker {
            key,
            pressed_at: None,
        }
    }

    /// Feeds one event seen at `now`; returns the held time on release.
    pub fn feed(&mut self, kind: u16, code: u16, value: i32, now: Instant) -> Option<Duration> {
        if kind != EV_KEY || code != self.key {
            return None;
        }
        match value {
            1 => {
                self.pressed_at = Some(now);
                None
            }
            0 => self
                .pressed_at
                .take()
                .map(|t| now.saturating_duration_since(t)),
            _ => None, // autorepeat
        }
    }
}

/// Blocks reading `dev` and calls `on_release` with each held duration. Returns when the
/// device fails (unplugged, permission); the caller logs and carries on without it.
pub fn watch(
    dev: &std::path::Path,
    key: u16,
    mut on_release: impl FnMut(Duration),
) -> std::io::Result<()> {
    let mut f = std::fs::File::open(dev)?;
    let mut tracker = HoldTracker::new(key);
    let mut buf = [0u8; EVENT_SIZE];
    loop {
        f.read_exact(&mut buf)?;
        if let Some((kind, code, value)) = decode(&buf) {
            if let Some(held) = tracker.feed(kind, code, value, Instant::now()) {
                on_release(held);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_gpio_keys_event_device() {
        let text = "I: Bus=0019 Vendor=0001 Product=0001 Version=0100\n\
                    N: Name=\"gpio-keys\"\n\
                    P: Phys=gpio-keys/input0\n\
                    H: Handlers=kbd event0 \n\
                    B: EV=3\n\n\
                    I: Bus=0003\n\
                    N: Name=\"USB Keyboard\"\n\
                    H: Handlers=sysrq kbd leds event1\n";
        assert_eq!(
            find_input_device(text, "gpio-keys"),
            Some(PathBuf::from("/dev/input/event0"))
        );
        assert_eq!(
            find_input_device(text, "USB Keyboard"),
            Some(PathBuf::from("/dev/input/event1"))
        );
        assert_eq!(find_input_device(text, "gpio"), None);
    }

    fn record(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut r = vec![0u8; EVENT_SIZE - 8];
        r.extend_from_slice(&kind.to_ne_bytes());
        r.extend_from_slice(&code.to_ne_bytes());
        r.extend_from_slice(&value.to_ne_bytes());
        r
    }

    #[test]
    fn input_event_size_matches_the_abi() {
        // 24 bytes on 64-bit, 16 on 32-bit ARM with a 32-bit time_t.
        let expected = if cfg!(target_pointer_width = "64") {
            24
        } else {
            16
        };
        assert_eq!(EVENT_SIZE, expected);
        assert_eq!(
            decode(&record(EV_KEY, KEY_RESTART, 1)),
            Some((EV_KEY, KEY_RESTART, 1))
        );
        assert_eq!(decode(&[0u8; 3]), None);
    }

    #[test]
    fn press_and_release_give_the_held_time() {
        let t0 = Instant::now();
        let mut h = HoldTracker::new(KEY_RESTART);
        assert_eq!(h.feed(EV_KEY, KEY_RESTART, 1, t0), None);
        assert_eq!(
            h.feed(EV_KEY, KEY_RESTART, 2, t0 + Duration::from_secs(1)),
            None,
            "autorepeat"
        );
        assert_eq!(
            h.feed(0, 0, 0, t0 + Duration::from_secs(2)),
            None,
            "sync event"
        );
        assert_eq!(
            h.feed(EV_KEY, KEY_RESTART, 0, t0 + Duration::from_millis(12_000)),
            Some(Duration::from_millis(12_000))
        );
        assert_eq!(
            h.feed(EV_KEY, KEY_RESTART, 0, t0),
            None,
            "release without press"
        );
        assert_eq!(h.feed(EV_KEY, 0x74, 1, t0), None, "other keys");
    }
}
