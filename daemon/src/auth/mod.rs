//! Authentication: password hashing ([`password`]), the password rules ([`policy`]),
//! sessions in RAM ([`sessions`]), brute-force limits ([`lockout`]) and the device
//! cookies that let a known browser past them ([`device`]).

pub mod device;
pub mod failure_log;
pub mod lockout;
pub mod password;
pub mod policy;
pub mod presession;
pub mod recovery;
pub mod recovery_code;
pub mod sessions;
pub mod totp;
pub mod trust;

use std::fmt;

/// A password or token as received: never printed, wiped when dropped.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

/// Random bytes from the OS generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    // The kernel's getrandom does not fail once the pool is initialised; if it ever
    // did, continuing with predictable tokens would be worse than stopping.
    #[allow(clippy::expect_used)]
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the OS random generator must work");
    b
}

/// 32 random bytes as 43 characters of unpadded base64url: session ids and tokens.
pub fn random_token() -> String {
    use base64ct::Encoding;
    base64ct::Base64UrlUnpadded::encode_string(&random_bytes::<32>())
}

/// SHA-256 of a token: what is kept instead of the token itself.
pub fn token_digest(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A username as logs and the audit trail may show it: names over 64 bytes (never a
/// real account) are cut to 32 characters with a marker saying how long they were.
pub fn shown_username(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() <= 64 {
        return name.into();
    }
    let cut: String = name.chars().take(32).collect();
    format!("{cut}…({} bytes)", name.len()).into()
}

/// Lower-case hex of `bytes` (digests as the data DB stores them).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_char_base64url_and_unique() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
    }

    #[test]
    fn secret_debug_prints_nothing() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter2hunter2".into())),
            "Secret(..)"
        );
    }

    #[test]
    fn long_usernames_are_shown_cut() {
        let long = "x".repeat(16 * 1024);
        let shown = shown_username(&long);
        assert!(shown.len() < 64, "{shown}");
        assert!(shown.ends_with("(16384 bytes)"), "{shown}");
        assert_eq!(shown_username("admin"), "admin");
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
