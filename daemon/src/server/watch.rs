//! One connection's clocks — the header timeout and the graceful stop — without a timer
//! per request.
//!
//! hyper's own header-read timeout arms a timer for every request head it waits for (a
//! boxed sleep, put into tokio's timer wheel and taken out again), and hyper-util's
//! graceful wrapper polls a watch channel at every wake of the connection: a seventh of
//! the page path's work (docs/performance.md). Here the request
//! path only notes when a handler answered (one clock read) and whether one is still at
//! work; one sleep per connection wakes when the connection would have been idle for
//! the header timeout, and is set again from those notes if it was not. It is polled
//! only when its own alarm rang, not at every wake of the connection.
//!
//! The rule is hyper's: from the accept, or from an answer, to the next complete request
//! head at most the header timeout, else the connection is closed without an answer;
//! while a handler works (reading a body under its own deadline, hashing, mail) no
//! header clock runs.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use pbx_http1::Conn;
use tokio::sync::watch;
use tokio::time::Instant;

/// What the request path notes for its connection's clock.
pub struct Activity {
    epoch: Instant,
    /// Milliseconds from `epoch` to the last answer (0: none yet, idle since `epoch`).
    answered_ms: AtomicU64,
    /// Handlers at work.
    busy: AtomicUsize,
}

impl Activity {
    /// Idle from now (the accept, or the end of the TLS handshake).
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            epoch: Instant::now(),
            answered_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        })
    }

    /// The connection waits for its next request head from now: a handler answered, or
    /// the TLS handshake ended.
    pub fn mark_idle(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.answered_ms.store(ms, Ordering::Release);
    }

    /// A handler that awaits starts; until the guard drops, no header clock runs.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(self))
    }

    /// When the connection will have waited `timeout` for a request head; None while a
    /// handler works.
    fn idle_until(&self, timeout: Duration) -> Option<Instant> {
        (self.busy.load(Ordering::Acquire) == 0).then(|| {
            self.epoch + Duration::from_millis(self.answered_ms.load(Ordering::Acquire)) + timeout
        })
    }
}

/// A handler at work; dropped when it answered (or was dropped unanswered).
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.mark_idle();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `conn` until it ends; closes it once it waited `timeout` for a request head
/// (see [`Activity`]), and shuts it down gracefully when `stop` changes. Holds `stop`
/// until the connection ends: the drain waits for every holder.
pub async fn serve(
    mut conn: Conn,
    activity: &Activity,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let alarm = Arc::new(Alarm {
        rang: AtomicBool::new(true),
        task: OnceLock::new(),
    });
    let alarm_waker = Waker::from(Arc::clone(&alarm));
    let mut clock = pin!(clock(activity, timeout, &mut stop));
    let mut watching = true;
    poll_fn(|cx| {
        if watching && alarm.rang.swap(false, Ordering::AcqRel) {
            let _ = alarm.task.get_or_init(|| cx.waker().clone());
            match clock.as_mut().poll(&mut Context::from_waker(&alarm_waker)) {
                Poll::Ready(Verdict::Idle) => {
                    tracing::debug!("no request head within {timeout:?}: closing the connection");
                    return Poll::Ready(());
                }
                Poll::Ready(Verdict::Stop) => {
                    watching = false;
                    conn.graceful_shutdown();
                }
                Poll::Pending => {}
            }
        }
        Pin::new(&mut conn).poll(cx).map(drop)
    })
    .await;
}

enum Verdict {
    Idle,
    Stop,
}

/// Sleeps until the connection waited `timeout` for a head, or `stop` changes.
async fn clock(
    activity: &Activity,
    timeout: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Verdict {
    let mut sleep = pin!(tokio::time::sleep(timeout));
    loop {
        tokio::select! {
            _ = stop.changed() => return Verdict::Stop,
            () = sleep.as_mut() => {}
        }
        let now = Instant::now();
        match activity.idle_until(timeout) {
            Some(at) if at <= now => return Verdict::Idle,
            Some(at) => sleep.as_mut().reset(at),
            None => sleep.as_mut().reset(now + timeout),
        }
    }
}

/// Rings for the clock's wakers: marks that the clock is to be polled and wakes the
/// connection's task (whose waker it keeps from the first poll; tokio's wakers of one
/// task all wake that task).
struct Alarm {
    rang: AtomicBool,
    task: OnceLock<Waker>,
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.rang.store(true, Ordering::Release);
        if let Some(task) = self.task.get() {
            task.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::{sleep, Instant};

    use super::{clock, Activity, Verdict};

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_header_clock_runs_from_the_last_answer_and_stops_while_a_handler_works() {
        let timeout = Duration::from_secs(10);
        let a = Activity::new();
        let (_tx, mut stop) = tokio::sync::watch::channel(false);
        let start = Instant::now();
        let script = async {
            sleep(Duration::from_secs(6)).await;
            a.mark_idle(); // an answer at 6 s: idle until 16 s
            sleep(Duration::from_secs(6)).await;
            let busy = a.busy(); // a handler from 12 s to 30 s
            sleep(Duration::from_secs(18)).await;
            drop(busy); // answered at 30 s: idle until 40 s
        };
        let (verdict, ()) = tokio::join!(clock(&a, timeout, &mut stop), script);
        assert!(matches!(verdict, Verdict::Idle));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_secs(40) && took < Duration::from_millis(40_010),
            "{took:?}"
        );
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_stop_ends_the_clock_at_once() {
        let a = Activity::new();
        let (tx, mut stop) = tokio::sync::watch::channel(false);
        let start = Instant::now();
        let script = async {
            sleep(Duration::from_secs(3)).await;
            let _ = tx.send(true);
        };
        let (verdict, ()) = tokio::join!(clock(&a, Duration::from_secs(10), &mut stop), script);
        assert!(matches!(verdict, Verdict::Stop));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}
