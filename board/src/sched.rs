//! Voice first: the daemon's hashing threads give the CPU to everything else. A box
//! shares two to four cores with Asterisk, whose 20 ms RTP packets must leave on time;
//! argon2id is deliberately CPU-heavy, and a spray of wrong passwords could otherwise
//! keep every core hashing.
//!
//! [`lower_this_thread`] puts the calling thread under `SCHED_IDLE` (Linux ≥ 2.6.23,
//! allowed without privileges since 2.6.39): it runs only when no normal task wants the
//! core, and a waking normal task preempts it at once. Where that is refused (a seccomp
//! profile, an old kernel) it falls back to nice 19. Both are per thread on Linux, so the
//! daemon's HTTP threads keep their normal priority.
//!
//! At normal priority, under a flood, those HTTP threads can hold a core for long
//! stretches: a waking task of the same priority (Asterisk's RTP sender) should preempt
//! them, but the kernel may let the running task finish its slice first, and only looks
//! again at the next tick (4 ms at HZ=250). [`give_way`], called once per
//! request and per accepted connection, bounds such a stretch to [`BURST`]: a thread
//! that has not been off its core for that long yields it (`sched_yield`), which costs
//! nothing when no other task waits.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use nix::libc;

/// The priority a thread ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// `SCHED_IDLE`: only spare CPU time.
    Idle,
    /// `SCHED_IDLE` was refused; nice 19 instead (the lowest normal weight).
    Nice19,
    /// Both were refused: the thread runs at normal priority.
    Normal,
}

impl Background {
    pub fn as_str(self) -> &'static str {
        match self {
            Background::Idle => "idle",
            Background::Nice19 => "nice 19",
            Background::Normal => "normal",
        }
    }
}

impl fmt::Display for Background {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lowers the calling thread's CPU priority as far as it can go without privileges
/// (see the module doc). Never fails: what was refused comes back as the error, for the
/// log, and the thread keeps running either way.
pub fn lower_this_thread() -> (Background, Option<io::Error>) {
    let Err(refused) = set_this_threads_policy(libc::SCHED_IDLE) else {
        return (Background::Idle, None);
    };
    // SAFETY: integer arguments only; on Linux `who` = 0 under PRIO_PROCESS is the
    // calling thread (nice is a per-thread attribute there).
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, 19) };
    if r == 0 {
        (Background::Nice19, Some(refused))
    } else {
        (Background::Normal, Some(io::Error::last_os_error()))
    }
}

/// Puts the calling thread under `SCHED_OTHER`, the daemon's normal policy (its nice
/// unchanged): a thread that must not starve, spawned from wherever (a new thread
/// inherits its parent's policy). The password check of the trusted lanes runs here.
pub fn normal_this_thread() -> io::Result<()> {
    set_this_threads_policy(libc::SCHED_OTHER)
}

