//! The one sliding window of the daemon: events of the last `width`, each with a tag
//! (the username of a failed sign-in; nothing for a Forgot Password request). Used by
//! the sign-in lockout per address and, keyed ([`Windows`]), by the Forgot Password
//! limits per address and per account.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

/// Keys ([`Windows`]) tracked at once.
const MAX_TRACKED: usize = 4096;

#[derive(Debug, Clone)]
pub struct Window<T = ()> {
    events: VecDeque<(Duration, T)>,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Window {
            events: VecDeque::new(),
        }
    }
}

impl<T> Window<T> {
    /// Drops the events that happened `width` or longer before `now`.
    pub fn slide(&mut self, now: Duration, width: Duration) {
        while self
            .events
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) >= width)
        {
            self.events.pop_front();
        }
    }

    pub fn push(&mut self, now: Duration, tag: T) {
        self.events.push_back((now, tag));
    }

    /// Events in the window (after the last [`Window::slide`]).
    pub fn count(&self) -> u32 {
        u32::try_from(self.events.len()).unwrap_or(u32::MAX)
    }

    /// How long until the oldest event leaves a window of `width` (zero when empty).
    pub fn wait(&self, now: Duration, width: Duration) -> Duration {
        self.events.front().map_or(Duration::ZERO, |(t, _)| {
            width.saturating_sub(now.saturating_sub(*t))
        })
    }

    /// When the newest event happened.
    pub fn last(&self) -> Option<Duration> {
        self.events.back().map(|(t, _)| *t)
    }

    pub fn clear(&mut self) {
        self.events.clear();
    }

    /// Keeps only the events whose tag passes `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.events.retain(|(_, tag)| keep(tag));
    }
}

/// Sliding windows keyed by address or account, at most 4096 keys.
pub struct Windows<K> {
    map: HashMap<K, Window>,
}

impl<K> Default for Windows<K> {
    fn default() -> Self {
        Windows {
            map: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Windows<K> {
    /// Counts one event; `Err(wait)` when `limit` events already fell in the window.
    pub fn hit(
        &mut self,
        key: &K,
        now: Duration,
        limit: u32,
        window: Duration,
    ) -> Result<(), Duration> {
        if !self.map.contains_key(key) && self.map.len() >= MAX_TRACKED {
            self.map
                .retain(|_, w| w.last().is_some_and(|t| now.saturating_sub(t) < window));
            if self.map.len() >= MAX_TRACKED {
                return Err(window);
            }
        }
        let w = self.map.entry(key.clone()).or_default();
        w.slide(now, window);
        if w.count() >= limit {
            return Err(w.wait(now, window));
        }
        w.push(now, ());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_slide_out_after_the_width() {
        let s = Duration::from_secs;
        let mut w = Window::default();
        w.push(s(0), "a");
        w.push(s(100), "b");
        w.slide(s(599), s(600));
        assert_eq!(w.count(), 2);
        assert_eq!(w.wait(s(599), s(600)), s(1));
        w.slide(s(600), s(600));
        assert_eq!(w.count(), 1, "the first one slid out");
        w.retain(|t| *t != "b");
        assert_eq!(w.count(), 0);
        assert_eq!(w.wait(s(600), s(600)), Duration::ZERO);
    }

    #[test]
    fn windows_limit_and_slide() {
        let mut w = Windows::default();
        let win = Duration::from_secs(900);
        for i in 0..5u64 {
            assert!(w.hit(&"a", Duration::from_secs(i), 5, win).is_ok());
        }
        assert_eq!(
            w.hit(&"a", Duration::from_secs(10), 5, win),
            Err(Duration::from_secs(890))
        );
        assert!(
            w.hit(&"b", Duration::from_secs(10), 5, win).is_ok(),
            "per key"
        );
        assert!(
            w.hit(&"a", Duration::from_secs(900), 5, win).is_ok(),
            "first one slid out"
        );
    }

    /// A full table limits new addresses only: those already tracked keep their count.
    #[test]
    fn a_full_table_limits_new_keys_not_everyone() {
        let mut w = Windows::default();
        let win = Duration::from_secs(900);
        let now = Duration::from_secs(1);
        for k in 0..MAX_TRACKED as u32 {
            assert!(w.hit(&k, now, 5, win).is_ok());
        }
        assert!(w.hit(&u32::MAX, now, 5, win).is_err(), "new key limited");
        assert!(w.hit(&7, now, 5, win).is_ok(), "known key goes on");
        assert!(
            w.hit(&u32::MAX, now + win, 5, win).is_ok(),
            "room again once the window passed"
        );
    }
}
