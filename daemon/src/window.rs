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
    /// Whether `key` is tracked (seen within a window, and not forgotten since).
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

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
                // Full of live keys: the least recently seen one is forgotten, never a
                // new key refused (a full table must not switch the limit off for all).
                if let Some(old) = self
                    .map
                    .iter()
                    .min_by_key(|(_, w)| w.last())
                    .map(|(k, _)| k.clone())
                {
                    self.map.remove(&old);
                }
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

/// Tiered limits on requests by address (Forgot Password): per address, per coarser
/// network (an IPv6 /48, which one site usually owns whole), and a global bucket that
/// bounds the total but never refuses an address seen for the first time.
#[derive(Default)]
pub struct AddressLimits {
    addrs: Windows<std::net::IpAddr>,
    nets: Windows<std::net::IpAddr>,
    global: Window,
}

/// How many requests of one address the coarser network may send, and the whole box.
pub const NET_FACTOR: u32 = 4;
pub const GLOBAL_FACTOR: u32 = 60;

impl AddressLimits {
    /// Counts a request from `addr` (the address as limited, e.g. a /64) inside `net`
    /// (its coarser network, if any); `Err(wait)` when a limit is reached.
    pub fn hit(
        &mut self,
        addr: std::net::IpAddr,
        net: Option<std::net::IpAddr>,
        now: Duration,
        limit: u32,
        window: Duration,
    ) -> Result<(), Duration> {
        let first_seen = !self.addrs.contains(&addr);
        self.global.slide(now, window);
        let global_limit = limit.saturating_mul(GLOBAL_FACTOR);
        if !first_seen && self.global.count() >= global_limit {
            return Err(self.global.wait(now, window));
        }
        if let Some(net) = net {
            self.nets
                .hit(&net, now, limit.saturating_mul(NET_FACTOR), window)?;
        }
        self.addrs.hit(&addr, now, limit, window)?;
        // Bounded: first-seen addresses go past a full bucket without growing it for ever.
        if self.global.count() < global_limit.saturating_mul(2) {
            self.global.push(now, ());
        }
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

    /// A full table forgets the least recently seen key: a new key is never refused,
    /// and the keys seen lately keep their count.
    #[test]
    fn a_full_table_forgets_the_least_recently_seen_key() {
        let mut w = Windows::default();
        let win = Duration::from_secs(900);
        for k in 0..MAX_TRACKED as u32 {
            assert!(w
                .hit(&k, Duration::from_millis(1 + u64::from(k)), 5, win)
                .is_ok());
        }
        assert!(
            w.hit(&u32::MAX, Duration::from_secs(60), 1, win).is_ok(),
            "new key served"
        );
        assert!(!w.contains(&0), "the least recently seen key went");
        assert!(w.contains(&7));
        assert!(
            w.hit(&u32::MAX, Duration::from_secs(61), 1, win).is_err(),
            "the new key has its own count"
        );
    }

    #[test]
    fn a_coarser_network_and_the_global_bucket_limit_but_a_new_address_is_served() {
        use std::net::IpAddr;
        let win = Duration::from_secs(900);
        let now = Duration::from_secs(10);
        let mut l = AddressLimits::default();
        let net: IpAddr = "2001:db8:1::".parse().expect("net");
        // Twenty /64s of one /48: 4 x 5 requests, then the /48 is limited.
        for n in 0..NET_FACTOR * 5 {
            let a: IpAddr = format!("2001:db8:1:{n:x}::").parse().expect("addr");
            assert!(l.hit(a, Some(net), now, 5, win).is_ok(), "{n}");
        }
        let a: IpAddr = "2001:db8:1:ff::".parse().expect("addr");
        assert_eq!(
            l.hit(a, Some(net), now, 5, win),
            Err(win),
            "the /48 is limited"
        );
        // The global bucket: 300 requests of known addresses, then known ones wait ...
        let mut l = AddressLimits::default();
        for n in 0..GLOBAL_FACTOR {
            let a: IpAddr = format!("192.0.2.{n}").parse().expect("addr");
            for _ in 0..5 {
                assert!(l.hit(a, None, now, 5, win).is_ok());
            }
        }
        let known: IpAddr = "198.51.100.1".parse().expect("addr");
        assert!(
            l.hit(known, None, now, 5, win).is_ok(),
            "first seen: served"
        );
        assert_eq!(
            l.hit(known, None, now, 5, win),
            Err(win),
            "seen before: waits"
        );
        // ... and a first-seen address is always served.
        let fresh: IpAddr = "203.0.113.9".parse().expect("addr");
        assert!(l.hit(fresh, None, now, 5, win).is_ok());
    }
}
