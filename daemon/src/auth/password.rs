//! Argon2id hashing and verification, off the async runtime and bounded: at most
//! `concurrency` hashes run at once (each takes ~19 MiB and a core for tens of ms), at
//! most `queue` more wait; beyond that callers get [`Busy`] and answer 503 + Retry-After,
//! so a flood of logins cannot exhaust the box's memory. A check that waited
//! [`QUEUE_WAIT`] without a thread taking it, or [`ANSWER_WAIT`] in all, is [`Busy`]
//! too: nobody waits unanswered behind a flood. The hashing threads run under
//! `SCHED_IDLE` ([`pbx_board::sched`]): a login flood cannot take a core from Asterisk
//! or from the daemon's own HTTP threads; hashes then wait, they are not refused.
//!
//! Checks come in lanes by trust ([`Lane`]): a known browser's (valid device cookie),
//! then the local network's, then the rest. The trusted lanes go ahead of the others,
//! each within a small reserve of its own past a full queue, and never run under
//! `SCHED_IDLE`: one more thread at the daemon's normal priority serves only them, and
//! a `SCHED_IDLE` thread that takes one raises itself to normal priority for it. While a
//! flood keeps the core busy and the `SCHED_IDLE` threads starve, the owner's check
//! still runs. An attacker cannot use it: the first lane needs a valid cookie, the
//! second an address on the PBX's own segment, whose attempts the address lockout
//! counts, so what the trusted lanes take from voice is bounded by their rate.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use pbx_board::sched::Background;

use super::Secret;
use crate::config::HashCost;

/// argon2id m=19456 KiB, t=2, p=1 (spec §5; OWASP's minimum for argon2id): the
/// default of `policy.argon2_*`.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn argon2(cost: HashCost) -> Argon2<'static> {
    // Validated parameters (config: 7168..=262144 KiB, 1..=16 passes): Params::new only
    // fails for out-of-range values.
    #[allow(clippy::expect_used)]
    let params = Params::new(cost.m_kib, cost.t, P_COST, Some(32)).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes synchronously at the default cost (provisioning, tests). Returns a PHC string.
pub fn hash_blocking(password: &str) -> String {
    hash_with(HashCost::default(), password)
}

/// Hashes synchronously at `cost`. Returns a PHC string.
pub fn hash_with(cost: HashCost, password: &str) -> String {
    let salt_bytes = super::random_bytes::<16>();
    // 16 bytes are within SaltString's accepted length, and hashing with valid params
    // and a valid salt cannot fail.
    #[allow(clippy::expect_used)]
    let salt = SaltString::encode_b64(&salt_bytes).expect("16-byte salt is valid");
    #[allow(clippy::expect_used)]
    let hash = argon2(cost)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with valid params and salt");
    hash.to_string()
}

/// Milliseconds per hash at `cost` on this machine: the median of `rounds` hashes
/// (`pbx-authd bench-hash`, and the check at provisioning).
pub fn time_hash(cost: HashCost, rounds: usize) -> f64 {
    let mut ms: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let start = std::time::Instant::now();
            std::hint::black_box(hash_with(cost, "bench-hash password"));
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
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
    /// The cost of new hashes, and a hash of nothing at that cost for unknown users.
    cost: HashCost,
    dummy: Arc<str>,
    /// Password checks run so far (for `ctl status`: the lockout's promise is counted
    /// in hashes, not in answers).
    checks: Arc<std::sync::atomic::AtomicU64>,
    /// [`QUEUE_WAIT`] and [`ANSWER_WAIT`] (shorter in tests).
    waits: (Duration, Duration),
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
    /// The trusted lanes' own worker (normal priority) is alive.
    trusted_worker: bool,
    running: usize,
    stop: bool,
    /// argon2 blocks (1 KiB each) kept by workers between jobs.
    held_blocks: usize,
    /// The CPU priority the last started worker got (see [`pbx_board::sched`]).
    priority: Option<Background>,
    /// A `SCHED_IDLE` worker could not raise itself to normal priority for a trusted
    /// job (not root, no `CAP_SYS_NICE`): trusted jobs are then the trusted lanes' own
    /// thread's alone.
    cannot_raise: bool,
}

