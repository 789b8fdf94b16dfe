//! Board profiles: what hardware a model has, by name. A profile is stored in the board
//! DB at provisioning (`hw`), so the daemon finds the button, LEDs and flash partitions
//! of the box it runs on without a per-model build. Shipped profiles live in
//! `board/profiles/*.toml`.

use serde::{Deserialize, Serialize};

/// Hardware names of one board model. Devices are found by these names at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    /// Profile name, e.g. `s50` or `sim`.
    pub name: String,
    /// Name of the Linux input device that carries the reset button, as in
    /// `/proc/bus/input/devices` (e.g. `gpio-keys`).
    #[serde(default)]
    pub button_input: Option<String>,
    /// The key code the button sends (`KEY_RESTART`, 0x198, on the boxes' gpio-keys).
    #[serde(default = "restart_key")]
    pub button_key: u16,
    /// The status LED under `/sys/class/leds` used for button feedback.
    #[serde(default)]
    pub status_led: Option<String>,
    /// MTD partitions (names in `/proc/mtd`) that hold user data and are erased by a
    /// factory reset.
    #[serde(default)]
    pub mtd_erase: Vec<String>,
    /// UBI volumes (names in `/sys/class/ubi/*/name`) holding user data, emptied by a
    /// factory reset.
    #[serde(default)]
    pub ubi_erase: Vec<String>,
    /// Reset-button windows.
    #[serde(default)]
    pub button: ButtonWindows,
    /// The interface of the WAN port, on a board that has one (e.g. `eth1`): its subnet
    /// and link-local addresses are never the PBX's local network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wan_interface: Option<String>,
}

fn restart_key() -> u16 {
    crate::button::KEY_RESTART
}

/// How long the reset button is held decides what happens (spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ButtonWindows {
    /// Shorter presses are ignored (bumps, cleaning).
    pub recovery_min_ms: u64,
    /// Up to this (inclusive): recovery press.
    pub recovery_max_ms: u64,
    /// From this (inclusive): factory reset.
    pub reset_min_ms: u64,
    /// Longer than this: a stuck button, ignored.
    pub reset_max_ms: u64,
}

impl Default for ButtonWindows {
    fn default() -> Self {
        ButtonWindows {
            recovery_min_ms: 3_000,
            recovery_max_ms: 8_000,
            reset_min_ms: 10_000,
            reset_max_ms: 30_000,
        }
    }
}

/// What a press of a given length means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    /// The recovery press: what it does is the daemon's `recovery.button` (spec §6).
    Recovery,
    /// Erase all user data and reboot.
    FactoryReset,
    /// Too short, between the windows, or a stuck button.
    Ignored(IgnoredPress),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredPress {
    TooShort,
    BetweenWindows,
    Stuck,
}

impl ButtonWindows {
    /// Classifies a press by how long it was held. Pure: tested at every edge.
    pub fn classify(&self, held_ms: u64) -> Press {
        if held_ms < self.recovery_min_ms {
            Press::Ignored(IgnoredPress::TooShort)
        } else if held_ms <= self.recovery_max_ms {
            Press::Recovery
        } else if held_ms < self.reset_min_ms {
            Press::Ignored(IgnoredPress::BetweenWindows)
        } else if held_ms <= self.reset_max_ms {
            Press::FactoryReset
        } else {
            Press::Ignored(IgnoredPress::Stuck)
        }
    }

    /// The windows must be ordered, or presses would be ambiguous.
    pub fn is_valid(&self) -> bool {
        self.recovery_min_ms <= self.recovery_max_ms
            && self.recovery_max_ms < self.reset_min_ms
            && self.reset_min_ms <= self.reset_max_ms
    }
}

impl BoardProfile {
    /// The profile of the simulated board used by `pbx-authd --dev`.
    pub fn sim() -> BoardProfile {
        BoardProfile::from_toml(include_str!("../profiles/sim.toml")).unwrap_or_else(|_| {
            BoardProfile {
                name: "sim".into(),
                button_input: None,
                button_key: restart_key(),
                status_led: Some("status".into()),
                mtd_erase: vec!["userdata".into(), "voicemail".into()],
                ubi_erase: Vec::new(),
                button: ButtonWindows::default(),
                wan_interface: None,
            }
        })
    }

    /// Parses a profile file.
    pub fn from_toml(text: &str) -> Result<BoardProfile, String> {
        let p: BoardProfile = toml::from_str(text).map_err(|e| e.to_string())?;
        if !p.button.is_valid() {
            return Err(
                "button windows must satisfy recovery_min <= recovery_max < reset_min <= reset_max"
                    .into(),
            );
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_windows_at_every_edge() {
        let w = ButtonWindows::default();
        let cases = [
            (0, Press::Ignored(IgnoredPress::TooShort)),
            (2999, Press::Ignored(IgnoredPress::TooShort)),
            (3000, Press::Recovery),
            (8000, Press::Recovery),
            (8001, Press::Ignored(IgnoredPress::BetweenWindows)),
            (9999, Press::Ignored(IgnoredPress::BetweenWindows)),
            (10000, Press::FactoryReset),
            (30000, Press::FactoryReset),
            (30001, Press::Ignored(IgnoredPress::Stuck)),
            (u64::MAX, Press::Ignored(IgnoredPress::Stuck)),
        ];
        for (ms, expected) in cases {
            assert_eq!(w.classify(ms), expected, "{ms} ms");
        }
    }

    #[test]
    fn every_shipped_profile_parses_and_names_its_hardware() {
        for (name, text) in [
            ("s20", include_str!("../profiles/s20.toml")),
            ("s50", include_str!("../profiles/s50.toml")),
            ("s100", include_str!("../profiles/s100.toml")),
            ("s300", include_str!("../profiles/s300.toml")),
            ("k2", include_str!("../profiles/k2.toml")),
            ("sim", include_str!("../profiles/sim.toml")),
            ("qemu-x86", include_str!("../profiles/qemu-x86.toml")),
            ("qemu-armv7", include_str!("../profiles/qemu-armv7.toml")),
        ] {
            let p = BoardProfile::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.name, name);
            assert!(p.button.is_valid());
            assert!(
                !p.mtd_erase.is_empty() || !p.ubi_erase.is_empty(),
                "{name} erases something"
            );
        }
    }

    #[test]
    fn unknown_keys_and_unordered_windows_are_refused() {
        assert!(BoardProfile::from_toml("name = \"x\"\nled = \"a\"\n").is_err());
        let bad = "name = \"x\"\n[button]\nrecovery_max_ms = 12000\n";
        assert!(BoardProfile::from_toml(bad).is_err());
    }
}
