//! The kernel's share of the address lockout, `network.block_with = "nftables"` (the way
//! appliances' "IP auto defense" works): the daemon keeps a table of its own, `inet
//! pbx_authd`, with sets of blocked addresses whose elements time out with the block
//! and a rule that drops their packets to the daemon's ports before any socket sees
//! them, so a flood from a blocked address costs the daemon nothing. Addresses on the
//! PBX's own segment are never put there (the block keeps its exemptions for them).
//! A missing `nft` or kernel support is a warning in words, never a failed start; the
//! daemon's own shedding ([`crate::server`]) works either way. The table goes at stop.

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use crate::config::BlockWith;

const TABLE: &str = "pbx_authd";

pub struct Firewall {
    mode: BlockWith,
    /// The table is in place.
    on: AtomicBool,
    /// The program run (`nft`; tests name another).
    nft: String,
}

impl Firewall {
    pub fn new(mode: BlockWith) -> Firewall {
        Firewall {
            mode,
            on: AtomicBool::new(false),
            nft: "nft".into(),
        }
    }

    /// [`Firewall::new`] running `nft` as `program` (a missing one in tests).
    pub fn with_program(mode: BlockWith, program: &str) -> Firewall {
        Firewall {
            nft: program.into(),
            ..Firewall::new(mode)
        }
    }

    /// Puts the table in place for the daemon's `ports` (an old one from a daemon that
    /// was killed goes first). Says in words why not, and carries on without.
    pub fn start(&self, ports: &[u16]) {
        if self.mode != BlockWith::Nftables || ports.is_empty() {
            return;
        }
        let ports = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let script = format!(
            "table inet {TABLE}\ndelete table inet {TABLE}\n\
             table inet {TABLE} {{\n\
             \tset blocked4 {{ type ipv4_addr; flags timeout; }}\n\
             \tset blocked6 {{ type ipv6_addr; flags interval, timeout; }}\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority -10; policy accept;\n\
             \t\tip saddr @blocked4 tcp dport {{ {ports} }} drop\n\
             \t\tip6 saddr @blocked6 tcp dport {{ {ports} }} drop\n\
             \t}}\n}}\n"
        );
        match self.nft(&["-f", "-"], Some(&script)) {
            Ok(()) => {
                self.on.store(true, Ordering::SeqCst);
                tracing::info!(ports, "blocked addresses are dropped by nftables (table inet {TABLE})");
            }
            Err(why) => tracing::warn!(
                "network.block_with = \"nftables\": {why}; blocked addresses are closed by the daemon only"
            ),
        }
    }

    /// Whether the table is in place (blocks go to the kernel too).
    pub fn active(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// Drops `ip` (IPv6: its /64, as the lockout counts it) for `duration`, off the
    /// request path.
    pub fn block(&self, ip: IpAddr, duration: Duration) {
        if !self.active() {
            return;
        }
        let key = crate::auth::lockout::addr_key(ip);
        let (set, element) = match key {
            IpAddr::V4(v4) => ("blocked4", v4.to_string()),
            IpAddr::V6(v6) => ("blocked6", format!("{v6}/64")),
        };
        let secs = duration.as_secs().max(1);
        let args = [
            "add".to_string(),
            "element".into(),
            "inet".into(),
            TABLE.into(),
            set.into(),
            format!("{{ {element} timeout {secs}s }}"),
        ];
        let nft = self.nft.clone();
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if let Err(why) = run(&nft, &args, None) {
                tracing::warn!("nftables: {element} not added to {set}: {why}");
            }
        });
    }

    /// Removes the table: a stopped daemon leaves no rule behind.
    pub fn stop(&self) {
        if self.on.swap(false, Ordering::SeqCst) {
            if let Err(why) = self.nft(&["delete", "table", "inet", TABLE], None) {
                tracing::warn!("nftables: table inet {TABLE} not removed: {why}");
            }
        }
    }

    fn nft(&self, args: &[&str], input: Option<&str>) -> Result<(), String> {
        run(&self.nft, args, input)
    }
}

/// Runs `program args`, `input` on its standard input; what went wrong in words.
fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("{program} is not installed (Debian: the nftables package)")
            }
            _ => format!("{program} cannot run: {e}"),
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("{program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let said = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{program} refused ({}): {}",
            out.status,
            said.lines().next().unwrap_or("no message").trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_nft_is_a_warning_in_words_and_nothing_is_on() {
        let f = Firewall::with_program(BlockWith::Nftables, "/nonexistent/nft");
        f.start(&[80, 443]);
        assert!(!f.on.load(Ordering::SeqCst));
        let why = run("/nonexistent/nft", &["list", "tables"], None).expect_err("missing");
        assert!(
            why.contains("is not installed (Debian: the nftables package)"),
            "{why}"
        );
        // Nothing to add to, nothing to remove.
        f.block("198.51.100.7".parse().expect("ip"), Duration::from_secs(60));
        f.stop();
    }

    #[test]
    fn the_daemon_mode_runs_nothing() {
        let f = Firewall::with_program(BlockWith::Daemon, "/nonexistent/nft");
        f.start(&[80]);
        assert!(!f.on.load(Ordering::SeqCst));
    }
}
