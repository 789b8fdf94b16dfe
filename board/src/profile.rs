//! Board profiles: what hardware a model has, by name. A profile is stored in the board
//! DB at provisioning (`hw`), so the daemon finds the button, LEDs and flash partitions
//! of the box it runs on without a per-model build.

use serde::{Deserialize, Serialize};

/// Hardware names of one board model. Devices are found by these names at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    /// Profile name, e.g. `s50` or `sim`.
    pub name: String,
    /// Name of the Linux input device that carries the reset button (`KEY_RESTART`).
    #[serde(default)]
    pub button_input: Option<String>,
    /// LED names under `/sys/class/leds`.
    #[serde(default)]
    pub leds: Vec<String>,
    /// MTD partitions (names in `/proc/mtd`) that hold user data and are erased by a factory reset.
    #[serde(default)]
    pub mtd_erase: Vec<String>,
    /// UBI volumes holding user data, truncated by a factory reset.
    #[serde(default)]
    pub ubi_erase: Vec<String>,
}

impl BoardProfile {
    /// The profile of the simulated board used by `pbx-authd --dev`.
    pub fn sim() -> BoardProfile {
        BoardProfile {
            name: "sim".into(),
            button_input: None,
            leds: vec!["status".into()],
            mtd_erase: vec!["userdata".into()],
            ubi_erase: Vec::new(),
        }
    }

    /// Parses a profile file.
    pub fn from_toml(text: &str) -> Result<BoardProfile, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profile_and_rejects_unknown_keys() {
        let p = BoardProfile::from_toml("name = \"s50\"\nleds = [\"sys\"]\n").expect("valid");
        assert_eq!(p.name, "s50");
        assert_eq!(p.leds, vec!["sys".to_string()]);
        assert!(BoardProfile::from_toml("name = \"s50\"\nled = []\n").is_err());
    }
}
