//! The parties of `make bench`'s password spray, each run in its own network namespace
//! (tests/bench/bench.py builds them: the box, an internet side, the box's LAN):
//!
//! - `spray attack TARGET SECONDS CONNECTIONS FIRST_SOURCE ADDRESSES`: CONNECTIONS
//!   concurrent connections to TARGET (IP:PORT) for SECONDS, each a wrong password for a
//!   new random username, one request per connection, from ADDRESSES source addresses
//!   counted up from FIRST_SOURCE (IPv4) in turn. Prints its answers by status
//!   (`refused`: the connection was closed or reset without an answer, `no answer in
//!   10 s`: nothing came back in time).
//! - `spray cookie TARGET FROM PASSWORD`: the admin signs in once from FROM and prints
//!   the device cookie that browser keeps (retrying while the account is slowed down).
//! - `spray owner TARGET SECONDS FROM USERNAME PASSWORD [COOKIE]`: USERNAME signs in
//!   from FROM again and again for SECONDS, an attempt a second at most (as a person
//!   retries) — as a known browser with COOKIE (keeping the one it is given back), else
//!   as a new browser (each sign-in mints a device cookie for the account, and the
//!   ninth retires the oldest: give a new browser an account of its own, or it retires
//!   the known browser's). Prints its sign-ins: successes, answers by status,
//!   latencies and the longest wait.
//!
//! Every request gives up after 10 s ("never a hang": issue 27 counts them).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// How long any party waits for an answer before it counts the request as unanswered.
const GIVE_UP: Duration = Duration::from_secs(10);
/// The owner's attempts start at most this often.
const PACE: Duration = Duration::from_secs(1);

/// How a sign-in ended.
enum Outcome {
    /// An HTTP answer: status, Set-Cookie values, Retry-After.
    Answer(u16, Vec<String>, Option<String>),
    /// Closed or reset without an answer (or no connection at all).
    Refused,
    /// Nothing in [`GIVE_UP`].
    Hung,
}

impl Outcome {
    fn label(&self) -> String {
        match self {
            Outcome::Answer(s, _, None) => s.to_string(),
            Outcome::Answer(s, _, Some(r)) => format!("{s} (Retry-After {r} s)"),
            Outcome::Refused => "refused".into(),
            Outcome::Hung => "no answer in 10 s".into(),
        }
    }
}

/// One POST /api/v1/login on a new connection from `from` to `target`.
async fn login(
    target: SocketAddr,
    from: IpAddr,
    username: &str,
    password: &str,
    cookie: Option<&str>,
) -> Outcome {
    let exchange = async {
        let sock = TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(from, 0))?;
        let mut s = sock.connect(target).await?;
        let body = format!(r#"{{"username":"{username}","password":"{password}"}}"#);
        let cookie = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n{cookie}\r\n{body}",
            target.ip(),
            body.len()
        );
        s.write_all(req.as_bytes()).await?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = match tokio::time::timeout(GIVE_UP, exchange).await {
        Err(_) => return Outcome::Hung,
        Ok(Err(_)) => return Outcome::Refused,
        Ok(Ok(a)) => a,
    };
    let text = String::from_utf8_lossy(&answer);
    let Some(status) = text.split(' ').nth(1).and_then(|c| c.parse().ok()) else {
        return Outcome::Refused;
    };
    let cookies = header(&text, "set-cookie")
        .map(|c| c.split(';').next().unwrap_or("").to_string())
        .collect();
    let retry_after = header(&text, "retry-after").next().map(str::to_string);
    Outcome::Answer(status, cookies, retry_after)
}

/// The values of the answer's header `name`.
fn header<'a>(answer: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> {
    answer
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(move |l| {
            let (n, v) = l.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then_some(v)
        })
}