struct Job {
    /// [`QUEUED`], [`TAKEN`] by a worker, or [`GIVEN_UP`] by its caller (its connection
    /// closed, or it waited [`QUEUE_WAIT`]): a job given up is dropped unrun.
    state: Arc<AtomicU8>,
    lane: Lane,
    run: JobFn,
}

/// Whose check a job is, in the order they are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// Carried by a valid device cookie: the owner's known browser.
    Known,
    /// From the PBX's own network segment.
    Local,
    /// Everyone else (the internet side of a port-forwarded box, a spray).
    Other,
}

impl Lane {
    fn trusted(self) -> bool {
        self != Lane::Other
    }

    /// Checks of this lane that may wait besides the `queue` (which an attack can
    /// fill): a flood of guesses never turns the owner away, nor makes them wait
    /// behind it.
    fn reserve(self) -> usize {
        match self {
            Lane::Known | Lane::Local => TRUSTED_RESERVE,
            Lane::Other => 0,
        }
    }
}

/// Checks of each trusted lane that may wait past a full queue.
const TRUSTED_RESERVE: usize = 4;

/// How long a job may wait for a thread to take it: then its caller gets [`Busy`]
/// (503 with Retry-After) and the job is dropped unrun — under a flood the `SCHED_IDLE`
/// threads take the other lane's jobs slowly, and a browser must get an answer, not
/// wait past 10 s (issue 27).
const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// How long a caller waits for its answer in all: a job taken but starved under
/// `SCHED_IDLE` (`make bench` saw one answered after more than 10 s) is answered
/// [`Busy`] then, and runs to its end unread. Far above one hash on a slow board.
const ANSWER_WAIT: Duration = Duration::from_secs(8);

/// A job's [`Job::state`].
const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const GIVEN_UP: u8 = 2;

