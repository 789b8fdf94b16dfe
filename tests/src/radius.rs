//! RADIUS servers for the tests, on loopback: Debian's FreeRADIUS with a config of the
//! test's own ([`FreeRadius`], `tests/scripts/freeradius.sh`: Message-Authenticator
//! required, users `tech1` (Class pbx-admin), `tech2` (Filter-Id pbx-user), `tech3`
//! (an Access-Challenge for the code 424242), `tech4` (no attribute), `admin`), and a
//! rogue responder ([`Rogue`]) that answers every request with an Access-Accept whose
//! Response Authenticator is right (as if MD5 had been broken: BlastRADIUS) but whose
//! Message-Authenticator is missing or forged.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// The shared secret of the test servers.
pub const SECRET: &str = "radius test secret";

pub struct FreeRadius {
    /// Its UDP authentication port on 127.0.0.1 (the next three are its others).
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// Four UDP ports in a row on 127.0.0.1 (and the first on TCP), free now and given to
/// no other server of this process (tests start theirs at once).
fn free_ports() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let salt = (std::process::id() % 1000) as u16 * 8;
    loop {
        let p = 30000 + (salt + NEXT.fetch_add(4, Ordering::SeqCst)) % 30000;
        // The first one on TCP too: RadSec listens there.
        if (0..4).all(|n| UdpSocket::bind(("127.0.0.1", p + n)).is_ok())
            && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        {
            return p;
        }
    }
}

impl FreeRadius {
    /// Starts it under `dir` and waits until it says it is ready.
    pub fn start(dir: &Path) -> FreeRadius {
        Self::start_with(dir, None)
    }

    /// With RadSec too, on TCP [`FreeRadius::port`] (`localhost`), its certificates
    /// from `tls` ([`crate::certs::test_certs`]).
    pub fn start_with(dir: &Path, tls: Option<&Path>) -> FreeRadius {
        std::fs::create_dir_all(dir).expect("dir");
        let port = free_ports();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/freeradius.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(script).arg(dir).arg(port.to_string()).arg(SECRET);
        if let Some(t) = tls {
            cmd.arg(t);
        }
        let child = cmd
            .spawn()
            .expect("bash runs the FreeRADIUS script (make deps installs freeradius)");
        let mut s = FreeRadius {
            port,
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        // Up to a minute: a busy machine (two cores, the rest of the suite) must not fail it.
        let ready = (0..1200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            s.log().contains("Ready to process requests")
        });
        if !ready {
            let log = s.log();
            s.stop();
            panic!("FreeRADIUS did not start:\n{log}");
        }
        s
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Everything it printed (`-X`: each packet and its attributes).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("radiusd.log")).unwrap_or_default()
    }

    /// Stops it (the directory "goes down"); again is a no-op.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("pkill")
                .args([
                    "-f",
                    &format!(
                        "freeradius -f -xx -l stdout -d {}",
                        self.dir.join("raddb").display()
                    ),
                ])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How the rogue signs its Access-Accepts.
#[derive(Clone, Copy, Debug)]
pub enum Forgery {
    /// No Message-Authenticator at all.
    Without,
    /// One that is not the HMAC of the packet under the secret.
    Forged,
}

/// A responder that answers every request, at once, with an Access-Accept granting
/// `Class = pbx-admin`; counts what it answered.
pub struct Rogue {
    pub addr: SocketAddr,
    answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Rogue {
    pub fn start(how: Forgery) -> Rogue {
        use md5::{Digest, Md5};
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = sock.local_addr().expect("addr");
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = answered.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                if n < 20 {
                    continue;
                }
                let mut attrs = vec![25, 11];
                attrs.extend_from_slice(b"pbx-admin");
                if let Forgery::Forged = how {
                    attrs.extend_from_slice(&[80, 18]);
                    attrs.extend_from_slice(&[0x42; 16]);
                }
                let len = (20 + attrs.len()) as u16;
                let mut reply = vec![2, buf[1]];
                reply.extend_from_slice(&len.to_be_bytes());
                reply.extend_from_slice(&buf[4..20]);
                reply.extend_from_slice(&attrs);
                // The Response Authenticator right: what an MD5 collision would give.
                let mut h = Md5::new();
                h.update(&reply);
                h.update(SECRET.as_bytes());
                let auth = h.finalize();
                reply[4..20].copy_from_slice(&auth);
                let _ = sock.send_to(&reply, from);
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Rogue { addr, answered }
    }

    /// Requests it answered.
    pub fn answered(&self) -> usize {
        self.answered.load(std::sync::atomic::Ordering::SeqCst)
    }
}