/// `sched_setscheduler` on the calling thread, priority 0 (the only one of
/// `SCHED_IDLE` and `SCHED_OTHER`).
fn set_this_threads_policy(policy: libc::c_int) -> io::Result<()> {
    // The kernel's `struct sched_param` is one int, the priority; libc's musl flavour
    // of the struct has extra fields the kernel never reads.
    let priority: libc::c_int = 0;
    // SAFETY: the raw system call, because musl's `sched_setscheduler` wrapper always
    // answers ENOSYS (POSIX makes it per process, Linux per thread). pid 0 is the
    // calling thread; `priority` is a live kernel `struct sched_param` for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0,
            policy,
            &priority as *const libc::c_int,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The longest stretch a normal-priority thread of the daemon keeps its core while
/// another task may be waiting for it (a 20 ms voice packet tolerates ~1 ms).
pub const BURST: Duration = Duration::from_millis(1);

/// Calls of [`give_way`] between two looks at the clock: a request costs a few
/// microseconds, so 8 of them stay well under [`BURST`].
const EVERY: u32 = 8;

/// One thread's current stretch on its core.
#[derive(Clone, Copy)]
struct Stretch {
    calls: u32,
    /// When the stretch started (the thread's first call, its last break).
    since: Option<Instant>,
    /// The thread's context switches then: a different count later means it was off
    /// its core in between (it waited for I/O, or was preempted) and others got a turn.
    switches: i64,
}

thread_local! {
    static STRETCH: Cell<Stretch> = const {
        Cell::new(Stretch { calls: 0, since: None, switches: 0 })
    };
}

/// Yields the core if the calling thread has held it without a break for [`BURST`]
/// (see the module doc). Cheap: a counter; every [`EVERY`] calls a clock read; once per
/// [`BURST`] one system call (`getrusage`), and the yield only when a stretch is that long.
pub fn give_way() {
    STRETCH.with(|cell| {
        let mut s = cell.get();
        s.calls = s.calls.wrapping_add(1);
        if s.calls % EVERY == 0 && s.step(Instant::now(), context_switches) {
            std::thread::yield_now();
            s.switches = context_switches();
        }
        cell.set(s);
    });
}

impl Stretch {
    /// One look at the clock: true when the stretch has reached [`BURST`] without a
    /// context switch (time to yield). A new stretch starts either way.
    fn step(&mut self, now: Instant, switches: impl Fn() -> i64) -> bool {
        match self.since {
            Some(since) if now.duration_since(since) < BURST => false,
            Some(_) => {
                let n = switches();
                let unbroken = n == self.switches;
                self.switches = n;
                self.since = Some(now);
                unbroken
            }
            None => {
                self.switches = switches();
                self.since = Some(now);
                false
            }
        }
    }
}

/// The calling thread's context switches so far, voluntary and not (0 if refused).
fn context_switches() -> i64 {
    // SAFETY: `rusage` is plain integers, for which all zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `getrusage` only fills the struct it is given, which lives for the call;
    // RUSAGE_THREAD (Linux >= 2.6.26) is the calling thread.
    let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if r == 0 {
        (usage.ru_nvcsw + usage.ru_nivcsw) as i64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheduling policy and nice value of one thread, from `/proc/<pid>/task/<tid>/stat`
    /// (fields 19 and 41): `(policy, nice)`, policy 0 = SCHED_OTHER, 5 = SCHED_IDLE.
    fn thread_policy(stat: &str) -> Option<(u32, i32)> {
        // The command name (field 2) is in parentheses and may hold spaces: count fields
        // from the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3.
        let nice = fields.get(19 - 3)?.parse().ok()?;
        let policy = fields.get(41 - 3)?.parse().ok()?;
        Some((policy, nice))
    }

    /// `SCHED_IDLE`'s number in `/proc` and the system calls.
    const SCHED_IDLE: u32 = libc::SCHED_IDLE as u32;

    fn own_policy() -> (u32, i32) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        thread_policy(&stat).expect("fields")
    }

    #[test]
    fn a_lowered_thread_is_idle_and_its_siblings_are_not() {
        let before = own_policy();
        let ((got, why), policy) = std::thread::spawn(|| (lower_this_thread(), own_policy()))
            .join()
            .expect("thread");
        assert_eq!(why.map(|e| e.to_string()), None);
        // Its nice is the one it was born with (0, or what `nice make test` gave).
        assert_eq!((got, policy), (Background::Idle, (SCHED_IDLE, before.1)));
        // The calling thread (the test's) is untouched: the policy is per thread.
        assert_eq!(own_policy(), before);
        assert_eq!(before.0, 0, "tests run under SCHED_OTHER");
    }

    /// A stretch of BURST without a context switch yields; one with a switch in it (the
    /// thread waited for I/O or was preempted) does not; shorter ones are not looked at.
    #[test]
    fn only_an_unbroken_stretch_of_a_burst_yields() {
        let t0 = Instant::now();
        let ms = |x: f64| t0 + Duration::from_secs_f64(x / 1000.0);
        let mut s = Stretch {
            calls: 0,
            since: None,
            switches: 0,
        };
        assert!(!s.step(ms(0.0), || 7), "the first look starts a stretch");
        assert!(!s.step(ms(0.9), || panic!("no getrusage within a burst")));
        assert!(s.step(ms(1.1), || 7), "1.1 ms without a switch");
        assert!(!s.step(ms(1.5), || panic!("a new stretch started at 1.1 ms")));
        assert!(
            !s.step(ms(2.3), || 9),
            "switched in between: it had its break"
        );
        assert!(s.step(ms(3.4), || 9));
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let mut stat = String::from("42 (argon2 (x) y) S");
        for n in 4..=52 {
            stat.push_str(&format!(
                " {}",
                if n == 19 {
                    19
                } else if n == 41 {
                    5
                } else {
                    0
                }
            ));
        }
        assert_eq!(thread_policy(&stat), Some((5, 19)));
        assert_eq!(thread_policy("1 (x) S 0"), None);
    }
}
