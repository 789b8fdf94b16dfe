//! A list of trusted networks as the config file and the Access page write it (spec
//! §10): CIDR subnets, single addresses, or `local` (loopback and the box's own LAN
//! segment); empty means anywhere. Pure: the caller says whether a peer is on the local
//! segment, so every case is tested without a network. The rules that use the lists
//! are `auth::trust`'s.

use std::fmt;
use std::net::IpAddr;

use pbx_board::Subnet;

/// The entry that stands for loopback and the box's own LAN segment.
pub const LOCAL: &str = "local";

/// Most entries in one list (a page of networks, not a firewall).
pub const MAX_ENTRIES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// Loopback and the box's own LAN segment (never the cloud switch's "everyone").
    Local,
    Subnet(Subnet),
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Net::Local => f.write_str(LOCAL),
            Net::Subnet(s) => write!(f, "{s}"),
        }
    }
}

/// One role's trusted networks; empty: anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetList(Vec<Net>);

impl NetList {
    /// Parses the entries as people write them (`192.168.1.0/24`, `10.0.0.5`, `fd00::/64`,
    /// `local`); the first bad one is named. A /0 is refused: it would be "anywhere"
    /// spelt so that it looks like a restriction.
    pub fn parse(entries: &[String]) -> Result<NetList, String> {
        if entries.len() > MAX_ENTRIES {
            return Err(format!("at most {MAX_ENTRIES} entries"));
        }
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let e = e.trim();
            let net = if e.eq_ignore_ascii_case(LOCAL) {
                Net::Local
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                let full = if ip.is_ipv4() { 32 } else { 128 };
                Net::Subnet(Subnet::new(ip, full).map_err(|err| format!("{e:?}: {err}"))?)
            } else {
                let s: Subnet = e.parse().map_err(|err| format!("{e:?}: {err}"))?;
                if s.prefix() == 0 {
                    return Err(format!(
                        "{e:?} is every address: leave the list empty to allow anywhere"
                    ));
                }
                Net::Subnet(s)
            };
            if !out.contains(&net) {
                out.push(net);
            }
        }
        Ok(NetList(out))
    }

    /// Anywhere.
    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `peer` may sign in; `on_segment` is asked only when a `local` entry
    /// decides it (it reads the interfaces).
    pub fn allows(&self, peer: IpAddr, on_segment: impl FnOnce(IpAddr) -> bool) -> bool {
        if self.0.is_empty() {
            return true;
        }
        if self
            .0
            .iter()
            .any(|n| matches!(n, Net::Subnet(s) if s.contains(peer)))
        {
            return true;
        }
        self.0.contains(&Net::Local) && on_segment(peer)
    }

    /// The entries as stored and shown (`local` first where present).
    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(Net::to_string).collect()
    }

    pub fn has_local(&self) -> bool {
        self.0.contains(&Net::Local)
    }

    /// The subnets only (what the `local` entry does not cover).
    pub fn subnets(&self) -> impl Iterator<Item = &Subnet> {
        self.0.iter().filter_map(|n| match n {
            Net::Subnet(s) => Some(s),
            Net::Local => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(e: &[&str]) -> NetList {
        NetList::parse(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("parses")
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_empty_list_is_anywhere() {
        assert!(list(&[]).allows(ip("203.0.113.9"), |_| false));
        assert!(list(&[]).is_open());
    }

    #[test]
    fn subnets_single_addresses_and_mapped_v4_peers() {
        let l = list(&["192.168.1.0/24", "10.0.0.5", "fd00:1::/64"]);
        assert!(l.allows(ip("192.168.1.200"), |_| false));
        assert!(l.allows(ip("::ffff:192.168.1.7"), |_| false));
        assert!(l.allows(ip("10.0.0.5"), |_| false));
        assert!(!l.allows(ip("10.0.0.6"), |_| false));
        assert!(l.allows(ip("fd00:1::42"), |_| false));
        assert!(
            !l.allows(ip("127.0.0.1"), |_| true),
            "loopback only by `local`"
        );
        assert_eq!(
            l.entries(),
            ["192.168.1.0/24", "10.0.0.5/32", "fd00:1::/64"]
        );
    }

    #[test]
    fn local_asks_the_segment_only_when_it_decides() {
        let l = list(&["LOCAL", "10.1.0.0/16"]);
        assert!(l.has_local());
        assert!(l.allows(ip("10.1.2.3"), |_| panic!("a subnet decided it")));
        assert!(l.allows(ip("127.0.0.1"), |p| p.is_loopback()));
        assert!(!l.allows(ip("203.0.113.1"), |_| false));
        assert_eq!(l.entries(), ["local", "10.1.0.0/16"]);
    }

    #[test]
    fn bad_entries_are_named() {
        let bad = |e: &str| NetList::parse(&[e.to_string()]).expect_err(e);
        assert!(bad("192.168.1.0/33").contains("192.168.1.0/33"));
        assert!(bad("office").contains("office"));
        assert!(bad("0.0.0.0/0").contains("leave the list empty"));
        assert!(NetList::parse(&vec!["10.0.0.1".to_string(); MAX_ENTRIES + 1]).is_err());
    }
}
