//! The `accounts` tree: username → JSON [`Account`]. Every change is flushed.

use super::{decode, encode, Access, DataDb, StoreError, Trees, Updated};
use crate::model::{Account, Role, ADMIN};

impl DataDb {
    pub fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        self.with(Access::Read, |t| {
            let v = t.accounts.get(username).map_err(|e| self.err(e))?;
            v.map(|b| decode(username, &b)).transpose()
        })
    }

    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.with(Access::Read, |t| self.accounts_in(t))
    }

    pub(super) fn accounts_in(&self, t: &Trees) -> Result<Vec<Account>, StoreError> {
        let mut out = Vec::new();
        for kv in t.accounts.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push(decode(&String::from_utf8_lossy(&k), &v)?);
        }
        Ok(out)
    }

    /// Creates or replaces an account and flushes it to flash before returning.
    pub fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        let bytes = encode(&account.username, account)?;
        self.with(Access::Write, |t| {
            t.accounts
                .insert(account.username.as_bytes(), bytes)
                .map_err(|e| self.err(e))?;
            self.flush(t)
        })
    }

    /// Changes an account in place and flushes it (nothing is written when `change`
    /// leaves the record as it was): `change` is applied to the record as it is at write
    /// time (compare-and-swap, retried if another write got in between), so a slow flow
    /// — a password change that hashed for 50 ms — cannot put back fields that changed
    /// meanwhile. What the last applied `change` returned comes back with the record;
    /// `None` if the account does not exist.
    pub fn update_account<R>(
        &self,
        username: &str,
        change: impl FnMut(&mut Account) -> R,
    ) -> Result<Option<Updated<R>>, StoreError> {
        self.update(username, false, change)
    }

    /// [`Self::update_account`] for a change of password or recovery address: every
    /// reset token of the account goes in the same flushed write — removed first, so a
    /// power cut between the two can only have removed tokens, never kept one alive.
    pub fn update_account_revoking_tokens<R>(
        &self,
        username: &str,
        change: impl FnMut(&mut Account) -> R,
    ) -> Result<Option<Updated<R>>, StoreError> {
        self.update(username, true, change)
    }

    fn update<R>(
        &self,
        username: &str,
        revoke_tokens: bool,
        mut change: impl FnMut(&mut Account) -> R,
    ) -> Result<Option<Updated<R>>, StoreError> {
        let mut decided = None;
        let account = self.update_account_with(username, revoke_tokens, &mut |a| {
            decided = Some(change(a));
        })?;
        Ok(account
            .zip(decided)
            .map(|(account, decided)| Updated { account, decided }))
    }

    /// Both updates behind a `dyn`: the compare-and-swap loop, the record's decoding and
    /// encoding and the flush are compiled once, not once per call site.
    fn update_account_with(
        &self,
        username: &str,
        revoke_tokens: bool,
        change: &mut dyn FnMut(&mut Account),
    ) -> Result<Option<Account>, StoreError> {
        self.with(Access::Write, |t| {
            if revoke_tokens {
                self.remove_tokens_of(t, username)?;
            }
            let updated = self.update_in(t, username, change)?;
            if revoke_tokens || updated.as_ref().is_some_and(|(_, changed)| *changed) {
                self.flush(t)?;
            }
            Ok(updated.map(|(a, _)| a))
        })
    }

    fn update_in(
        &self,
        t: &Trees,
        username: &str,
        change: &mut dyn FnMut(&mut Account),
    ) -> Result<Option<(Account, bool)>, StoreError> {
        loop {
            let Some(old) = t.accounts.get(username).map_err(|e| self.err(e))? else {
                return Ok(None);
            };
            let mut account = decode(username, &old)?;
            let before = account.clone();
            change(&mut account);
            if account == before {
                // Nothing to write: no compare-and-swap, no flush, no flash wear.
                return Ok(Some((account, false)));
            }
            let new = encode(username, &account)?;
            let swapped = t
                .accounts
                .compare_and_swap(username, Some(old), Some(new))
                .map_err(|e| self.err(e))?;
            if swapped.is_ok() {
                return Ok(Some((account, true)));
            }
        }
    }

    /// Creates an account unless one with that name exists (checked and written in one
    /// step); flushed. False if it existed.
    pub fn insert_new_account(&self, account: &Account) -> Result<bool, StoreError> {
        let bytes = encode(&account.username, account)?;
        self.with(Access::Write, |t| {
            let swapped = t
                .accounts
                .compare_and_swap(
                    account.username.as_bytes(),
                    None as Option<&[u8]>,
                    Some(bytes),
                )
                .map_err(|e| self.err(e))?;
            if swapped.is_err() {
                return Ok(false);
            }
            self.flush(t)?;
            Ok(true)
        })
    }

    /// Deletes an account and its reset tokens, flushed. Returns false if it did not exist.
    pub fn delete_account(&self, username: &str) -> Result<bool, StoreError> {
        self.with(Access::Write, |t| {
            let existed = t
                .accounts
                .remove(username)
                .map_err(|e| self.err(e))?
                .is_some();
            self.remove_tokens_of(t, username)?;
            self.flush(t)?;
            Ok(existed)
        })
    }

    /// First boot: creates `admin` from the label password's hash, with a forced change.
    /// Returns true when it created the account.
    pub fn ensure_admin(&self, initial_password_hash: &str, now: u64) -> Result<bool, StoreError> {
        // A read first: at a start on a full flash (a RAM copy) a write would fail.
        if self.account(ADMIN)?.is_some() && self.initialised_marker().exists() {
            return Ok(false);
        }
        let created = self.insert_new_account(&Account::fresh(
            ADMIN.into(),
            Role::Admin,
            initial_password_hash.into(),
            None,
            now,
        ))?;
        let marker = self.initialised_marker();
        if !marker.exists() {
            crate::fsutil::write_atomic(&marker, b"admin created\n", 0o600)
                .map_err(StoreError::Io)?;
        }
        Ok(created)
    }
}