/// xorshift64*: random usernames without a dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// The attacker: its answers by outcome.
async fn attack(target: SocketAddr, seconds: f64, connections: u64, first: Ipv4Addr, count: u32) {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let next_source = Arc::new(AtomicU64::new(0));
    let outcomes = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let base = u32::from(first);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (next_source, outcomes) = (Arc::clone(&next_source), Arc::clone(&outcomes));
        tasks.push(tokio::spawn(async move {
            let mut rng = 0x9E37_79B9_7F4A_7C15 ^ (c + 1).wrapping_mul(0xA24B_AED4_963E_E407);
            while Instant::now() < end {
                let n = next_source.fetch_add(1, Ordering::Relaxed) % u64::from(count);
                let from = IpAddr::V4(Ipv4Addr::from(base + n as u32));
                let user = format!("u{:012x}", next_random(&mut rng) >> 16);
                let o = login(target, from, &user, "spray spray spray", None).await;
                *outcomes.lock().expect("lock").entry(o.label()).or_default() += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("spray task");
    }
    let outcomes = outcomes.lock().expect("lock");
    println!(
        "{}",
        serde_json::json!({
            "seconds": start.elapsed().as_secs_f64(),
            "requests": outcomes.values().sum::<u64>(),
            "by_status": *outcomes,
        })
    );
}

/// The admin's first sign-in from a browser: the device cookie it keeps.
async fn first_cookie(target: SocketAddr, from: IpAddr, password: &str) -> String {
    // After an earlier flood at `admin`, the account's slow-down holds it up to 30 s.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match login(target, from, "admin", password, None).await {
            Outcome::Answer(200, cookies, _) => {
                return cookies
                    .into_iter()
                    .find(|c| c.starts_with("pbx_device="))
                    .expect("a device cookie")
            }
            o => assert!(
                Instant::now() < deadline,
                "the admin's first sign-in: {}",
                o.label()
            ),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `username` signing in again and again from `from` until `seconds` have passed.
async fn owner(
    target: SocketAddr,
    seconds: f64,
    from: IpAddr,
    username: &str,
    password: &str,
    mut cookie: Option<String>,
) {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let (mut by_status, mut latency_ms) = (BTreeMap::<String, u64>::new(), Vec::new());
    let mut longest_ms = 0f64;
    while Instant::now() < end {
        let t0 = Instant::now();
        let o = login(target, from, username, password, cookie.as_deref()).await;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        longest_ms = longest_ms.max(ms);
        *by_status.entry(o.label()).or_default() += 1;
        if let Outcome::Answer(200, cookies, _) = o {
            latency_ms.push(ms);
            // A known browser keeps the device cookie it was last given.
            if cookie.is_some() {
                if let Some(c) = cookies.into_iter().find(|c| c.starts_with("pbx_device=")) {
                    cookie = Some(c);
                }
            }
        }
        // A person, not a script: one attempt a second at most (retrying a busy or
        // refused one, or signing in again).
        tokio::time::sleep_until((t0 + PACE).into()).await;
    }
    println!(
        "{}",
        serde_json::json!({
            "seconds": start.elapsed().as_secs_f64(),
            "ok": latency_ms.len(),
            "by_status": by_status,
            "latency_ms": latency_ms,
            "longest_ms": longest_ms,
        })
    );
}

fn usage() -> ! {
    eprintln!(
        "usage: spray attack TARGET SECONDS CONNECTIONS FIRST_SOURCE ADDRESSES\n       \
         spray cookie TARGET FROM PASSWORD\n       \
         spray owner TARGET SECONDS FROM USERNAME PASSWORD [COOKIE]"
    );
    std::process::exit(2);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = |s: &str| -> SocketAddr { s.parse().unwrap_or_else(|_| usage()) };
    let number = |s: &str| -> f64 { s.parse().unwrap_or_else(|_| usage()) };
    let ip = |s: &str| -> IpAddr { s.parse().unwrap_or_else(|_| usage()) };
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["attack", t, secs, conns, first, count] => {
            let first: Ipv4Addr = first.parse().unwrap_or_else(|_| usage());
            attack(
                target(t),
                number(secs),
                number(conns) as u64,
                first,
                number(count) as u32,
            )
            .await
        }
        ["cookie", t, from, pw] => println!("{}", first_cookie(target(t), ip(from), pw).await),
        ["owner", t, secs, from, user, pw] => {
            owner(target(t), number(secs), ip(from), user, pw, None).await
        }
        ["owner", t, secs, from, user, pw, cookie] => {
            let cookie = Some(cookie.into());
            owner(target(t), number(secs), ip(from), user, pw, cookie).await
        }
        _ => usage(),
    }
}
