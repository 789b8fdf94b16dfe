//! The local-network rule of reset links (spec §4): the TCP peer (never a forwarded-for
//! header) must be loopback or inside a subnet of one of the device's own interfaces or
//! of `network.lan_subnets` — unless the PBX is a cloud PBX. A pure decision function, so
//! every case is tested without a network.

use std::net::IpAddr;

use pbx_board::Subnet;

/// Whether `peer` may open a reset link.
pub fn allowed(peer: IpAddr, own: &[Subnet], lan: &[Subnet], cloud: bool) -> bool {
    if cloud {
        return true;
    }
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    peer.is_loopback() || own.iter().chain(lan).any(|s| s.contains(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }
    fn nets(list: &[&str]) -> Vec<Subnet> {
        list.iter().map(|s| s.parse().expect("subnet")).collect()
    }

    #[test]
    fn loopback_is_always_local() {
        for p in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(allowed(ip(p), &[], &[], false), "{p}");
        }
    }

    #[test]
    fn peers_on_the_devices_own_segments_are_local() {
        let own = nets(&["192.168.1.0/24", "fd00:1::/64"]);
        assert!(allowed(ip("192.168.1.77"), &own, &[], false));
        assert!(allowed(ip("::ffff:192.168.1.77"), &own, &[], false));
        assert!(allowed(ip("fd00:1::abcd"), &own, &[], false));
    }

    #[test]
    fn other_networks_are_refused_unless_listed_or_cloud() {
        let own = nets(&["192.168.1.0/24"]);
        for p in [
            "192.168.2.1",
            "10.0.0.5",
            "203.0.113.7",
            "2001:db8::1",
            "fd00:2::1",
        ] {
            assert!(!allowed(ip(p), &own, &[], false), "{p}");
        }
        let lan = nets(&["10.0.0.0/8"]);
        assert!(allowed(ip("10.0.0.5"), &own, &lan, false));
        assert!(!allowed(ip("203.0.113.7"), &own, &lan, false));
        assert!(
            allowed(ip("203.0.113.7"), &own, &lan, true),
            "cloud PBX: from anywhere"
        );
    }
}
