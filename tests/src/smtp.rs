//! A real SMTP server for the tests: Debian's aiosmtpd (`tests/scripts/smtp_server.py`)
//! on loopback, with a plain port, a STARTTLS port and an implicit-TLS port, all with
//! AUTH. Its certificate is made here (rcgen); the daemon trusts it via `SSL_CERT_FILE`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

pub const USER: &str = "pbx-mailer";
pub const PASSWORD: &str = "smtp-Secret-4711";

pub struct SmtpServer {
    child: Child,
    pub plain: u16,
    pub starttls: u16,
    pub tls: u16,
    /// PEM of the server's self-signed certificate.
    pub ca: PathBuf,
    outdir: PathBuf,
    _dir: TempDir,
}

/// One received mail.
#[derive(Debug, Clone)]
pub struct Mail {
    pub raw: String,
}

/// What receiving servers check in every mail of the box, over SMTP or in the dev
/// outbox: a `Message-ID` (`<hex@host>`), `Date` and `MIME-Version: 1.0`. Panics with
/// the headers otherwise.
pub fn assert_standard_headers(raw: &str) {
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    let has = |name: &str| head.split("\r\n").find_map(|l| l.strip_prefix(name));
    let id = has("Message-ID: ").unwrap_or_else(|| panic!("no Message-ID: {head}"));
    assert!(
        id.starts_with('<') && id.ends_with('>') && id.contains('@'),
        "Message-ID {id}"
    );
    assert!(has("Date: ").is_some(), "no Date: {head}");
    assert_eq!(has("MIME-Version: "), Some("1.0"), "{head}");
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        head.split("\r\n").find_map(|l| {
            l.split_once(": ")
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        })
    }
    pub fn subject(&self) -> String {
        self.header("subject").unwrap_or_default()
    }
    pub fn body(&self) -> String {
        self.raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
    /// The first `https://…/reset?token=…` (or http) link in the body.
    pub fn reset_link(&self) -> Option<String> {
        self.link("/reset?token=")
    }
    /// The first link in the body that contains `marker`.
    pub fn link(&self, marker: &str) -> Option<String> {
        self.body()
            .split_whitespace()
            .find(|w| w.contains(marker))
            .map(str::to_string)
    }
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let dir = TempDir::new("smtp");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("test certificate");
        let ca = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&ca, cert.cert.pem()).expect("write cert");
        std::fs::write(&key, cert.key_pair.serialize_pem()).expect("write key");
        let outdir = dir.path().join("received");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/smtp_server.py");
        // Debian's interpreter: python3-aiosmtpd installs for /usr/bin/python3 only.
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args([&ca, &key, &outdir])
            .args([USER, PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("smtp.log")).expect("log"))
            .spawn()
            .expect("python3 runs the SMTP server (make test installs python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ports line");
        let ports: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "SMTP server did not start ({e}): {}",
                std::fs::read_to_string(dir.path().join("smtp.log")).unwrap_or_default()
            )
        });
        let port = |k: &str| u16::try_from(ports[k].as_u64().expect("port")).expect("u16");
        SmtpServer {
            plain: port("plain"),
            starttls: port("starttls"),
            tls: port("tls"),
            child,
            ca,
            outdir,
            _dir: dir,
        }
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel and then
    /// nothing answers, like a mail server that hangs.
    pub fn pause(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, sig).expect("signal the SMTP server");
    }

    /// Every mail received so far, in arrival order.
    pub fn mails(&self) -> Vec<Mail> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.outdir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let p = e.path();
                        let n = p.file_stem()?.to_str()?.parse().ok()?;
                        Some((n, p))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| Mail {
                raw: std::fs::read_to_string(p).expect("mail file"),
            })
            .collect()
    }

    /// Every AUTH attempt so far: (login, password), in arrival order.
    pub fn auth_attempts(&self) -> Vec<(String, String)> {
        let log = self.outdir.with_file_name("auth.jsonl");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                (s("login"), s("password"))
            })
            .collect()
    }

    /// Waits until `n` mails have arrived (up to `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + within;
        loop {
            let m = self.mails();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} mails, got {}: {m:?}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.resume();
        // Closing stdin stops the server; kill in case it hangs.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
