//! Status LED patterns for the reset button's feedback, through
//! `/sys/class/leds/<name>/{trigger,brightness,delay_on,delay_off}`.

use std::path::Path;

/// What the LED tells the person at the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Recovery press: the reset link was mailed (slow blink).
    RecoveryMailSent,
    /// Recovery press, but no email recovery is configured (fast blink).
    RecoveryNotConfigured,
    /// Recovery press: the admin account is back on the label password, data kept
    /// (medium blink).
    CredentialsReset,
    /// A press confirmed a change of what the recovery press does (long on, short off).
    ButtonModeConfirmed,
    /// Factory reset in progress (solid on).
    Erasing,
    /// A factory reset could not erase the user data (double blink: needs service).
    ResetFailed,
    Off,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::RecoveryMailSent => "recovery-mail-sent",
            Pattern::RecoveryNotConfigured => "recovery-not-configured",
            Pattern::CredentialsReset => "credentials-reset",
            Pattern::ButtonModeConfirmed => "button-mode-confirmed",
            Pattern::Erasing => "erasing",
            Pattern::ResetFailed => "error",
            Pattern::Off => "off",
        }
    }

    /// (trigger, brightness, delay_on ms, delay_off ms) for the kernel's LED class.
    pub fn sysfs(self) -> (&'static str, &'static str, Option<u32>, Option<u32>) {
        match self {
            Pattern::RecoveryMailSent => ("timer", "1", Some(1000), Some(1000)),
            Pattern::RecoveryNotConfigured => ("timer", "1", Some(100), Some(100)),
            Pattern::CredentialsReset => ("timer", "1", Some(500), Some(500)),
            Pattern::ButtonModeConfirmed => ("timer", "1", Some(1500), Some(250)),
            Pattern::Erasing => ("none", "1", None, None),
            Pattern::ResetFailed => ("timer", "1", Some(250), Some(750)),
            Pattern::Off => ("none", "0", None, None),
        }
    }
}

/// Sets a pattern on the LED directory `dir` (e.g. `/sys/class/leds/s50:green:status`).
pub fn set_sysfs(dir: &Path, p: Pattern) -> std::io::Result<()> {
    let (trigger, brightness, on, off) = p.sysfs();
    std::fs::write(dir.join("trigger"), trigger)?;
    if let (Some(on), Some(off)) = (on, off) {
        // The timer trigger creates these files once selected.
        std::fs::write(dir.join("delay_on"), on.to_string())?;
        std::fs::write(dir.join("delay_off"), off.to_string())?;
    } else {
        std::fs::write(dir.join("brightness"), brightness)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_distinct() {
        let all = [
            Pattern::RecoveryMailSent,
            Pattern::RecoveryNotConfigured,
            Pattern::CredentialsReset,
            Pattern::ButtonModeConfirmed,
            Pattern::Erasing,
            Pattern::ResetFailed,
            Pattern::Off,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.sysfs(), b.sysfs());
                assert_ne!(a.name(), b.name());
            }
        }
    }

    #[test]
    fn writes_the_sysfs_files() {
        let d = std::env::temp_dir().join(format!("pbx-led-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("mkdir");
        set_sysfs(&d, Pattern::RecoveryNotConfigured).expect("set");
        assert_eq!(
            std::fs::read_to_string(d.join("trigger")).expect("read"),
            "timer"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("delay_on")).expect("read"),
            "100"
        );
        set_sysfs(&d, Pattern::Erasing).expect("set");
        assert_eq!(
            std::fs::read_to_string(d.join("brightness")).expect("read"),
            "1"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
