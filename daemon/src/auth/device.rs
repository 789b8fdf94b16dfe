//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): a
//! successful sign-in leaves a long-lived cookie in that browser, bound to the username,
//! its issue time and the account's device generation, and signed with a key that lives
//! in the data DB (so a factory reset voids every cookie). An attempt that carries a
//! valid one for the username it tries is the owner's browser with high likelihood: it
//! is exempt from the address block and the account slow-down, and has a lockout of its
//! own ([`super::lockout::DEVICE_FAILURES`]).
//!
//! Valid means more than a right signature ([`Presented::known_to`]): the account's
//! device generation is still the one signed (it changes with the password, a reset, a
//! code recovery and a 2FA change, so those void every older cookie), the cookie is
//! younger than [`MAX_AGE_S`], and its id is among the account's live cookies (at most
//! [`PER_ACCOUNT`]; five failures with one remove it, for good).
//!
//! Value: `base64url(username) "." base64url(nonce, 16 bytes) "." base64url(issued u64 BE,
//! generation u32 BE) "." base64url(tag, 16 bytes)`, tag = HMAC-SHA256(key, username NUL
//! nonce meta) cut to 128 bits.

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::hmac;

use super::lockout::DeviceId;
use crate::model::Account;

pub const COOKIE: &str = "pbx_device";
/// How long a browser keeps it, and how long the server honours it: half a year.
pub const MAX_AGE_S: u64 = 180 * 86_400;
/// Live cookies per account; a new browser beyond them retires the oldest.
pub const PER_ACCOUNT: usize = 8;
const TAG: usize = 16;
const META: usize = 12;

/// The signing key, from 32 random bytes kept in the data DB.
pub struct DeviceKey(hmac::Key);

/// What a cookie with a right signature says; [`Presented::known_to`] says whether it
/// still counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    pub id: DeviceId,
    pub issued: u64,
    pub generation: u32,
}

/// A device id as the account record keeps it.
pub fn id_text(id: &DeviceId) -> String {
    Base64UrlUnpadded::encode_string(id)
}

impl Presented {
    /// Whether this cookie still marks a known browser of `account` at `now` (Unix
    /// seconds): the same device generation, younger than [`MAX_AGE_S`], and live.
    pub fn known_to(&self, account: &Account, now: u64) -> bool {
        let text = id_text(&self.id);
        self.generation == account.device_gen
            && now.saturating_sub(self.issued) < MAX_AGE_S
            && account.devices.contains(&text)
    }
}

