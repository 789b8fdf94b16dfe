//! OpenLDAP's slapd of the test's own on loopback (`tests/scripts/slapd.sh`): LDAPS and
//! plain LDAP for StartTLS, a test CA, the service account, directory admins and users
//! (see the script for who is who).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

pub const BASE: &str = "dc=pbx,dc=test";
pub const SERVICE_DN: &str = "cn=pbx,ou=services,dc=pbx,dc=test";
pub const SERVICE_PW: &str = "service pass 0";

pub struct Slapd {
    /// LDAPS on 127.0.0.1.
    pub ldaps: u16,
    /// Plain LDAP (StartTLS) on 127.0.0.1.
    pub ldap: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Slapd {
    /// Starts it under `dir`, its certificate from `tls` ([`crate::certs::test_certs`]),
    /// and waits until both ports take connections.
    pub fn start(dir: &Path, tls: &Path) -> Slapd {
        std::fs::create_dir_all(dir).expect("dir");
        let (ldaps, ldap) = (free_port(), free_port());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slapd.sh");
        let child = Command::new("bash")
            .arg(script)
            .arg(dir)
            .arg(ldaps.to_string())
            .arg(ldap.to_string())
            .arg(tls)
            .spawn()
            .expect("bash runs the slapd script (make deps installs slapd)");
        let mut s = Slapd {
            ldaps,
            ldap,
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
        // Up to a minute: a busy machine (two cores, the rest of the suite) must not fail it.
        let ready = (0..1200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            up(ldaps) && up(ldap)
        });
        if !ready {
            let log = s.log();
            s.stop();
            panic!("slapd did not start:\n{log}");
        }
        s
    }

    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("slapadd.log"), read("slapd.log"))
    }

    /// Stops it (the directory "goes down"); again is a no-op.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let conf = self.dir.join("slapd.conf");
            let _ = Command::new("pkill")
                .args(["-f", &format!("slapd -f {}", conf.display())])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
