//! The accept loops: plain HTTP and HTTPS listeners, a connection limit (per address,
//! a reserve for light users, slots past the pool for the own segment and for known
//! browsers), blocked addresses shed at accept and between requests ([`Shed`]), a TLS
//! handshake timeout, the header timeout and a graceful drain (at most 10 s) on
//! shutdown ([`watch`]), and the body deadline (see [`crate::api::http::BodyDeadline`]). Each connection, plain or TLS, is a
//! [`pbx_http1::Conn`] answered by [`crate::api::route`].

mod watch;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use pbx_http1::{Answer, Conn};
use tokio::net::TcpListener;
use tokio::sync::{watch as channel, Semaphore};

use crate::api::http::Ctx;
use crate::app::App;
use crate::tls::Tls;

/// How long in-flight requests may take to finish after a stop is requested.
pub const DRAIN: Duration = Duration::from_secs(10);
/// An address holding this many connections or more is a heavy user: it does not get
/// the pool's reserve (the last quarter), which stays for the others.
const LIGHT_USER: usize = 4;
/// Connections beyond the pool that only addresses on the PBX's own segment may take:
/// a spray from a thousand internet addresses can hold every slot of the pool, and
/// the owner's browser on the LAN still gets in.
const SEGMENT_SLOTS: usize = 32;
/// How long a connection past the full pool has to show its first request (and, over
/// HTTPS, to finish its handshake), and later ones: a browser sends them at once.
const KNOCK_WAIT: Duration = Duration::from_secs(2);

/// How long the accept loop trusts its reading of the box's own subnets.
const LOCAL_RULE_TTL: Duration = Duration::from_secs(5);

/// Blocked addresses cost nothing to turn away: an address the login lockout blocked is
/// closed at accept, before any parsing, and a keep-alive connection of one that became
/// blocked is answered 429 `locked` with `Connection: close` at its next request. Not
/// on the PBX's own segment: there the block keeps its exemptions (a known browser's
/// device cookie), and the owner's pages load.
pub struct Shed {
    app: Arc<App>,
    rule: Mutex<Option<(std::time::Instant, Arc<crate::flows::local::LocalRule>)>>,
}

impl Shed {
    fn new(app: Arc<App>) -> Shed {
        Shed {
            app,
            rule: Mutex::new(None),
        }
    }

    /// The block's time left when `ip` is blocked and off the local segment.
    fn refuses(&self, ip: IpAddr) -> Option<Duration> {
        let left = self.app.limiter().blocked_for(ip)?;
        (!self.rule().on_segment(ip)).then_some(left)
    }

    fn rule(&self) -> Arc<crate::flows::local::LocalRule> {
        let mut cached = self.rule.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((at, rule)) if at.elapsed() < LOCAL_RULE_TTL => Arc::clone(rule),
            _ => {
                let rule = Arc::new(crate::flows::local::LocalRule::now(&self.app));
                *cached = Some((std::time::Instant::now(), Arc::clone(&rule)));
                rule
            }
        }
    }
}

/// Bound sockets, injected so tests and `--dev` can listen on port 0.
#[derive(Default)]
pub struct Listeners {
    pub http: Vec<TcpListener>,
    pub https: Vec<TcpListener>,
}

impl Listeners {
    pub fn local_addrs(&self) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        let addrs = |l: &[TcpListener]| l.iter().filter_map(|l| l.local_addr().ok()).collect();
        (addrs(&self.http), addrs(&self.https))
    }
}

/// Serves until `shutdown` resolves, then drains.
pub async fn serve(
    app: Arc<App>,
    tls: Arc<Tls>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) {
    let config = app.config();
    let shared = Arc::new(Shared {
        slots: Arc::new(Semaphore::new(config.server.max_connections)),
        segment_slots: Arc::new(Semaphore::new(SEGMENT_SLOTS)),
        knock_slots: Arc::new(Semaphore::new((config.server.max_connections / 4).max(1))),
        per_address: Arc::new(PerAddress::default()),
        per_address_max: config.server.max_connections_per_address,
        reserve: config.server.max_connections / 4,
        refusals: AtomicU64::new(0),
        shed: Arc::new(Shed::new(Arc::clone(&app))),
        app,
        tls,
    });
    // Every accept loop and every connection holds a receiver until it ends: the drain
    // waits until none is left.
    let (stop_tx, stop_rx) = channel::channel(false);
    let mut loops = Vec::new();
    for (list, https) in [(listeners.http, false), (listeners.https, true)] {
        for l in list {
            loops.push(tokio::spawn(accept_loop(
                l,
                https,
                Arc::clone(&shared),
                stop_rx.clone(),
            )));
        }
    }
    drop(stop_rx);
    shutdown.await;
    tracing::info!(
        "stopping: no new connections, draining for at most {}s",
        DRAIN.as_secs()
    );
    let _ = stop_tx.send(true);
    for l in loops {
        let _ = l.await;
    }
    if tokio::time::timeout(DRAIN, stop_tx.closed()).await.is_err() {
        tracing::warn!("drain deadline passed; closing remaining connections");
    }
}

