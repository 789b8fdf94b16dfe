//! Argon2id hashing and verification, off the async runtime and bounded: at most
//! `concurrency` hashes run at once (each takes ~19 MiB and a core for tens of ms), at
//! most `queue` more wait; beyond that callers get [`Busy`] and answer 503 + Retry-After,
//! so a flood of logins cannot exhaust the box's memory or starve the PBX.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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
    verify_in(password.as_bytes(), phc, &mut Vec::new())
}

/// Largest argon2 memory a stored hash may ask for (KiB): a damaged record must not make
/// a login allocate gigabytes.
const MAX_M_COST_KIB: u32 = 256 * 1024;

/// argon2's `verify_password`, computed in `memory` (resized to the hash's block count)
/// instead of a fresh allocation: on musl every 19 MiB allocation is a new mapping,
/// and faulting its 4,864 pages in cost a third of each login.
fn verify_in(password: &[u8], phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    memory.resize(params.block_count(), Block::default());
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut *out, &mut memory[..])
        .is_ok()
        // Output's == compares in constant time.
        && Output::new(out).is_ok_and(|o| o == expected)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks in progress")]
pub struct Busy;

/// Verified against when the username does not exist, so that unknown and known
/// usernames take the same time. Random salt and random output with the real
/// parameters: verifying costs exactly one real hash, and no password produces this
/// output (that would be a 256-bit preimage). A constant saves a hash at every start.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$2Idamfd2Sxl515uaWuYp2A$n7VBi9THC8ZXfV2pGdDGk/F8B9davLoDJ5jovckiBbA";

/// Hashing runs on its own threads, started on demand, at most `concurrency`, each
/// gone after [`WORKER_IDLE`] without work. A worker that finishes takes the next queued
/// job itself: the hash slots never wait for the async runtime to hand out work (with
/// two workers on two cores the runtime thread often does not get a core for a while,
/// and under spawn_blocking every such gap left a slot idle).
pub struct Hasher {
    shared: Arc<Shared>,
    /// Password checks run so far (for `ctl status`: the lockout's promise is counted
    /// in hashes, not in answers).
    checks: Arc<std::sync::atomic::AtomicU64>,
}

/// How long an idle worker stays (with its thread) before it exits.
const WORKER_IDLE: Duration = Duration::from_secs(10);

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    concurrency: usize,
    queue: usize,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Workers alive, and how many of them wait for work.
    workers: usize,
    idle: usize,
    running: usize,
    stop: bool,
    /// argon2 blocks (1 KiB each) kept by workers between jobs.
    held_blocks: usize,
}

struct Job {
    /// Set when the caller is gone (its connection closed): the job is dropped unrun.
    abandoned: Arc<AtomicBool>,
    /// A check carried by a valid device cookie (the owner's known browser): queued
    /// ahead of the others, in a reserve of its own.
    known: bool,
    run: JobFn,
}

/// Checks of known browsers that may wait besides the `queue` (which an attack can
/// fill): a flood of guesses never turns the owner away, nor makes them wait behind it.
/// An attacker has no valid device cookie to get in here.
const KNOWN_RESERVE: usize = 4;

