//! The `tokens` tree: SHA-256 of a reset token → JSON [`ResetToken`] (the token itself
//! is never stored). Consuming one is one transaction with the account's new hash.

use super::{encode, Access, DataDb, StoreError, Trees};
use crate::model::{Account, ResetToken};

/// Outcome of consuming a reset token.
#[derive(Debug, PartialEq, Eq)]
pub enum Consumed {
    /// The token was valid: the account now has the new hash and the token is gone.
    Done(Box<Account>),
    /// Unknown, already used, or expired: one answer for all three.
    Invalid,
}

/// Live reset links per account: the owner's outstanding link survives a newer request.
pub const LIVE_PER_ACCOUNT: usize = 3;

impl DataDb {
    pub(super) fn remove_tokens_of(&self, t: &Trees, username: &str) -> Result<usize, StoreError> {
        let mut n = 0;
        for kv in t.tokens.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let stale = match serde_json::from_slice::<ResetToken>(&v) {
                Ok(t) => t.username == username,
                Err(_) => true, // an undecodable token can never be used: drop it
            };
            if stale {
                t.tokens.remove(k).map_err(|e| self.err(e))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Stores a new reset token (by its digest) and removes every expired one; of the
    /// account's live ones at most [`LIVE_PER_ACCOUNT`] stay (the oldest go), so a new
    /// request does not void the owner's outstanding link. Flushed before returning.
    pub fn issue_token(
        &self,
        digest: [u8; 32],
        token: &ResetToken,
        now: u64,
    ) -> Result<(), StoreError> {
        let bytes = encode("token", token)?;
        self.with(Access::Write, |t| {
            let mut own = Vec::new();
            for kv in t.tokens.iter() {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                match serde_json::from_slice::<ResetToken>(&v) {
                    Ok(r) if r.expires_at > now => {
                        if r.username == token.username {
                            own.push((r.issued_at, k));
                        }
                    }
                    // Expired, or undecodable (never usable): dropped.
                    _ => {
                        t.tokens.remove(k).map_err(|e| self.err(e))?;
                    }
                }
            }
            // The oldest go until there is room for the new one (a handful: no sort).
            while own.len() >= LIVE_PER_ACCOUNT {
                let Some(i) = (0..own.len()).min_by_key(|&i| own[i].0) else {
                    break;
                };
                let (_, k) = own.swap_remove(i);
                t.tokens.remove(k).map_err(|e| self.err(e))?;
            }
            t.tokens.insert(digest, bytes).map_err(|e| self.err(e))?;
            self.flush(t)
        })
    }

    /// Whether a token digest is currently valid (for the reset page), without using it.
    pub fn token_valid(
        &self,
        digest: &[u8; 32],
        now: u64,
    ) -> Result<Option<ResetToken>, StoreError> {
        let v = self.with(Access::Read, |t| {
            t.tokens.get(digest).map_err(|e| self.err(e))
        })?;
        Ok(
            v.and_then(|b| serde_json::from_slice::<ResetToken>(&b).ok())
                .filter(|t| t.expires_at > now && t.issued_at <= now),
        )
    }

    /// Atomically: checks the token, sets the account's new password hash, clears the
    /// forced change, and removes the token — so a token works exactly once even when two
    /// requests race. Flushed before returning.
    pub fn consume_token(
        &self,
        digest: &[u8; 32],
        now: u64,
        new_hash: &str,
    ) -> Result<Consumed, StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let abort = |key: &str, e: serde_json::Error| {
            ConflictableTransactionError::Abort(StoreError::Decode {
                key: key.into(),
                detail: e.to_string(),
            })
        };
        self.with(Access::Write, |t| {
            let result = (&t.tokens, &t.accounts).transaction(|(tokens, accounts)| {
                let Some(raw) = tokens.remove(&digest[..])? else {
                    return Ok(Consumed::Invalid);
                };
                let token: ResetToken =
                    serde_json::from_slice(&raw).map_err(|e| abort("token", e))?;
                // Expired, or issued "after now" (a board without RTC whose clock
                // jumped back): one answer.
                if token.expires_at <= now || now < token.issued_at {
                    return Ok(Consumed::Invalid);
                }
                let Some(raw) = accounts.get(token.username.as_bytes())? else {
                    return Ok(Consumed::Invalid);
                };
                let mut account: Account =
                    serde_json::from_slice(&raw).map_err(|e| abort(&token.username, e))?;
                account.apply_new_password(new_hash, now);
                let bytes = serde_json::to_vec(&account).map_err(|e| abort(&token.username, e))?;
                accounts.insert(account.username.as_bytes(), bytes)?;
                Ok(Consumed::Done(Box::new(account)))
            });
            let consumed = match result {
                Ok(c) => c,
                Err(TransactionError::Abort(e)) => return Err(e),
                Err(TransactionError::Storage(e)) => return Err(self.err(e)),
            };
            if let Consumed::Done(a) = &consumed {
                // Any other token of the account dies with this one.
                self.remove_tokens_of(t, &a.username)?;
            }
            self.flush(t)?;
            Ok(consumed)
        })
    }
}
