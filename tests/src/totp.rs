//! The authenticator app of the tests: RFC 6238 codes from a base32 secret, written
//! here from the RFC (not the daemon's code), so that a daemon bug cannot agree with
//! itself.

use ring::hmac;

/// The 6-digit code for Unix time `unix`, from the base32 secret the page showed.
pub fn code(secret_b32: &str, unix: u64) -> String {
    let mut key = Vec::new();
    let (mut acc, mut bits) = (0u64, 0);
    for c in secret_b32.bytes().filter(u8::is_ascii_alphanumeric) {
        let v = match c.to_ascii_uppercase() {
            b'A'..=b'Z' => c.to_ascii_uppercase() - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {secret_b32}"),
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            key.push(((acc >> bits) & 0xff) as u8);
        }
    }
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key),
        &(unix / 30).to_be_bytes(),
    );
    let h = tag.as_ref();
    let o = (h[19] & 0xf) as usize;
    let n = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]) % 1_000_000;
    format!("{n:06}")
}

/// Now, as the phone would read it.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc_6238_vector() {
        // "12345678901234567890" in base32; RFC 6238 T=59 → 94287082 (8 digits).
        assert_eq!(
            super::code("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59),
            "287082"
        );
    }
}
