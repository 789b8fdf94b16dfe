//! The format of offline recovery codes (spec §8): 16 symbols of Crockford's base32
//! (80 bits), grouped for reading, and what is stored for one: the SHA-256 of the code
//! as typed, normalised. The flows that issue and take them are in
//! `flows::recovery::codes` and `flows::twofactor`.

/// Codes per set.
pub const COUNT: usize = 10;
/// Crockford's base32: no I, L, O, U — read aloud and typed back without confusion.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 16 symbols of 5 bits: 80 bits per code.
const SYMBOLS: usize = 16;

/// A fresh code, grouped for reading: `K7QF-2M9D-XR4T-8WPA`.
pub fn new_code() -> String {
    let bytes = super::random_bytes::<10>();
    let mut bits = u128::from_be_bytes({
        let mut b = [0u8; 16];
        b[6..].copy_from_slice(&bytes);
        b
    });
    let mut out = String::with_capacity(SYMBOLS + 3);
    for i in 0..SYMBOLS {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let v = usize::try_from((bits >> 75) & 31).unwrap_or(0);
        out.push(char::from(ALPHABET[v]));
        bits <<= 5;
    }
    out
}

/// What is stored for a code as typed: upper case, without dashes or spaces, the
/// letters people mistake for digits read as those digits; then SHA-256, hex.
pub fn digest(typed: &str) -> Option<String> {
    let mut norm = String::with_capacity(SYMBOLS);
    for c in typed.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !ALPHABET.contains(&u8::try_from(c).ok()?) {
            return None;
        }
        norm.push(c);
    }
    (norm.len() == SYMBOLS).then(|| super::hex(&super::token_digest(&norm)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_80_bits_in_four_groups_and_read_back_however_typed() {
        let c = new_code();
        assert_eq!(c.len(), 19, "{c}");
        assert_eq!(c.matches('-').count(), 3, "{c}");
        assert_ne!(new_code(), c);
        let d = digest(&c).expect("valid");
        assert_eq!(digest(&c.to_lowercase().replace('-', " ")), Some(d.clone()));
        assert_eq!(d.len(), 64, "SHA-256, hex");
        // O, I and L are read as 0 and 1; U and other symbols are not codes.
        assert_eq!(digest("0000-1111-0000-1111"), digest("oooo-iiii-OOOO-llll"));
        assert_eq!(digest("UUUU-0000-0000-0000"), None);
        assert_eq!(digest("0000-0000-0000-000"), None, "15 symbols");
    }
}