/// What every accept loop shares.
struct Shared {
    app: Arc<App>,
    tls: Arc<Tls>,
    /// The global connection limit.
    slots: Arc<Semaphore>,
    /// The own segment's slots past it ([`SEGMENT_SLOTS`]).
    segment_slots: Arc<Semaphore>,
    /// Slots past the pool for anyone, a quarter of its size: a connection on one is
    /// served only if its first request comes from a known browser (a session or a
    /// device cookie of this box), within [`KNOCK_WAIT`]; any other is answered 503
    /// `busy` at once and closed. A spray that holds the pool cannot keep the owner's
    /// browser out, and nobody waits unanswered.
    knock_slots: Arc<Semaphore>,
    per_address: Arc<PerAddress>,
    per_address_max: usize,
    /// Slots only addresses with fewer than [`LIGHT_USER`] connections may take.
    reserve: usize,
    refusals: AtomicU64,
    shed: Arc<Shed>,
}

async fn accept_loop(
    listener: TcpListener,
    https: bool,
    shared: Arc<Shared>,
    mut stop: channel::Receiver<bool>,
) {
    let Shared {
        app,
        tls,
        slots,
        segment_slots,
        knock_slots,
        per_address,
        per_address_max,
        reserve,
        refusals,
        shed,
    } = &*shared;
    let per_address_max = *per_address_max;
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        // Voice first: a flood of connections does not hold the core for long.
        pbx_board::sched::give_way();
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if shed.refuses(peer.ip()).is_some() {
            refused(refusals, "this address is blocked after failed sign-ins");
            continue;
        }
        let Some((addr_slot, held)) = per_address.try_take(peer.ip(), per_address_max) else {
            refused(
                refusals,
                "this address already holds its share of connections",
            );
            continue;
        };
        // The last quarter of the pool is for addresses that hold only a few
        // connections: a handful of machines cannot take every slot (each within its
        // per-address share), so another computer on the LAN still gets in.
        let on_segment = || shed.rule().on_segment(peer.ip());
        if held >= LIGHT_USER && slots.available_permits() <= *reserve && !on_segment() {
            drop(addr_slot);
            refused(refusals, "the pool's reserve is kept for other addresses");
            continue;
        }
        // A full pool: the own segment has slots of its own, and known browsers may
        // knock past it.
        let segment = || {
            on_segment()
                .then(|| Arc::clone(segment_slots).try_acquire_owned().ok())
                .flatten()
        };
        let (permit, lane) = match Arc::clone(slots).try_acquire_owned() {
            Ok(p) => (p, Lane::Pool),
            Err(_) => match segment() {
                Some(p) => (p, Lane::Pool),
                None => match Arc::clone(knock_slots).try_acquire_owned() {
                    Ok(p) => (p, Lane::Knock),
                    Err(_) => {
                        refused(refusals, "connection limit reached");
                        continue;
                    }
                },
            },
        };
        let _ = stream.set_nodelay(true);
        let ctx = Ctx { peer, https };
        let acceptor = https.then(|| tls.acceptor());
        let connection = serve_connection(
            Arc::clone(app),
            Arc::clone(shed),
            stream,
            ctx,
            lane,
            acceptor,
            stop.clone(),
        );
        tokio::spawn(async move {
            connection.await;
            drop(permit);
            drop(addr_slot);
        });
    }
}

/// Where a connection's slot came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// The pool, or the own segment's slots past it.
    Pool,
    /// Past the full pool ([`Shared::knock_slots`]): served only for a known browser.
    Knock,
}