impl DeviceKey {
    pub fn new(secret: &[u8]) -> DeviceKey {
        DeviceKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    fn tag(&self, username: &str, nonce: &DeviceId, meta: &[u8; META]) -> [u8; TAG] {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(username.as_bytes());
        ctx.update(&[0]);
        ctx.update(nonce);
        ctx.update(meta);
        let full = ctx.sign();
        let mut out = [0u8; TAG];
        out.copy_from_slice(&full.as_ref()[..TAG]);
        out
    }

    /// A new cookie for `username` at device generation `generation`, issued at `now`:
    /// its value and its id (to be kept among the account's live cookies).
    pub fn issue(&self, username: &str, generation: u32, now: u64) -> (String, DeviceId) {
        let nonce: DeviceId = super::random_bytes();
        let mut meta = [0u8; META];
        meta[..8].copy_from_slice(&now.to_be_bytes());
        meta[8..].copy_from_slice(&generation.to_be_bytes());
        let value = format!(
            "{}.{}.{}.{}",
            Base64UrlUnpadded::encode_string(username.as_bytes()),
            Base64UrlUnpadded::encode_string(&nonce),
            Base64UrlUnpadded::encode_string(&meta),
            Base64UrlUnpadded::encode_string(&self.tag(username, &nonce, &meta)),
        );
        (value, nonce)
    }

    /// Whether `value` is a cookie this key signed, for whichever username it names:
    /// a browser that signed in on this box before. Enough to admit a connection when
    /// the pool is full ([`crate::server`]); a sign-in still checks [`Presented::known_to`].
    pub fn signed(&self, value: &str) -> bool {
        let Some(name) = value.split('.').next().filter(|n| n.len() <= 128) else {
            return false;
        };
        Base64UrlUnpadded::decode_vec(name)
            .ok()
            .and_then(|n| String::from_utf8(n).ok())
            .is_some_and(|username| self.verify(value, &username).is_some())
    }

    /// What `value` says if it is signed by this key for `username`.
    pub fn verify(&self, value: &str, username: &str) -> Option<Presented> {
        let mut parts = value.split('.');
        let (name, nonce, meta, tag) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || name.len() > 128 {
            return None;
        }
        let name = Base64UrlUnpadded::decode_vec(name).ok()?;
        let mut id: DeviceId = [0; 16];
        let mut m = [0u8; META];
        let mut sent = [0u8; TAG];
        if Base64UrlUnpadded::decode(nonce, &mut id).ok()?.len() != id.len()
            || Base64UrlUnpadded::decode(meta, &mut m).ok()?.len() != META
            || Base64UrlUnpadded::decode(tag, &mut sent).ok()?.len() != TAG
        {
            return None;
        }
        // Compared in constant time; the username is part of what is signed.
        let good = super::ct_eq(&sent, &self.tag(username, &id, &m));
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&m[..8]);
        let mut generation = [0u8; 4];
        generation.copy_from_slice(&m[8..]);
        (good && name == username.as_bytes()).then_some(Presented {
            id,
            issued: u64::from_be_bytes(issued),
            generation: u32::from_be_bytes(generation),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(gen: u32, devices: &[DeviceId]) -> Account {
        Account {
            username: "admin".into(),
            role: crate::model::Role::Admin,
            password_hash: String::new(),
            email: None,
            must_change_password: false,
            created_at: 0,
            password_changed_at: 0,
            recovery_codes: Vec::new(),
            email_confirmed_at: None,
            email_bound_at: None,
            email_check: None,
            totp: None,
            device_gen: gen,
            devices: devices.iter().map(id_text).collect(),
            disabled: false,
            language: None,
            installer: None,
            alerts_off: Vec::new(),
            directory: None,
        }
    }

    #[test]
    fn a_cookie_is_valid_for_its_username_and_key_only() {
        let k = DeviceKey::new(&[1; 32]);
        let (c, id) = k.issue("admin", 3, 1_000);
        let p = k.verify(&c, "admin").expect("valid");
        assert_eq!(
            p,
            Presented {
                id,
                issued: 1_000,
                generation: 3
            }
        );
        assert_ne!(k.issue("admin", 3, 1_000).0, c, "a new nonce each time");
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
        // The issue time and the generation are signed.
        let parts: Vec<&str> = c.split('.').collect();
        let (other, _) = k.issue("admin", 4, 9_000);
        let meta = other.split('.').nth(2).expect("meta");
        let spliced = format!("{}.{}.{}.{}", parts[0], parts[1], meta, parts[3]);
        assert_eq!(k.verify(&spliced, "admin"), None, "meta is signed");
        for bad in [
            "",
            "a.b",
            "a.b.c",
            "a.b.c.d.e",
            "....",
            "YWRtaW4.AAAA.AAAA.AAAA",
        ] {
            assert_eq!(k.verify(bad, "admin"), None, "{bad:?}");
        }
    }

    #[test]
    fn signed_admits_this_keys_cookies_for_any_username_and_nothing_else() {
        let k = DeviceKey::new(&[1; 32]);
        for user in ["admin", "1001", "ü-name"] {
            assert!(k.signed(&k.issue(user, 1, 1_000).0), "{user}");
        }
        let (c, _) = k.issue("admin", 1, 1_000);
        assert!(!DeviceKey::new(&[2; 32]).signed(&c), "another box's key");
        let mut forged = c.clone();
        forged.pop();
        forged.push(if c.ends_with('A') { 'B' } else { 'A' });
        assert!(!k.signed(&forged), "tag checked");
        // Another name in front of a real cookie: the name is signed.
        let rest = c.split_once('.').expect("parts").1;
        assert!(!k.signed(&format!("MTAwMQ.{rest}")), "name swapped");
        for bad in ["", "....", "%%%.a.b.c", &"A".repeat(200)] {
            assert!(!k.signed(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_cookie_counts_for_its_generation_its_age_and_while_it_is_live() {
        let k = DeviceKey::new(&[1; 32]);
        let (c, id) = k.issue("admin", 3, 1_000);
        let p = k.verify(&c, "admin").expect("signed");
        assert!(p.known_to(&account(3, &[id]), 1_000 + MAX_AGE_S - 1));
        assert!(
            !p.known_to(&account(3, &[id]), 1_000 + MAX_AGE_S),
            "too old"
        );
        assert!(!p.known_to(&account(4, &[id]), 1_001), "another generation");
        assert!(!p.known_to(&account(3, &[[9; 16]]), 1_001), "not live");
    }
}
