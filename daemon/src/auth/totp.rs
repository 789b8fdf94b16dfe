//! TOTP (RFC 6238 over RFC 4226's HOTP, HMAC-SHA1): 6 digits, 30 s steps — what every
//! authenticator app reads from an `otpauth://` URI. Pure functions; the replay rule
//! (a step used once is refused) is the caller's, with the account's last used step.

use ring::hmac;

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of now (clock skew of the phone).
pub const SKEW: u64 = 1;

/// RFC 4226's HOTP value of `counter`, `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let h = tag.as_ref();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    bin % 10u32.pow(digits)
}

/// The step a Unix time falls in.
pub fn step_at(unix: u64) -> u64 {
    unix / STEP
}

/// The step `code` matches at `unix` (±[`SKEW`]), if it is later than `last_used`.
/// Every candidate is computed and compared, so the time taken does not depend on which
/// (if any) matched.
pub fn verify(secret: &[u8], code: &str, unix: u64, last_used: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let now = step_at(unix);
    let mut found = None;
    for step in now.saturating_sub(SKEW)..=now + SKEW {
        let hit = crate::auth::ct_eq(
            &hotp(secret, step, DIGITS).to_be_bytes(),
            &want.to_be_bytes(),
        );
        if hit && last_used.is_none_or(|l| step > l) {
            found = Some(step);
        }
    }
    found
}

/// A new 160-bit secret (RFC 4226's recommended length for SHA-1).
pub fn new_secret() -> [u8; 20] {
    super::random_bytes::<20>()
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(B32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(B32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The inverse of [`base32`] (upper or lower case, spaces ignored).
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = B32.iter().position(|&x| x == c.to_ascii_uppercase())?;
        acc = (acc << 5) | u32::try_from(v).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The enrollment URI (Google Authenticator's key-uri format).
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_sha1_test_vectors() {
        // RFC 6238 appendix B (SHA-1, 8 digits).
        for (t, want) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(hotp(RFC_SECRET, step_at(t), 8), want, "T = {t}");
        }
        // RFC 4226 appendix D (HOTP, 6 digits), counters 0 and 9.
        assert_eq!(hotp(RFC_SECRET, 0, 6), 755_224);
        assert_eq!(hotp(RFC_SECRET, 9, 6), 520_489);
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_replay() {
        let t = 1_111_111_111;
        let code = |step: u64| format!("{:06}", hotp(RFC_SECRET, step, 6));
        let now = step_at(t);
        assert_eq!(verify(RFC_SECRET, &code(now), t, None), Some(now));
        assert_eq!(verify(RFC_SECRET, &code(now - 1), t, None), Some(now - 1));
        assert_eq!(verify(RFC_SECRET, &code(now + 1), t, None), Some(now + 1));
        assert_eq!(verify(RFC_SECRET, &code(now - 2), t, None), None);
        assert_eq!(verify(RFC_SECRET, &code(now + 2), t, None), None);
        assert_eq!(verify(RFC_SECRET, &code(now), t, Some(now)), None, "replay");
        assert_eq!(
            verify(RFC_SECRET, &code(now + 1), t, Some(now)),
            Some(now + 1)
        );
        assert_eq!(verify(RFC_SECRET, "12345", t, None), None);
        assert_eq!(verify(RFC_SECRET, "abcdef", t, None), None);
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(from_base32("mzxw 6ytb oi").as_deref(), Some(&b"foobar"[..]));
        let s = new_secret();
        assert_eq!(from_base32(&base32(&s)).as_deref(), Some(&s[..]));
        assert_eq!(base32(&s).len(), 32);
        assert_eq!(from_base32("not base32!"), None);
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let u = otpauth_uri("PBX S50", "admin", "MZXW6YTBOI");
        assert_eq!(
            u,
            "otpauth://totp/PBX%20S50:admin?secret=MZXW6YTBOI&issuer=PBX%20S50&algorithm=SHA1&digits=6&period=30"
        );
    }
}
