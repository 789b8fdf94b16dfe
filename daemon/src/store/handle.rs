//! [`Store`]: how async code uses the data DB. Each method names one store operation
//! and runs it on a blocking thread (flash I/O, and a reopen or a RAM copy after a
//! fault, never run on a runtime thread), so flows write `data.account(name).await?`.
//!
//! One blocking-task type serves every method: the job and its result travel boxed.
//! Generic over the job, tokio's task machinery (built at opt-level 3) would be compiled
//! once per call site.

use std::any::Any;
use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};

use super::{Consumed, DataDb, StoreError, Updated};
use crate::model::{Account, AuditEvent, ResetToken};

/// A job on its way to a blocking thread, its result boxed.
type Job = Box<dyn FnOnce(&DataDb) -> Box<dyn Any + Send> + Send>;

/// A value kept in the `settings` tree under its own name.
pub trait Setting: Serialize + DeserializeOwned + Send + 'static {
    const KEY: &'static str;
}

/// The data DB for async code; cheap to clone.
#[derive(Clone)]
pub struct Store(Arc<DataDb>);

impl Store {
    pub fn new(db: Arc<DataDb>) -> Store {
        Store(db)
    }

    /// The blocking engine, for code already off the runtime (`ctl`, the factory reset,
    /// start-up) and for tests.
    pub fn blocking(&self) -> &DataDb {
        &self.0
    }

    /// Explicit flushes since start (`ctl status`).
    pub fn flushes(&self) -> u64 {
        self.0.flushes()
    }

    pub async fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let name = username.to_owned();
        self.run(move |d| d.account(&name)).await
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.run(|d| d.accounts()).await
    }

    /// See [`DataDb::update_account`]: the change is applied to the record as it is at
    /// write time, and what it decided comes back with the record. `None`: no account.
    pub async fn update_account<R: Send + 'static>(
        &self,
        username: &str,
        change: impl FnMut(&mut Account) -> R + Send + 'static,
    ) -> Result<Option<Updated<R>>, StoreError> {
        let name = username.to_owned();
        self.run(move |d| d.update_account(&name, change)).await
    }

    /// See [`DataDb::update_account_revoking_tokens`].
    pub async fn update_account_revoking_tokens<R: Send + 'static>(
        &self,
        username: &str,
        change: impl FnMut(&mut Account) -> R + Send + 'static,
    ) -> Result<Option<Updated<R>>, StoreError> {
        let name = username.to_owned();
        self.run(move |d| d.update_account_revoking_tokens(&name, change))
            .await
    }

    /// False if an account of that name exists.
    pub async fn insert_new_account(&self, account: Account) -> Result<bool, StoreError> {
        self.run(move |d| d.insert_new_account(&account)).await
    }

    /// False if it did not exist.
    pub async fn delete_account(&self, username: &str) -> Result<bool, StoreError> {
        let name = username.to_owned();
        self.run(move |d| d.delete_account(&name)).await
    }

    pub async fn setting<T: Setting>(&self) -> Result<Option<T>, StoreError> {
        self.run(|d| d.setting::<T>(T::KEY)).await
    }

    /// Stored and flushed before it returns.
    pub async fn save<T: Setting>(&self, value: T) -> Result<(), StoreError> {
        self.run(move |d| d.put_setting(T::KEY, &value)).await
    }

    pub async fn audit_events(&self) -> Result<Vec<AuditEvent>, StoreError> {
        self.run(|d| d.audit_events()).await
    }

    pub async fn issue_token(
        &self,
        digest: [u8; 32],
        token: ResetToken,
        now: u64,
    ) -> Result<(), StoreError> {
        self.run(move |d| d.issue_token(digest, &token, now)).await
    }

    pub async fn token_valid(
        &self,
        digest: [u8; 32],
        now: u64,
    ) -> Result<Option<ResetToken>, StoreError> {
        self.run(move |d| d.token_valid(&digest, now)).await
    }

    pub async fn consume_token(
        &self,
        digest: [u8; 32],
        now: u64,
        new_hash: String,
    ) -> Result<Consumed, StoreError> {
        self.run(move |d| d.consume_token(&digest, now, &new_hash))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&DataDb) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let out = self
            .run_boxed(Box::new(move |d| Box::new(f(d)) as Box<dyn Any + Send>))
            .await?;
        match out.downcast::<Result<T, StoreError>>() {
            Ok(r) => *r,
            Err(_) => Err(StoreError::Io(std::io::Error::other(
                "internal: a store call's result had the wrong type",
            ))),
        }
    }

    async fn run_boxed(&self, job: Job) -> Result<Box<dyn Any + Send>, StoreError> {
        let db = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || job(&db))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))
    }
}
