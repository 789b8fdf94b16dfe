//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): a
//! successful sign-in leaves a long-lived cookie in that browser, bound to the username
//! and signed with a key that lives in the data DB (so a factory reset voids every
//! cookie). An attempt that carries a valid one for the username it tries is the owner's
//! browser with high likelihood: it is exempt from the address block and the account
//! slow-down, and has a lockout of its own ([`super::lockout::DEVICE_FAILURES`]).
//!
//! Value: `base64url(username) "." base64url(nonce, 16 bytes) "." base64url(tag, 16 bytes)`,
//! tag = HMAC-SHA256(key, username NUL nonce) cut to 128 bits.

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::hmac;

use super::lockout::DeviceId;

pub const COOKIE: &str = "pbx_device";
/// How long a browser keeps it: half a year.
pub const MAX_AGE_S: u64 = 180 * 86_400;
const TAG: usize = 16;

/// The signing key, from 32 random bytes kept in the data DB.
pub struct DeviceKey(hmac::Key);

impl DeviceKey {
    pub fn new(secret: &[u8]) -> DeviceKey {
        DeviceKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    fn tag(&self, username: &str, nonce: &DeviceId) -> [u8; TAG] {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(username.as_bytes());
        ctx.update(&[0]);
        ctx.update(nonce);
        let full = ctx.sign();
        let mut out = [0u8; TAG];
        out.copy_from_slice(&full.as_ref()[..TAG]);
        out
    }

    /// A new cookie value for `username`.
    pub fn issue(&self, username: &str) -> String {
        let nonce: DeviceId = super::random_bytes();
        format!(
            "{}.{}.{}",
            Base64UrlUnpadded::encode_string(username.as_bytes()),
            Base64UrlUnpadded::encode_string(&nonce),
            Base64UrlUnpadded::encode_string(&self.tag(username, &nonce)),
        )
    }

    /// The cookie's id if `value` is a valid cookie of this key for `username`.
    pub fn verify(&self, value: &str, username: &str) -> Option<DeviceId> {
        let mut parts = value.split('.');
        let (name, nonce, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || name.len() > 128 {
            return None;
        }
        let name = Base64UrlUnpadded::decode_vec(name).ok()?;
        let mut id: DeviceId = [0; 16];
        let mut sent = [0u8; TAG];
        if Base64UrlUnpadded::decode(nonce, &mut id).ok()?.len() != id.len()
            || Base64UrlUnpadded::decode(tag, &mut sent).ok()?.len() != TAG
        {
            return None;
        }
        // Compared in constant time; the username is part of what is signed.
        let good = super::ct_eq(&sent, &self.tag(username, &id));
        (good && name == username.as_bytes()).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_valid_for_its_username_and_key_only() {
        let k = DeviceKey::new(&[1; 32]);
        let c = k.issue("admin");
        let id = k.verify(&c, "admin").expect("valid");
        assert_eq!(k.verify(&c, "admin"), Some(id));
        assert_ne!(k.issue("admin"), c, "a new nonce each time");
        assert_eq!(k.verify(&c, "1001"), None, "bound to the username");
        assert_eq!(
            DeviceKey::new(&[2; 32]).verify(&c, "admin"),
            None,
            "other key"
        );
        let mut forged = c.clone();
        forged.pop();
        forged.push(if c.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(k.verify(&forged, "admin"), None, "tag checked");
        for bad in ["", "a.b", "a.b.c.d", "....", "YWRtaW4.AAAA.AAAA"] {
            assert_eq!(k.verify(bad, "admin"), None, "{bad:?}");
        }
    }
}
