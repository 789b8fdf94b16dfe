//! Remote syslog for fleets (`audit.syslog`): every audit event also goes out as one
//! RFC 5424 line — app-name `pbx-authd`, the event as MSGID and as structured data with
//! the user and the address, never a secret — over UDP, or TCP with RFC 6587 octet
//! counting. Never in the way of a request: a bounded queue, one sender task, and what
//! does not fit (or cannot be sent) is dropped and counted.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

pub use crate::config::SyslogTarget as Target;
use crate::model::{AuditEvent, AuditKind, Severity};

/// Lines waiting for the sender; beyond this they are dropped.
const QUEUE: usize = 256;
/// Structured-data id: the documentation enterprise number of RFC 5612.
const SD_ID: &str = "pbx@32473";

/// The sender's counters, shown on the Device page.
#[derive(Debug, Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
}

pub struct Syslog {
    queue: Mutex<Option<mpsc::Sender<String>>>,
    pub stats: std::sync::Arc<Stats>,
    hostname: String,
}

impl Syslog {
    pub fn new(hostname: &str) -> Syslog {
        Syslog {
            queue: Mutex::new(None),
            stats: std::sync::Arc::default(),
            hostname: if hostname.is_empty() {
                "-".into()
            } else {
                hostname.into()
            },
        }
    }

    /// Starts (or, with a new target, restarts; with `None`, stops) the sender task.
    /// Call on the runtime.
    pub fn configure(&self, target: Option<Target>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        *q = target.map(|t| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(send_loop(t, rx, std::sync::Arc::clone(&self.stats)));
            tx
        });
    }

    /// Queues `ev` if a target is configured; never waits.
    pub fn forward(&self, ev: &AuditEvent) {
        let q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = q.as_ref() else { return };
        if tx.try_send(line(ev, &self.hostname)).is_err() {
            self.stats.dropped.fetch_add(1, Relaxed);
        }
    }

    pub fn enabled(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

/// `<PRI>1 TIMESTAMP HOSTNAME pbx-authd PROCID MSGID [SD] MSG` (RFC 5424), facility
/// authpriv (10); failures and blocks at warning, the rest notice.
pub fn line(ev: &AuditEvent, hostname: &str) -> String {
    let severity = match AuditKind::from_name(&ev.event).map(AuditKind::severity) {
        Some(Severity::Warning) => 4,
        Some(Severity::Notice) | None => 5,
    };
    let pri = 10 * 8 + severity;
    let ts = crate::clock::format_utc(ev.at);
    // "YYYY-MM-DD HH:MM UTC" → RFC 3339 with seconds.
    let rfc3339 = format!("{}T{}:{:02}Z", &ts[..10], &ts[11..16], ev.at % 60);
    let msgid: String = ev
        .event
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let mut sd = format!("[{SD_ID} event=\"{}\"", escape(&ev.event));
    if let Some(u) = &ev.username {
        sd.push_str(&format!(" user=\"{}\"", escape(u)));
    }
    if let Some(ip) = &ev.ip {
        sd.push_str(&format!(" ip=\"{}\"", escape(ip)));
    }
    sd.push(']');
    let msg = ev
        .detail
        .as_deref()
        .unwrap_or(&ev.event)
        .replace(['\n', '\r'], " ");
    format!(
        "<{pri}>1 {rfc3339} {hostname} pbx-authd {} {msgid} {sd} {msg}",
        std::process::id()
    )
}

/// An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn send_loop(target: Target, mut rx: mpsc::Receiver<String>, stats: std::sync::Arc<Stats>) {
    let mut tcp: Option<tokio::net::TcpStream> = None;
    let mut udp: Option<tokio::net::UdpSocket> = None;
    while let Some(line) = rx.recv().await {
        let ok = match &target {
            Target::Udp(addr) => {
                if udp.is_none() {
                    udp = tokio::net::UdpSocket::bind("0.0.0.0:0").await.ok();
                    if let Some(s) = &udp {
                        if s.connect(addr).await.is_err() {
                            udp = None;
                        }
                    }
                }
                match &udp {
                    Some(s) => s.send(line.as_bytes()).await.is_ok(),
                    None => false,
                }
            }
            Target::Tcp(addr) => {
                if tcp.is_none() {
                    let connect = tokio::net::TcpStream::connect(addr.as_str());
                    tcp = tokio::time::timeout(std::time::Duration::from_secs(5), connect)
                        .await
                        .ok()
                        .and_then(Result::ok);
                }
                let framed = format!("{} {line}", line.len());
                let sent = match tcp.as_mut() {
                    Some(s) => s.write_all(framed.as_bytes()).await.is_ok(),
                    None => false,
                };
                if !sent {
                    // Reconnect for the next line.
                    tcp = None;
                }
                sent
            }
        };
        if ok {
            stats.sent.fetch_add(1, Relaxed);
        } else {
            stats.dropped.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_rfc_5424_line_with_structured_data() {
        let ev = AuditEvent {
            at: 1_795_717_805,
            event: "login_failed".into(),
            username: Some("we\"ird]".into()),
            ip: Some("192.0.2.7".into()),
            detail: None,
            clock_unset: false,
        };
        let l = line(&ev, "pbx-office");
        let want = format!(
            "<84>1 2026-11-26T18:30:05Z pbx-office pbx-authd {} login_failed \
             [pbx@32473 event=\"login_failed\" user=\"we\\\"ird\\]\" ip=\"192.0.2.7\"] login_failed",
            std::process::id()
        );
        assert_eq!(l, want);
    }

    /// Severity comes from the event's kind: failures and blocks at warning (4), the
    /// rest, and names this firmware does not know, at notice (5).
    #[test]
    fn the_severity_is_the_kinds() {
        let pri = |event: &str| {
            let ev = AuditEvent {
                at: 0,
                event: event.into(),
                username: None,
                ip: None,
                detail: None,
                clock_unset: false,
            };
            line(&ev, "h")[..4].to_string()
        };
        for kind in AuditKind::ALL {
            let want = match kind.severity() {
                Severity::Warning => "<84>",
                Severity::Notice => "<85>",
            };
            assert_eq!(pri(kind.name()), want, "{kind:?}");
            assert_eq!(
                AuditKind::from_name(kind.name()),
                Some(kind),
                "names are unique"
            );
        }
        assert_eq!(AuditKind::TwoFactorLocked.severity(), Severity::Warning);
        assert_eq!(AuditKind::AccountCreated.severity(), Severity::Notice);
        assert_eq!(pri("event_of_a_newer_firmware"), "<85>");
    }
}
