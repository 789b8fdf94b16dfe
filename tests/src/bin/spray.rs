//! A password spray for `make bench`: CONNECTIONS concurrent connections to
//! 127.0.0.1:PORT for SECONDS, each request a wrong password for a new random username,
//! from ADDRESSES loopback source addresses (127.1.x.y) in turn, one request per
//! connection. Meanwhile the real admin signs in from a clean address (127.0.0.3) in a
//! loop, once with the device cookie of their own browser and once from a new browser.
//! Prints one JSON line: the spray's answers by status, and the admin's successful
//! sign-ins per second with their latency.
//! Usage: spray PORT SECONDS CONNECTIONS ADDRESSES ADMIN_PASSWORD

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// One POST /api/v1/login on a new connection from `from`: (status, Set-Cookie values).
async fn login(
    port: u16,
    from: IpAddr,
    username: &str,
    password: &str,
    cookie: Option<&str>,
) -> std::io::Result<(u16, Vec<String>)> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(from, 0))?;
    let mut s = sock
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?;
    let body = format!(r#"{{"username":"{username}","password":"{password}"}}"#);
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n{cookie}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let cookies = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .map(|c| c.split(';').next().unwrap_or("").to_string())
        .collect();
    Ok((status, cookies))
}

/// xorshift64*: random usernames without a dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn source(i: u64) -> IpAddr {
    // 127.1.x.y, y in 1..=254.
    IpAddr::V4(Ipv4Addr::new(127, 1, (i / 254) as u8, (1 + i % 254) as u8))
}

#[derive(Default)]
struct Admin {
    ok: u64,
    by_status: BTreeMap<u16, u64>,
    latency_ms: Vec<f64>,
}

impl Admin {
    fn json(mut self, seconds: f64) -> serde_json::Value {
        self.latency_ms.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let n = self.latency_ms.len();
            // No sample: NaN, which JSON writes as null.
            if n == 0 {
                return f64::NAN;
            }
            self.latency_ms[((n as f64 * p).ceil() as usize).clamp(1, n) - 1]
        };
        serde_json::json!({
            "ok_per_s": self.ok as f64 / seconds,
            "ok": self.ok,
            "by_status": self.by_status,
            "p50_ms": q(0.5),
            "p99_ms": q(0.99),
            "latency_ms": self.latency_ms,
        })
    }
}

/// The admin's own computer: an address no attacker used (`make bench`'s earlier
/// flood came from 127.0.0.1, its /healthz checks from 127.0.0.2).
const ADMIN_FROM: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// The admin signing in again and again from [`ADMIN_FROM`] until `end`.
async fn admin_loop(
    port: u16,
    password: String,
    mut cookie: Option<String>,
    end: Instant,
) -> Admin {
    let mut a = Admin::default();
    let from = ADMIN_FROM;
    while Instant::now() < end {
        let t0 = Instant::now();
        let r = login(port, from, "admin", &password, cookie.as_deref()).await;
        let status = match r {
            Ok((status, cookies)) => {
                // The browser keeps the device cookie it was last given.
                if cookie.is_some() {
                    if let Some(c) = cookies.into_iter().find(|c| c.starts_with("pbx_device=")) {
                        cookie = Some(c);
                    }
                }
                status
            }
            Err(_) => 0,
        };
        *a.by_status.entry(status).or_default() += 1;
        if status == 200 {
            a.ok += 1;
            a.latency_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        } else {
            // Busy or refused: as a browser would, try again shortly.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    a
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, seconds, connections, addresses, password] = &args[..] else {
        eprintln!("usage: spray PORT SECONDS CONNECTIONS ADDRESSES ADMIN_PASSWORD");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("port");
    let seconds: f64 = seconds.parse().expect("seconds");
    let connections: u64 = connections.parse().expect("connections");
    let addresses: u64 = addresses.parse().expect("addresses");

    // The admin's own browser: one sign-in before the spray gives it its device cookie.
    // (After make bench's flood at `admin`, the account's slow-down holds it up to 30 s.)
    let deadline = Instant::now() + Duration::from_secs(120);
    let cookies = loop {
        let (status, cookies) = login(port, ADMIN_FROM, "admin", password, None)
            .await
            .expect("first sign-in");
        if status == 200 {
            break cookies;
        }
        assert!(
            status == 429 && Instant::now() < deadline,
            "the admin's first sign-in: {status}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let device = cookies
        .into_iter()
        .find(|c| c.starts_with("pbx_device="))
        .expect("a device cookie");

    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let next_source = Arc::new(AtomicU64::new(0));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (next_source, statuses) = (Arc::clone(&next_source), Arc::clone(&statuses));
        tasks.push(tokio::spawn(async move {
            let mut rng = 0x9E37_79B9_7F4A_7C15 ^ (c + 1).wrapping_mul(0xA24B_AED4_963E_E407);
            while Instant::now() < end {
                let from = source(next_source.fetch_add(1, Ordering::Relaxed) % addresses);
                let user = format!("u{:012x}", next_random(&mut rng) >> 16);
                let status = match login(port, from, &user, "spray spray spray", None).await {
                    Ok((s, _)) => s,
                    Err(_) => 0,
                };
                *statuses.lock().expect("lock").entry(status).or_default() += 1;
            }
        }));
    }
    let known = tokio::spawn(admin_loop(port, password.clone(), Some(device), end));
    let fresh = tokio::spawn(admin_loop(port, password.clone(), None, end));
    for t in tasks {
        t.await.expect("spray task");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let known = known.await.expect("admin").json(elapsed);
    let fresh = fresh.await.expect("admin").json(elapsed);
    let statuses = statuses.lock().expect("lock");
    let total: u64 = statuses.values().sum();
    println!(
        "{}",
        serde_json::json!({
            "seconds": elapsed,
            "requests": total,
            "by_status": *statuses,
            "admin_known_browser": known,
            "admin_new_browser": fresh,
        })
    );
}
