//! Offline recovery codes (spec §8): ten single-use codes of 80 bits, shown once, kept
//! only as SHA-256 in the account; one of them and a new password get the account back
//! from the PBX's own network, with no mail server involved.

use std::net::IpAddr;

use serde::Deserialize;

use super::check_local;
use crate::app::App;
use crate::auth::Secret;
use crate::error::Error;

/// Codes per set.
pub const COUNT: usize = 10;
/// Crockford's base32: no I, L, O, U — read aloud and typed back without confusion.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 16 symbols of 5 bits: 80 bits per code.
const SYMBOLS: usize = 16;

/// A fresh code, grouped for reading: `K7QF-2M9D-XR4T-8WPA`.
fn new_code() -> String {
    let bytes = crate::auth::random_bytes::<10>();
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
    (norm.len() == SYMBOLS).then(|| hex(&crate::auth::token_digest(&norm)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces the account's codes with a fresh set (the password again, counted like a
/// sign-in); returns the codes — the only time they exist outside the user's hands.
pub async fn generate(
    app: &App,
    ip: IpAddr,
    username: &str,
    password: Secret,
) -> Result<Vec<String>, Error> {
    super::super::login::verify_password(app, ip, username, password, None).await?;
    let codes: Vec<String> = (0..COUNT).map(|_| new_code()).collect();
    let digests: Vec<String> = codes.iter().filter_map(|c| digest(c)).collect();
    let name = username.to_string();
    app.data()?
        .run(move |d| d.update_account(&name, |a| a.recovery_codes = digests.clone()))
        .await?
        .ok_or(Error::Unauthenticated)?;
    app.audit("recovery_codes_generated", Some(username), Some(ip), None);
    tracing::info!(user = %username, "new recovery codes generated");
    Ok(codes)
}

/// How many unused codes `username` has.
pub async fn left(app: &App, username: &str) -> Result<usize, Error> {
    Ok(super::account(app, username)
        .await?
        .map_or(0, |a| a.recovery_codes.len()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRecovery {
    pub username: String,
    pub code: Secret,
    pub new_password: Secret,
    /// The phone's current code: needed too on an account with two-factor sign-in (a
    /// recovery code stands in for one factor only).
    #[serde(default)]
    pub totp: Option<Secret>,
}

/// `POST /recover-with-code`: the local-network rule, the address lockout (a wrong code
/// is a failed sign-in), the password rules, then the code consumed and the new password
/// set in one compare-and-swap — a code works once even when two requests race.
pub async fn recover(app: &App, peer: IpAddr, req: CodeRecovery) -> Result<(), Error> {
    check_local(app, peer)?;
    let attempt = app
        .limiter()
        .begin(peer, &req.username, None)
        .map_err(|d| Error::Locked { retry_after: d })?;
    let wanted = digest(req.code.expose());
    let account = match &wanted {
        Some(_) if req.username.len() <= 64 => super::account(app, &req.username).await?,
        _ => None,
    };
    let holds = |codes: &[String], w: &str| {
        codes.iter().fold(false, |hit, c| {
            hit | crate::auth::ct_eq(c.as_bytes(), w.as_bytes())
        })
    };
    let (Some(wanted), Some(account)) = (wanted, account) else {
        attempt.failed();
        return Err(Error::CodeInvalid);
    };
    if !holds(&account.recovery_codes, &wanted) {
        attempt.failed();
        tracing::info!(%peer, "recovery code refused");
        return Err(Error::CodeInvalid);
    }
    if account.two_factor() {
        // The code stood in for the password; the phone is still owed. Nothing is used
        // up until both are right.
        let totp = req.totp.as_ref().ok_or(Error::TotpRequired)?;
        crate::flows::twofactor::phone_code(app, peer, &account.username, totp).await?;
    }
    let hash = app
        .hash_new_password(req.new_password, &account.username)
        .await?;
    let now = app.clock().unix();
    let name = account.username.clone();
    let used = std::sync::atomic::AtomicBool::new(false);
    app.data()?
        .run(move |d| {
            d.update_account_revoking_tokens(&name, |a| {
                let before = a.recovery_codes.len();
                a.recovery_codes.retain(|c| c != &wanted);
                let hit = a.recovery_codes.len() < before;
                used.store(hit, std::sync::atomic::Ordering::SeqCst);
                if hit {
                    a.apply_new_password(&hash, now);
                }
            })
            .map(|a| a.filter(|_| used.load(std::sync::atomic::Ordering::SeqCst)))
        })
        .await?
        .ok_or(Error::CodeInvalid)?;
    attempt.succeeded();
    super::reset::after_reset(app, account.username, peer, super::reset::Way::Code);
    Ok(())
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
