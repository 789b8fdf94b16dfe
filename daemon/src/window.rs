//! The one sliding window of the daemon: events of the last `width`, each with a tag
//! (the username of a failed sign-in; nothing for a Forgot Password request). Used by
//! the sign-in lockout per address and by the Forgot Password limits.

use std::collections::VecDeque;
use std::time::Duration;

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
}