/// One connection, plain or TLS: its requests answered by [`crate::api::route`] until
/// the client goes, a timeout ends it, or the drain does.
async fn serve_connection(
    app: Arc<App>,
    shed: Arc<Shed>,
    stream: tokio::net::TcpStream,
    ctx: Ctx,
    lane: Lane,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    stop: channel::Receiver<bool>,
) {
    let config = app.config();
    let mut builder = http1::Builder::new();
    // No timer for hyper: the header timeout is [`watch`]'s.
    builder.header_read_timeout(None).max_buf_size(32 * 1024);
    let (body_timeout, mut header_timeout) =
        (config.server.body_timeout, config.server.header_timeout);
    let mut handshake_timeout = config.server.tls_handshake_timeout;
    if lane == Lane::Knock {
        header_timeout = header_timeout.min(KNOCK_WAIT);
        handshake_timeout = handshake_timeout.min(KNOCK_WAIT);
    }
    // Until the first request has shown a known browser, on a knock slot.
    let knocking = std::sync::atomic::AtomicBool::new(lane == Lane::Knock);
    let activity = watch::Activity::new();
    let noted = Arc::clone(&activity);
    let service = pbx_http1::Service::new(move |mut req| {
        // The headers are in: the body's clock starts now. Only methods whose handlers
        // read a body get one (the first extension allocates; pages and session checks
        // are GETs and never read one).
        if !matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD) {
            req.extensions_mut().insert(crate::api::http::BodyDeadline(
                tokio::time::Instant::now() + body_timeout,
            ));
        }
        pbx_board::sched::give_way();
        if knocking.load(Ordering::Relaxed) {
            if !crate::api::known_browser(&app, &req, ctx.https) {
                noted.mark_idle();
                return Answer::ready(crate::api::closing(
                    &app,
                    &crate::error::Error::Crowded,
                    &req,
                ));
            }
            knocking.store(false, Ordering::Relaxed);
        }
        if let Some(left) = shed.refuses(ctx.peer.ip()) {
            noted.mark_idle();
            return Answer::ready(crate::api::closing(
                &app,
                &crate::error::Error::Locked { retry_after: left },
                &req,
            ));
        }
        // A handler that waits holds `busy` until its answer: the header clock runs
        // again from the answer.
        let answer = crate::api::route(&app, ctx, req, || noted.busy());
        if matches!(answer, Answer::Ready(_)) {
            noted.mark_idle();
        }
        answer
    });
    let Some(acceptor) = acceptor else {
        let conn = Conn::new(&builder, Box::new(stream), service);
        watch::serve(conn, &activity, header_timeout, stop).await;
        return;
    };
    let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
    let tls_stream = match handshake.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(peer = %ctx.peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %ctx.peer, "TLS handshake timed out");
            return;
        }
    };
    activity.mark_idle();
    let conn = Conn::new(&builder, Box::new(tls_stream), service);
    watch::serve(conn, &activity, header_timeout, stop).await;
}

/// Open connections per address (IPv6: per /64, like the login limits).
#[derive(Default)]
struct PerAddress {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's share of its address's count; returned on drop.
struct AddrSlot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    /// A slot for `ip`, and how many it held before this one.
    fn try_take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<(AddrSlot, usize)> {
        let key = crate::auth::lockout::addr_key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        let held = *n;
        *n += 1;
        Some((
            AddrSlot {
                table: Arc::clone(self),
                key,
            },
            held,
        ))
    }
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Counts a refused connection; logs at most one line per 1000 refusals, so a flood
/// does not turn into a flood of log lines.
fn refused(count: &AtomicU64, why: &str) {
    let n = count.fetch_add(1, Ordering::Relaxed);
    if n % 1000 == 0 {
        tracing::warn!(refused_so_far = n + 1, "closing new connections: {why}");
    }
}

/// Binds a listener with SO_REUSEADDR so a restart does not wait for TIME_WAIT.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    #[test]
    fn per_address_share_is_enforced_and_returned() {
        let t = Arc::new(super::PerAddress::default());
        let a = "192.0.2.1".parse().expect("ip");
        let held: Vec<_> = (0..3)
            .map(|_| t.try_take(a, 3).expect("within share").0)
            .collect();
        assert!(t.try_take(a, 3).is_none(), "fourth refused");
        assert!(
            t.try_take("192.0.2.2".parse().expect("ip"), 3).is_some(),
            "other address unaffected"
        );
        let v6 = t.try_take("2001:db8::1".parse().expect("ip"), 1);
        assert!(v6.is_some());
        assert!(
            t.try_take("2001:db8::2".parse().expect("ip"), 1).is_none(),
            "same /64"
        );
        drop(v6);
        drop(held);
        assert!(t.try_take(a, 3).is_some(), "returned on drop");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bind_port_zero_gives_a_real_port() {
        let l = super::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = l.local_addr().expect("addr");
        assert_ne!(addr.port(), 0);
        let c = tokio::net::TcpStream::connect(addr).await;
        assert!(c.is_ok());
    }
}