/// A job: runs with the worker's argon2 memory.
type JobFn = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Gives a job up when the waiting caller's future is dropped.
struct Abandon(Arc<AtomicU8>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(GIVEN_UP, Ordering::SeqCst);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A hashing thread: under `SCHED_IDLE`, taking any job, trusted ones first, and
/// running a trusted one at the daemon's normal priority (back to `SCHED_IDLE` after
/// it); or (`trusted`) the trusted lanes' own, at normal priority, taking only theirs.
/// A trusted check never runs under `SCHED_IDLE` where a flood would starve it (a LAN
/// sign-in waited the whole 20 s spray in `make bench`); where a worker may not raise
/// itself, trusted checks are left to their own thread.
fn worker(shared: &Shared, trusted: bool) {
    // Voice first: hashing gets only the CPU time nothing else wants.
    if !trusted {
        let (priority, refused) = pbx_board::sched::lower_this_thread();
        if let Some(e) = refused {
            tracing::warn!("hashing threads run at {priority} priority (SCHED_IDLE refused: {e})");
        }
        shared.lock().priority = Some(priority);
    } else if let Err(e) = pbx_board::sched::normal_this_thread() {
        tracing::warn!("the trusted lanes' hashing thread keeps its inherited priority: {e}");
    }
    // argon2's working memory, kept while jobs are queued (a burst of logins: no
    // 19 MiB mapping to fault in per hash), freed as soon as the queue is empty.
    let mut memory: Vec<Block> = Vec::new();
    let mut held = 0;
    let mut st = shared.lock();
    loop {
        if st.stop {
            break;
        }
        let next = if trusted {
            // The queue keeps trusted jobs at its front.
            st.jobs
                .front()
                .is_some_and(|j| j.lane.trusted())
                .then(|| st.jobs.pop_front())
                .flatten()
        } else if st.trusted_worker && st.cannot_raise {
            let other = st.jobs.iter().position(|j| !j.lane.trusted());
            other.and_then(|i| st.jobs.remove(i))
        } else {
            st.jobs.pop_front()
        };
        let Some(job) = next else {
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
            if !trusted {
                st.idle += 1;
            }
            let (next, timeout) = shared
                .work
                .wait_timeout(st, WORKER_IDLE)
                .unwrap_or_else(PoisonError::into_inner);
            st = next;
            if !trusted {
                st.idle -= 1;
            }
            if timeout.timed_out() && st.jobs.iter().all(|j| trusted && !j.lane.trusted()) {
                break;
            }
            continue;
        };
        let taken = job
            .state
            .compare_exchange(QUEUED, TAKEN, Ordering::SeqCst, Ordering::SeqCst);
        if taken.is_err() {
            continue;
        }
        st.running += 1;
        drop(st);
        // A trusted job on a SCHED_IDLE worker: raised for it, or given back.
        let borrowed = !trusted && job.lane.trusted();
        let raised = borrowed && raise_for(shared);
        if borrowed && !raised && shared.lock().trusted_worker {
            // Given back to the trusted lanes' own thread.
            st = shared.lock();
            st.running -= 1;
            job.state.store(QUEUED, Ordering::SeqCst);
            st.jobs.push_front(job);
            shared.work.notify_all();
            continue;
        }
        (job.run)(&mut memory);
        if raised {
            let _ = pbx_board::sched::lower_this_thread();
        }
        st = shared.lock();
        st.running -= 1;
        st.held_blocks = st.held_blocks - held + memory.len();
        held = memory.len();
    }
    if trusted {
        st.trusted_worker = false;
    } else {
        st.workers -= 1;
    }
}

/// Raises a `SCHED_IDLE` worker to normal priority for a trusted job; false (once
/// logged, then not tried again) where the kernel refuses it.
fn raise_for(shared: &Shared) -> bool {
    if shared.lock().cannot_raise {
        return false;
    }
    match pbx_board::sched::normal_this_thread() {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("trusted checks wait for their own hashing thread: {e}");
            shared.lock().cannot_raise = true;
            false
        }
    }
}

impl Hasher {
    /// A hasher making new hashes at `cost`. At a cost other than the default this
    /// computes one hash (for unknown users' checks to take as long as known ones').
    pub fn new(concurrency: usize, queue: usize, cost: HashCost) -> Hasher {
        let dummy = if cost == HashCost::default() {
            DUMMY_HASH.into()
        } else {
            hash_with(cost, &String::from_utf8_lossy(&super::random_bytes::<16>())).into()
        };
        Hasher {
            cost,
            dummy,
            shared: Arc::new(Shared {
                state: Mutex::default(),
                work: Condvar::new(),
                concurrency: concurrency.max(1),
                queue,
            }),
            checks: Arc::default(),
            // The daemon's unit tests run beside builds and VMs on a 2-core machine,
            // where a check may wait longer than a box's user ever would: their
            // outcome must not depend on it. The waits' own test sets them.
            waits: if cfg!(test) {
                (Duration::from_secs(120), Duration::from_secs(120))
            } else {
                (QUEUE_WAIT, ANSWER_WAIT)
            },
        }
    }

    /// Password checks (argon2 verifications) computed since start.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// The CPU priority of the hashing threads (`None` before the first one started).
    pub fn priority(&self) -> Option<Background> {
        self.shared.lock().priority
    }

