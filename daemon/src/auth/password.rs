//! Argon2id hashing and verification, off the async runtime and bounded: at most
//! `concurrency` hashes run at once (each takes ~19 MiB and a core for tens of ms), at
//! most `queue` more wait; beyond that callers get [`Busy`] and answer 503 + Retry-After,
//! so a flood of logins cannot exhaust the box's memory or starve the PBX.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::Secret;

/// argon2id m=19456 KiB, t=2, p=1 (spec §5; OWASP's minimum for argon2id).
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn argon2() -> Argon2<'static> {
    // Constant, valid parameters: Params::new only fails for out-of-range values.
    #[allow(clippy::expect_used)]
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(32)).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes synchronously (provisioning, tests). Returns a PHC string.
pub fn hash_blocking(password: &str) -> String {
    let salt_bytes = super::random_bytes::<16>();
    // 16 bytes are within SaltString's accepted length, and hashing with valid params
    // and a valid salt cannot fail.
    #[allow(clippy::expect_used)]
    let salt = SaltString::encode_b64(&salt_bytes).expect("16-byte salt is valid");
    #[allow(clippy::expect_used)]
    let hash = argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with valid params and salt");
    hash.to_string()
}

/// Verifies synchronously. A malformed stored hash verifies as false.
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks in progress")]
pub struct Busy;

/// Verified against when the username does not exist, so that unknown and known
/// usernames take the same time. Random salt and random output with the real
/// parameters: verifying costs exactly one real hash, and no password produces this
/// output (that would be a 256-bit preimage). A constant saves a hash at every start.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$2Idamfd2Sxl515uaWuYp2A$n7VBi9THC8ZXfV2pGdDGk/F8B9davLoDJ5jovckiBbA";

pub struct Hasher {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

impl Hasher {
    pub fn new(concurrency: usize, queue: usize) -> Hasher {
        Hasher {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(Busy);
                }
                let p = Arc::clone(&self.slots).acquire_owned().await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                // The semaphore is never closed.
                p.map_err(|_| Busy)?
            }
        };
        tokio::task::spawn_blocking(move || {
            let out = job();
            drop(permit);
            out
        })
        .await
        .map_err(|_| Busy)
    }

    pub async fn hash(&self, password: Secret) -> Result<String, Busy> {
        self.run(move || hash_blocking(password.expose())).await
    }

    /// Verifies `password` against `phc`, or against a dummy hash when `phc` is `None`
    /// (unknown user) so that both take the same time; the dummy never matches.
    pub async fn verify(&self, password: Secret, phc: Option<String>) -> Result<bool, Busy> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY_HASH.to_string());
        let ok = self
            .run(move || verify_blocking(password.expose(), &phc))
            .await?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_uses_spec_parameters_and_verifies() {
        let h = hash_blocking("correct horse battery");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("correct horse battery", &h));
        assert!(!verify_blocking("wrong horse battery", &h));
        assert!(!verify_blocking("x", "not a hash"));
    }

    #[test]
    fn dummy_hash_parses_with_the_real_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("valid PHC");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert!(DUMMY_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!verify_blocking("", DUMMY_HASH));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn unknown_user_never_verifies() {
        let h = Hasher::new(1, 4);
        assert!(!h
            .verify(Secret::new("anything".into()), None)
            .await
            .expect("not busy"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn beyond_the_queue_callers_get_busy() {
        let h = Arc::new(Hasher::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // Occupy the only slot until we say so.
        let h1 = Arc::clone(&h);
        let first = tokio::spawn(async move { h1.run(move || rx.recv().is_ok()).await });
        tokio::task::yield_now().await;
        // One waiter fits in the queue ...
        let h2 = Arc::clone(&h);
        let second = tokio::spawn(async move { h2.run(|| 2).await });
        tokio::task::yield_now().await;
        // ... the next does not.
        assert_eq!(h.run(|| 3).await, Err(Busy));
        tx.send(()).expect("release");
        assert_eq!(first.await.expect("join"), Ok(true));
        assert_eq!(second.await.expect("join"), Ok(2));
    }
}
