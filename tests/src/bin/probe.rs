//! A voice stand-in for `make bench`: wakes every PERIOD_MS (20 ms, like an RTP sender
//! with 20 ms packets) for SECONDS and records how late each wake-up was. Prints one
//! JSON line: samples, p50/p99/max lateness in ms, and every sample (`late_ms`, in the
//! order taken) for the bench to pool windows.
//! Usage: probe SECONDS [PERIOD_MS]

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10.0);
    let period_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let period = Duration::from_millis(period_ms);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut next = start + period;
    let mut late = Vec::new();
    while next < end {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let woke = Instant::now();
        late.push(woke.saturating_duration_since(next).as_secs_f64() * 1000.0);
        next += period;
        // A wake-up later than a whole period skips the packets it missed, as a sender
        // would, instead of bursting to catch up.
        while next < woke {
            next += period;
        }
    }
    let taken: Vec<String> = late.iter().map(|l| format!("{l:.3}")).collect();
    late.sort_by(f64::total_cmp);
    let at = |q: f64| late[((late.len() as f64 * q).ceil() as usize).clamp(1, late.len()) - 1];
    println!(
        "{{\"samples\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"late_ms\":[{}]}}",
        late.len(),
        at(0.50),
        at(0.99),
        late[late.len() - 1],
        taken.join(",")
    );
}