    /// Queues `job`; at most `concurrency` run and `queue` more wait, beyond that Busy.
    /// A trusted lane's check goes ahead of the others (a known browser's first), within
    /// [`TRUSTED_RESERVE`] of its own, and wakes the trusted lanes' own worker.
    fn submit(&self, job: Job) -> Result<(), Busy> {
        let mut st = self.shared.lock();
        st.jobs
            .retain(|j| j.state.load(Ordering::SeqCst) != GIVEN_UP);
        // The queue is ordered by lane, each lane in its order of arrival.
        let ahead = st.jobs.iter().take_while(|j| j.lane <= job.lane).count();
        let same = st.jobs.iter().filter(|j| j.lane == job.lane).count();
        let capacity = self.shared.concurrency + self.shared.queue;
        if job.lane.trusted() {
            // Within the queue's room like any check, else within its own reserve.
            if st.running + st.jobs.len() >= capacity && same >= job.lane.reserve() {
                return Err(Busy);
            }
        } else if st.running + same >= capacity {
            return Err(Busy);
        }
        let trusted = job.lane.trusted();
        st.jobs.insert(ahead, job);
        if trusted && !st.trusted_worker {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("argon2-trusted".into())
                .spawn(move || worker(&shared, true));
            match spawned {
                Ok(_) => st.trusted_worker = true,
                Err(e) => tracing::warn!("cannot start the trusted hashing thread: {e}"),
            }
        }
        // A trusted job may be for the trusted worker, another for an idle one: all
        // waiting workers look (a handful of threads).
        self.shared.work.notify_all();
        // More queued for the `SCHED_IDLE` workers than idle ones to take them (a woken
        // worker counts as idle until it takes its job): another, up to `concurrency`.
        let for_idle_workers = if st.trusted_worker && st.cannot_raise {
            st.jobs.iter().filter(|j| !j.lane.trusted()).count()
        } else {
            st.jobs.len()
        };
        if for_idle_workers > st.idle && st.workers < self.shared.concurrency {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("argon2".into())
                .spawn(move || worker(&shared, false));
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
        self.run_in(Lane::Other, job).await
    }

    async fn run_in<T: Send + 'static>(
        &self,
        lane: Lane,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let state = Arc::new(AtomicU8::new(QUEUED));
        // A caller that hangs up while queued (its future dropped) gives its place back.
        let _abandon = Abandon(Arc::clone(&state));
        self.submit(Job {
            state: Arc::clone(&state),
            lane,
            run: Box::new(move |memory| {
                let _ = tx.send(job(memory));
            }),
        })?;
        let (queue_wait, answer_wait) = self.waits;
        if let Ok(answer) = tokio::time::timeout(queue_wait, &mut rx).await {
            return answer.map_err(|_| Busy);
        }
        // Still queued: given up. Taken meanwhile: answered until the whole wait.
        let given_up = state.compare_exchange(QUEUED, GIVEN_UP, Ordering::SeqCst, Ordering::SeqCst);
        if given_up.is_ok() {
            return Err(Busy);
        }
        match tokio::time::timeout(answer_wait.saturating_sub(queue_wait), rx).await {
            Ok(answer) => answer.map_err(|_| Busy),
            Err(_) => Err(Busy),
        }
    }

    pub async fn hash(&self, password: Secret) -> Result<String, Busy> {
        let cost = self.cost;
        self.run(move |_| hash_with(cost, password.expose())).await
    }

    /// Verifies `password` against `phc`, or against a dummy hash when `phc` is `None`
    /// (unknown user) so that both take the same time; the dummy never matches.
    pub async fn verify(&self, password: Secret, phc: Option<String>) -> Result<bool, Busy> {
        self.verify_from(Lane::Other, password, phc).await
    }

    /// [`Hasher::verify`] in `lane`: a trusted one goes ahead of the other checks, past
    /// a full queue, and is served by a thread at normal priority (see [`Lane`]).
    pub async fn verify_from(
        &self,
        lane: Lane,
        password: Secret,
        phc: Option<String>,
    ) -> Result<bool, Busy> {
        let account = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.to_string());
        let checks = Arc::clone(&self.checks);
        let check = move |memory: &mut Vec<Block>| {
            checks.fetch_add(1, Ordering::Relaxed);
            verify_in(password.expose().as_bytes(), &phc, memory)
        };
        let ok = self.run_in(lane, check).await?;
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
mod tests;
