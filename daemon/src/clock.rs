//! Time, injectable: lockout windows, session expiry and token lifetimes read the time
//! through [`Clock`], so tests move time forward instead of sleeping. Durations (lockout
//! windows, idle timeouts, the slow-down, pre-sessions) run on [`Clock::mono`], so a jump
//! of the wall clock neither lifts a block early nor ends every session at once.
//!
//! [`Floored`]: the wall clock of a box without a battery-backed clock starts at 1970
//! (or the kernel's build date) until NTP answers, which on an isolated LAN may be never.
//! Like Debian's fake-hwclock, the daemon keeps the newest time it has seen on flash and
//! knows its own build time; a clock below that floor is *unset*, and times read through
//! [`Floored`] never go below it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    /// Monotonic time since an arbitrary origin; never goes back.
    fn mono(&self) -> Duration;
    /// Wall-clock seconds since the Unix epoch, for timestamps shown to people.
    fn unix(&self) -> u64;
}

/// The real clocks of the machine.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn mono(&self) -> Duration {
        self.origin.elapsed()
    }
    fn unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// The build's time (its commit's), the lowest floor a box can have.
pub const BUILD_UNIX: u64 = parse_u64(env!("PBX_BUILD_UNIX"));

const fn parse_u64(s: &str) -> u64 {
    let b = s.as_bytes();
    let (mut i, mut n) = (0, 0u64);
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    n
}

/// How rarely the floor is written to flash while the clock runs: an hour's worth of
/// seen time (and at stop). No write per request.
pub const FLOOR_SAVE_EVERY: u64 = 3600;

/// The wall clock with a floor under it (see the module's notes).
pub struct Floored {
    inner: Arc<dyn Clock>,
    floor: AtomicU64,
    saved: AtomicU64,
}

/// The clock reads below the floor: `reads` is what it says, `floor` the newest time
/// known to have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unset {
    pub reads: u64,
    pub floor: u64,
}

impl Floored {
    /// `stored`: the newest time seen by an earlier run, from flash.
    pub fn new(inner: Arc<dyn Clock>, stored: Option<u64>) -> Floored {
        let floor = stored.unwrap_or(0).max(BUILD_UNIX);
        Floored {
            inner,
            floor: AtomicU64::new(floor),
            saved: AtomicU64::new(stored.unwrap_or(0)),
        }
    }

    /// A floor read from flash after the start: raises the floor, never lowers it.
    pub fn raise(&self, stored: u64) {
        self.floor.fetch_max(stored, Ordering::SeqCst);
        self.saved.fetch_max(stored, Ordering::SeqCst);
    }

    /// Whether the clock reads below the floor now.
    pub fn unset(&self) -> Option<Unset> {
        let reads = self.inner.unix();
        let floor = self.floor.load(Ordering::SeqCst);
        (reads < floor).then_some(Unset { reads, floor })
    }

    /// The floor to write to flash, when an hour of newly seen time has gone by since
    /// the last write (or `always`, at stop); then call [`Self::saved`].
    pub fn to_save(&self, always: bool) -> Option<u64> {
        self.unix();
        let floor = self.floor.load(Ordering::SeqCst);
        let saved = self.saved.load(Ordering::SeqCst);
        let due = if always {
            floor > saved
        } else {
            floor >= saved.saturating_add(FLOOR_SAVE_EVERY)
        };
        due.then_some(floor)
    }

    pub fn saved(&self, floor: u64) {
        self.saved.fetch_max(floor, Ordering::SeqCst);
    }
}

impl Clock for Floored {
    fn mono(&self) -> Duration {
        self.inner.mono()
    }
    /// The wall clock, never below the floor; a later reading raises the floor.
    fn unix(&self) -> u64 {
        let reads = self.inner.unix();
        let floor = self.floor.fetch_max(reads, Ordering::SeqCst);
        reads.max(floor)
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// Its wall clock at the start: after any build's time, so that tests do not start
    /// with an unset clock.
    pub const START_UNIX: u64 = 2_000_000_000;

    pub fn advance(&self, by: Duration) {
        let n = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(n, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn mono(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
    fn unix(&self) -> u64 {
        Self::START_UNIX + self.mono().as_secs()
    }
}

/// `YYYY-MM-DD HH:MM UTC` for Unix seconds (civil-from-days, proleptic Gregorian).
pub fn format_utc(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A settable wall clock beside a monotonic one that only moves forward.
    #[derive(Default)]
    struct Wall {
        unix: AtomicU64,
        mono: AtomicU64,
    }

    impl Clock for Wall {
        fn mono(&self) -> Duration {
            Duration::from_secs(self.mono.load(Ordering::SeqCst))
        }
        fn unix(&self) -> u64 {
            self.unix.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn the_build_time_is_this_commits() {
        let built = std::hint::black_box(BUILD_UNIX);
        assert!(built > 1_700_000_000, "{built}");
        assert!(
            ManualClock::START_UNIX > built,
            "tests start with a set clock"
        );
    }

    #[test]
    fn a_clock_below_the_floor_is_unset_and_reads_the_floor() {
        let wall = Arc::new(Wall::default());
        wall.unix.store(86_400, Ordering::SeqCst); // 1970-01-02
        let floored = Floored::new(wall.clone(), Some(BUILD_UNIX + 1000));
        assert_eq!(
            floored.unset(),
            Some(Unset {
                reads: 86_400,
                floor: BUILD_UNIX + 1000
            })
        );
        assert_eq!(floored.unix(), BUILD_UNIX + 1000, "never below the floor");
        // NTP answers: the clock is set and the floor follows it.
        wall.unix.store(BUILD_UNIX + 5000, Ordering::SeqCst);
        assert_eq!((floored.unset(), floored.unix()), (None, BUILD_UNIX + 5000));
        // Back again (a wrong NTP answer, a reboot without a clock): unset at the newest.
        wall.unix.store(86_400, Ordering::SeqCst);
        assert_eq!(floored.unix(), BUILD_UNIX + 5000);
        assert!(floored.unset().is_some());
    }

    #[test]
    fn the_floor_is_saved_at_most_hourly_and_at_stop() {
        let wall = Arc::new(Wall::default());
        let start = BUILD_UNIX + 10;
        wall.unix.store(start, Ordering::SeqCst);
        let floored = Floored::new(wall.clone(), Some(start));
        assert_eq!(floored.to_save(false), None, "nothing new");
        wall.unix.store(start + 3599, Ordering::SeqCst);
        assert_eq!(floored.to_save(false), None, "under an hour");
        assert_eq!(floored.to_save(true), Some(start + 3599), "at stop");
        wall.unix.store(start + 3600, Ordering::SeqCst);
        assert_eq!(floored.to_save(false), Some(start + 3600));
        floored.saved(start + 3600);
        assert_eq!(floored.to_save(false), None);
        assert_eq!(floored.to_save(true), None, "at stop: nothing newer");
    }

    #[test]
    fn a_floor_read_later_only_raises() {
        let wall = Arc::new(Wall::default());
        wall.unix.store(BUILD_UNIX + 100, Ordering::SeqCst);
        let floored = Floored::new(wall, None);
        assert!(floored.unset().is_none());
        floored.raise(BUILD_UNIX + 50);
        assert!(
            floored.unset().is_none(),
            "a lower stored floor changes nothing"
        );
        floored.raise(BUILD_UNIX + 200);
        assert!(floored.unset().is_some());
    }
}
