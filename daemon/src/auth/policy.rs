//! Password rules (spec §5, NIST SP 800-63B): length 10–128, not the username, not a
//! common password, not the label's initial password (checked by the caller, since it
//! needs a hash verification). No composition rules, no expiry.
//!
//! "Common" is decided on a normalised form so that the usual decorations do not make a
//! listed password acceptable: case is folded, leetspeak digits and symbols are mapped
//! back to letters, and trailing digits and punctuation are stripped before the base is
//! looked up (`P@ssw0rd2024!` → `password`).

use crate::config::Policy;
use crate::i18n::{k, Msg};

/// Base words that make a password common once the decorations are stripped.
const COMMON_BASES: &[&str] = &[
    "password",
    "passwort",
    "passw",
    "pass",
    "qwerty",
    "qwertz",
    "azerty",
    "admin",
    "administrator",
    "root",
    "letmein",
    "welcome",
    "iloveyou",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "soccer",
    "hockey",
    "sunshine",
    "princess",
    "master",
    "shadow",
    "superman",
    "batman",
    "trustno",
    "abc",
    "abcd",
    "abcde",
    "abcdef",
    "changeme",
    "default",
    "secret",
    "login",
    "user",
    "guest",
    "test",
    "testing",
    "pbx",
    "voip",
    "sip",
    "phone",
    "telephone",
    "asterisk",
    "freepbx",
    "yeastar",
    "grandstream",
    "office",
    "company",
    "welcome",
    "hello",
    "freedom",
    "whatever",
    "qazwsx",
    "zaqxsw",
    "starwars",
    "computer",
    "internet",
    "michael",
    "jennifer",
    "jordan",
    "hunter",
    "ranger",
    "buster",
    "summer",
    "winter",
    "spring",
    "autumn",
    "access",
    "mustang",
    "killer",
    "charlie",
    "pepper",
    "ginger",
    "cheese",
    "love",
    "lovely",
    "secure",
    "system",
    "server",
    "service",
    "support",
    "manager",
    "operator",
    "extension",
    "reception",
    "helpdesk",
    "network",
    "router",
    "switch",
    "firewall",
    "linux",
    "ubuntu",
    "debian",
    "android",
    "samsung",
    "apple",
    "google",
    "microsoft",
    "windows",
    "oracle",
    "cisco",
    "polycom",
    "snom",
    "avaya",
    "mitel",
    "panasonic",
    "siemens",
];

/// Frequent long passwords that are not "base + decoration": keyboard walks and patterns.
const COMMON_EXACT: &[&str] = &[
    "qwertyuiop",
    "qwertyuiop[]",
    "asdfghjkl",
    "asdfghjkl;",
    "zxcvbnm,./",
    "1qaz2wsx",
    "1qaz2wsx3edc",
    "1qaz2wsx3edc4rfv",
    "zaq12wsx",
    "zaq1zaq1",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1q2w3e4r5t6y",
    "q1w2e3r4t5",
    "q1w2e3r4t5y6",
    "qweasdzxc",
    "qweasdzxc123",
    "qazwsxedc",
    "qazwsxedcrfv",
    "!qaz2wsx",
    "1234qwer",
    "qwer1234",
    "asdf1234",
    "zxcv1234",
    "abcd1234",
    "aa12345678",
    "a1b2c3d4e5",
    "a1b2c3d4e5f6",
    "iloveyou1",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "pa$$word",
    "letmein!",
    "trustno1",
    "1password",
    "mypassword",
    "thisisapassword",
    "correcthorsebatterystaple",
    "administrator",
    "adminadmin",
    "rootroot",
    "useruser",
    "testtest",
    "guestguest",
    "changemenow",
    "welcomehome",
    "iloveyou",
    "monkeymonkey",
    "football1",
    "baseball1",
];

/// The reason given when the label's initial password is chosen again.
pub fn label_reused() -> Msg {
    Msg::new(k::PW_LABEL_REUSED)
}