/// A job: runs with the worker's argon2 memory.
type JobFn = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Marks a job abandoned when the waiting caller's future is dropped.
struct Abandon(Arc<AtomicBool>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn worker(shared: &Shared) {
    // argon2's working memory, kept while jobs are queued (a burst of logins: no
    // 19 MiB mapping to fault in per hash), freed as soon as the queue is empty.
    let mut memory: Vec<Block> = Vec::new();
    let mut held = 0;
    let mut st = shared.lock();
    loop {
        if st.stop {
            break;
        }
        let Some(job) = st.jobs.pop_front() else {
            if memory.capacity() > 0 {
                // Nothing queued: the burst is over, the memory goes back to the system
                // (outside the lock: unmapping 19 MiB takes a while).
                st.held_blocks -= held;
                held = 0;
                let freed = std::mem::take(&mut memory);
                drop(st);
                drop(freed);
                st = shared.lock();
                continue;
            }
            st.idle += 1;
            let (next, timeout) = shared
                .work
                .wait_timeout(st, WORKER_IDLE)
                .unwrap_or_else(PoisonError::into_inner);
            st = next;
            st.idle -= 1;
            if timeout.timed_out() && st.jobs.is_empty() {
                break;
            }
            continue;
        };
        if job.abandoned.load(Ordering::SeqCst) {
            continue;
        }
        st.running += 1;
        drop(st);
        (job.run)(&mut memory);
        st = shared.lock();
        st.running -= 1;
        st.held_blocks = st.held_blocks - held + memory.len();
        held = memory.len();
    }
    st.workers -= 1;
}

impl Hasher {
    pub fn new(concurrency: usize, queue: usize) -> Hasher {
        Hasher {
            shared: Arc::new(Shared {
                state: Mutex::default(),
                work: Condvar::new(),
                concurrency: concurrency.max(1),
                queue,
            }),
            checks: Arc::default(),
        }
    }

    /// Password checks (argon2 verifications) computed since start.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Queues `job`; at most `concurrency` run and `queue` more wait, beyond that Busy.
    /// A known browser's check goes ahead of the others, within [`KNOWN_RESERVE`].
    fn submit(&self, job: Job) -> Result<(), Busy> {
        let mut st = self.shared.lock();
        st.jobs.retain(|j| !j.abandoned.load(Ordering::SeqCst));
        // Known browsers' jobs are always at the front, in their order of arrival.
        let known = st.jobs.iter().take_while(|j| j.known).count();
        if job.known {
            if known >= KNOWN_RESERVE {
                return Err(Busy);
            }
            st.jobs.insert(known, job);
        } else {
            let others = st.jobs.len() - known;
            if st.running + others >= self.shared.concurrency + self.shared.queue {
                return Err(Busy);
            }
            st.jobs.push_back(job);
        }
        if st.idle > 0 {
            self.shared.work.notify_one();
        }
        // More queued than idle workers to take them (a woken worker counts as idle
        // until it takes its job): another worker, up to `concurrency`.
        if st.jobs.len() > st.idle && st.workers < self.shared.concurrency {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("argon2".into())
                .spawn(move || worker(&shared));
            match spawned {
                Ok(_) => st.workers += 1,
                Err(e) => {
                    tracing::warn!("cannot start a hashing thread: {e}");
                    if st.workers == 0 {
                        st.jobs.pop_back();
                        return Err(Busy);
                    }
                }
            }
        }
        Ok(())
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        self.run_in(false, job).await
    }

    async fn run_in<T: Send + 'static>(
        &self,
        known: bool,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        // A caller that hangs up while queued (its future dropped) gives its place back.
        let _abandon = Abandon(Arc::clone(&abandoned));
        self.submit(Job {
            abandoned,
            known,
            run: Box::new(move |memory| {
                let _ = tx.send(job(memory));
            }),
        })?;
        rx.await.map_err(|_| Busy)
    }

    pub async fn hash(&self, password: Secret) -> Result<String, Busy> {
        self.run(move |_| hash_blocking(password.expose())).await
    }

    /// Verifies `password` against `phc`, or against a dummy hash when `phc` is `None`
    /// (unknown user) so that both take the same time; the dummy never matches.
    pub async fn verify(&self, password: Secret, phc: Option<String>) -> Result<bool, Busy> {
        self.verify_from(false, password, phc).await
    }

    /// [`Hasher::verify`] from the `browser` of a valid device cookie (`true`): ahead
    /// of the other checks, past a full queue (see [`KNOWN_RESERVE`]).
    pub async fn verify_from(
        &self,
        browser: bool,
        password: Secret,
        phc: Option<String>,
    ) -> Result<bool, Busy> {
        let account = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY_HASH.to_string());
        let checks = Arc::clone(&self.checks);
        let check = move |memory: &mut Vec<Block>| {
            checks.fetch_add(1, Ordering::Relaxed);
            verify_in(password.expose().as_bytes(), &phc, memory)
        };
        let ok = self.run_in(browser, check).await?;
        Ok(ok && account)
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.work.notify_all();
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

    /// The reusable-memory check gives argon2's own answer, for other parameters,
    /// variants and output lengths too, with one buffer reused across them all.
    #[test]
    fn verify_in_agrees_with_argon2s_verify_password() {
        use argon2::password_hash::PasswordVerifier;
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let mut hashes = vec![
            hash_blocking("correct horse battery"),
            DUMMY_HASH.to_string(),
        ];
        for (alg, m, t, p, len) in [
            (Algorithm::Argon2id, 4096, 1, 2, 32),
            (Algorithm::Argon2i, 1024, 3, 1, 16),
            (Algorithm::Argon2d, 2048, 1, 1, 64),
        ] {
            let params = Params::new(m, t, p, Some(len)).expect("params");
            let a = Argon2::new(alg, Version::V0x13, params);
            let h = a
                .hash_password(b"correct horse battery", &salt)
                .expect("hash");
            hashes.push(h.to_string());
        }
        let first = hashes[0].clone();
        hashes.push(first.replace("$v=19$", "$v=16$"));
        hashes.push(first.replace("m=19456", "m=19457"));
        hashes.push(first[..first.len() - 2].to_string());
        hashes.push("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$".into());
        hashes.push(
            "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA".into(),
        );
        hashes.push("not a hash".into());
        let mut memory = Vec::new();
        for h in &hashes {
            for pw in ["correct horse battery", "wrong horse battery", ""] {
                let oracle = PasswordHash::new(h).is_ok_and(|parsed| {
                    parsed.params.get_decimal("m").unwrap_or(0) <= MAX_M_COST_KIB
                        && Argon2::default()
                            .verify_password(pw.as_bytes(), &parsed)
                            .is_ok()
                });
                assert_eq!(
                    verify_in(pw.as_bytes(), h, &mut memory),
                    oracle,
                    "{h} / {pw:?}"
                );
            }
        }
        assert!(verify_in(b"correct horse battery", &hashes[0], &mut memory));
        assert!(
            !verify_in(b"x", &hashes[8], &mut memory),
            "4 GiB is refused"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_burst_is_checked_right_and_keeps_no_memory_afterwards() {
        let h = Arc::new(Hasher::new(2, 16));
        let stored = hash_blocking("correct horse battery");
        let checks: Vec<_> = (0..6)
            .map(|i| {
                let (h, stored) = (Arc::clone(&h), stored.clone());
                let pw = if i % 2 == 0 {
                    "correct horse battery"
                } else {
                    "wrong"
                };
                tokio::spawn(async move { h.verify(Secret::new(pw.into()), Some(stored)).await })
            })
            .collect();
        let mut results = Vec::new();
        for c in checks {
            results.push(c.await.expect("join").expect("not busy"));
        }
        assert_eq!(results, [true, false, true, false, true, false]);
        // The workers give their memory back once the queue is empty.
        for _ in 0..200 {
            let (running, held, workers) = {
                let st = h.shared.lock();
                (st.running, st.held_blocks, st.workers)
            };
            assert!(workers <= 2, "never more threads than slots");
            if running == 0 && held == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("memory still held after the burst");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_caller_that_hangs_up_while_queued_gives_its_place_back() {
        let h = Arc::new(Hasher::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let h1 = Arc::clone(&h);
        let first = tokio::spawn(async move { h1.run(move |_| rx.recv().is_ok()).await });
        tokio::task::yield_now().await;
        // Queued, then gone (the connection closed): its future is dropped mid-wait.
        let ran = Arc::new(AtomicBool::new(false));
        let (h2, ran2) = (Arc::clone(&h), Arc::clone(&ran));
        let gone =
            tokio::spawn(async move { h2.run(move |_| ran2.store(true, Ordering::SeqCst)).await });
        tokio::task::yield_now().await;
        gone.abort();
        assert!(gone.await.is_err(), "aborted");
        // The queue has room again.
        let h3 = Arc::clone(&h);
        let third = tokio::spawn(async move { h3.run(|_| 3).await });
        tokio::task::yield_now().await;
        tx.send(()).expect("release");
        assert_eq!(first.await.expect("join"), Ok(true));
        assert_eq!(third.await.expect("join"), Ok(3));
        assert!(!ran.load(Ordering::SeqCst), "the abandoned job never ran");
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
        let first = tokio::spawn(async move { h1.run(move |_| rx.recv().is_ok()).await });
        tokio::task::yield_now().await;
        // One waiter fits in the queue ...
        let h2 = Arc::clone(&h);
        let second = tokio::spawn(async move { h2.run(|_| 2).await });
        tokio::task::yield_now().await;
        // ... the next does not.
        assert_eq!(h.run(|_| 3).await, Err(Busy));
        tx.send(()).expect("release");
        assert_eq!(first.await.expect("join"), Ok(true));
        assert_eq!(second.await.expect("join"), Ok(2));
    }

    /// The owner's known browser (a valid device cookie) is not turned away by a queue
    /// the attack filled, and goes before the attack's queued checks: `make soak` saw
    /// the known browser get 503 after 1 ms during the 10,000-attempt flood.
    #[tokio::test(flavor = "current_thread")]
    async fn a_known_browser_gets_past_a_full_queue_and_goes_first() {
        let h = Arc::new(Hasher::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let order = Arc::new(Mutex::new(Vec::new()));
        let h1 = Arc::clone(&h);
        let first = tokio::spawn(async move { h1.run(move |_| rx.recv().is_ok()).await });
        tokio::task::yield_now().await;
        let (h2, o2) = (Arc::clone(&h), Arc::clone(&order));
        let queued = tokio::spawn(async move {
            h2.run(move |_| o2.lock().expect("order").push("attack"))
                .await
        });
        tokio::task::yield_now().await;
        assert_eq!(h.run(|_| ()).await, Err(Busy), "the queue is full");
        let (h3, o3) = (Arc::clone(&h), Arc::clone(&order));
        let known = tokio::spawn(async move {
            h3.run_in(true, move |_| o3.lock().expect("order").push("known"))
                .await
        });
        tokio::task::yield_now().await;
        tx.send(()).expect("release");
        assert_eq!(first.await.expect("join"), Ok(true));
        assert_eq!(known.await.expect("join"), Ok(()));
        assert_eq!(queued.await.expect("join"), Ok(()));
        assert_eq!(*order.lock().expect("order"), ["known", "attack"]);
    }
}
