//! The connection's clocks, over raw TCP: a request head must be complete within
//! `server.header_timeout_s` (slow heads and idle keep-alive connections are closed, no
//! answer), a request being served is never cut by it, and a stop lets the request in
//! flight finish while idle connections close at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pbx_e2e::{Daemon, Opts, TempDir};

const LOGIN_BODY: &str = r#"{"username":"admin","password":"not-the-password"}"#;

fn daemon(tag: &str, config: &str) -> (TempDir, Daemon) {
    let dir = TempDir::new(tag);
    let opts = Opts {
        config: Some(config.to_string()),
        ..Opts::default()
    };
    let d = Daemon::start_opts(&dir.path().join("state"), &opts);
    (dir, d)
}

/// Seconds from `since` until the peer closes `s` (EOF or reset), writing `trickle`
/// one byte every 250 ms meanwhile (nothing once it is used up); what was read too.
fn until_closed(s: &mut TcpStream, since: Instant, trickle: &[u8]) -> (f64, Vec<u8>) {
    s.set_read_timeout(Some(Duration::from_millis(250)))
        .expect("timeout");
    let (mut got, mut buf, mut next) = (Vec::new(), [0u8; 4096], 0);
    loop {
        assert!(since.elapsed() < Duration::from_secs(20), "never closed");
        if next < trickle.len() {
            if s.write_all(&trickle[next..=next]).is_err() {
                return (since.elapsed().as_secs_f64(), got);
            }
            next += 1;
        }
        match s.read(&mut buf) {
            Ok(0) => return (since.elapsed().as_secs_f64(), got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (since.elapsed().as_secs_f64(), got),
        }
    }
}

/// Reads one answer with a `Content-Length` body; returns it as text.
fn read_answer(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|n| n.trim().parse::<usize>().ok())
                .expect("content-length");
            if body.len() >= len {
                return text;
            }
        }
        let n = s.read(&mut buf).expect("answer");
        assert!(n > 0, "closed before the answer: {text:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

fn login_head() -> String {
    format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        LOGIN_BODY.len()
    )
}

#[test]
fn a_head_still_coming_in_is_closed_at_the_header_timeout_without_an_answer() {
    let (_dir, d) = daemon("head-timeout", "[server]\nheader_timeout_s = 1\n");
    let mut s = TcpStream::connect(d.http).expect("connect");
    let since = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .expect("write");
    // One byte every 250 ms: the connection is busy, but no head is ever complete.
    let (after, got) = until_closed(&mut s, since, &[b'a'; 80]);
    assert!(
        got.is_empty(),
        "answered: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!((0.9..3.0).contains(&after), "closed after {after:.2} s");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_at_the_header_timeout() {
    let (_dir, d) = daemon("idle-timeout", "[server]\nheader_timeout_s = 1\n");
    let mut s = TcpStream::connect(d.http).expect("connect");
    // Served twice on the one connection, then left idle.
    for _ in 0..2 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .expect("write");
        let answer = read_answer(&mut s);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let (after, got) = until_closed(&mut s, Instant::now(), b"");
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!((0.9..3.0).contains(&after), "closed after {after:.2} s");
}

#[test]
fn a_request_being_served_is_not_cut_by_the_header_timeout() {
    let (_dir, d) = daemon(
        "slow-body",
        "[server]\nheader_timeout_s = 1\nbody_timeout_s = 5\n",
    );
    let mut s = TcpStream::connect(d.http).expect("connect");
    let (first, rest) = LOGIN_BODY.split_at(10);
    s.write_all(format!("{}{first}", login_head()).as_bytes())
        .expect("write");
    // Twice the header timeout with the body half sent: the body's own deadline rules.
    std::thread::sleep(Duration::from_millis(2500));
    s.write_all(rest.as_bytes())
        .expect("the connection is still open");
    let answer = read_answer(&mut s);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("invalid_credentials"), "{answer}");
}

#[test]
fn a_stop_lets_the_request_in_flight_finish_and_closes_idle_connections() {
    let (_dir, d) = daemon("drain", "[server]\nheader_timeout_s = 10\n");
    // One idle keep-alive connection, one request whose body is still coming.
    let mut idle = TcpStream::connect(d.http).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    assert!(read_answer(&mut idle).starts_with("HTTP/1.1 200"));
    let mut busy = TcpStream::connect(d.http).expect("connect");
    let (first, rest) = LOGIN_BODY.split_at(10);
    busy.write_all(format!("{}{first}", login_head()).as_bytes())
        .expect("write");
    std::thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    nix::sys::signal::kill(d.pid(), nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    // The idle connection goes at once, not at its header timeout (10 s).
    let (after, got) = until_closed(&mut idle, stopped, b"");
    assert!(
        got.is_empty() && after < 3.0,
        "idle closed after {after:.2} s: {got:?}"
    );
    // The request in flight still gets its answer, and the connection closes after it.
    busy.write_all(rest.as_bytes())
        .expect("still open during the drain");
    let answer = read_answer(&mut busy);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert_eq!(d.stop(), Some(0), "exits cleanly once drained");
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "drain took {:?}",
        stopped.elapsed()
    );
}