/// Why a password is refused, as sentences for the form; empty when it is acceptable.
pub fn check(password: &str, username: &str, policy: &Policy) -> Vec<Msg> {
    let mut reasons = Vec::new();
    let len = password.chars().count();
    if len < policy.password_min_len {
        reasons.push(
            Msg::new(k::PW_TOO_SHORT)
                .arg("min", policy.password_min_len)
                .arg("len", len),
        );
    }
    if len > policy.password_max_len {
        reasons.push(
            Msg::new(k::PW_TOO_LONG)
                .arg("max", policy.password_max_len)
                .arg("len", len),
        );
    }
    if password.chars().any(char::is_control) {
        reasons.push(Msg::new(k::PW_CONTROL));
    }
    if !username.is_empty() && password.to_lowercase() == username.to_lowercase() {
        reasons.push(Msg::new(k::PW_SAME_AS_USERNAME));
    }
    if is_common(password) {
        reasons.push(Msg::new(k::PW_COMMON));
    }
    reasons
}

/// True for passwords on the built-in list, their decorated forms and trivial patterns.
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    if COMMON_EXACT.contains(&lower.as_str()) {
        return true;
    }
    let chars: Vec<char> = lower.chars().collect();
    // One repeated character, or a short unit repeated ("abcabcabcabc", "12121212").
    for unit in 1..=4 {
        if chars.len() >= unit * 2 && chars.chunks(unit).all(|c| c == &chars[..c.len()]) {
            return true;
        }
    }
    // Runs of consecutive characters ("0123456789", "abcdefghij", "9876543210").
    let steps: Vec<i64> = chars
        .windows(2)
        .map(|w| i64::from(u32::from(w[1])) - i64::from(u32::from(w[0])))
        .collect();
    if !steps.is_empty() && (steps.iter().all(|&s| s == 1) || steps.iter().all(|&s| s == -1)) {
        return true;
    }
    let base = normalise(&lower);
    base.is_empty() || base.chars().count() < 3 || COMMON_BASES.contains(&base.as_str()) || {
        // A listed base repeated or followed by another listed base: "adminadmin", "passwordadmin".
        COMMON_BASES.iter().any(|b| {
            base.strip_prefix(b)
                .is_some_and(|rest| rest.is_empty() || COMMON_BASES.contains(&rest))
        })
    }
}

/// Undoes leetspeak and strips leading/trailing digits and punctuation.
fn normalise(lower: &str) -> String {
    let mapped: String = lower
        .chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '3' => 'e',
            '1' | '!' | '|' => 'i',
            '0' => 'o',
            '$' | '5' => 's',
            '7' | '+' => 't',
            c => c,
        })
        .collect();
    // Strip decorations from the original positions: digits/punctuation at the ends of
    // the lower-case text, then map what is left.
    let trimmed =
        lower.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ');
    if trimmed.is_empty() {
        return String::new();
    }
    let start = lower.find(trimmed).unwrap_or(0);
    let n = trimmed.chars().count();
    let skip = lower[..start].chars().count();
    mapped
        .chars()
        .skip(skip)
        .take(n)
        .filter(|c| !c.is_whitespace())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Policy {
        Policy::default()
    }

    #[test]
    fn length_bounds_count_characters_not_bytes() {
        assert_eq!(check("blue-kettle", "admin", &p()), Vec::<Msg>::new());
        assert_eq!(check("short pw", "admin", &p()).len(), 1);
        // Ten characters of two bytes each: long enough.
        assert!(check("ééééàààüüx", "admin", &p()).is_empty());
        let long = "x".repeat(129) + "yz";
        assert!(check(&long, "admin", &p())[0]
            .to_string()
            .contains("at most 128"));
    }

    #[test]
    fn username_as_password_is_refused() {
        let r = check("extension1001", "Extension1001", &p());
        assert!(
            r.iter().any(|m| m.to_string().contains("username")),
            "{r:?}"
        );
    }

    #[test]
    fn common_passwords_and_decorated_forms_are_refused() {
        for pw in [
            "password123",
            "P@ssw0rd2024!",
            "Administrator",
            "qwertyuiop",
            "1234567890",
            "0000000000",
            "abcabcabcabc",
            "9876543210",
            "Welcome2026!",
            "admin123456",
            "adminadmin",
            "1qaz2wsx3edc",
            "freepbx2025",
            "!!!!!!!!!!!!",
        ] {
            assert!(is_common(pw), "{pw} should be common");
        }
    }

    #[test]
    fn ordinary_passphrases_pass() {
        for pw in [
            "blue-kettle-walks",
            "Tram 14 to Ostbahnhof",
            "k7mq-x3vt-9pfa",
            "sunshine on the harbour",
        ] {
            assert!(!is_common(pw), "{pw} should be fine");
        }
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(!check("line\nbreak-password", "admin", &p()).is_empty());
    }
}
