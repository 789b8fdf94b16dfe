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
    // A /0 (a default route's "subnet", a careless lan_subnets entry) would make every
    // address on the internet local: such entries do not count.
    peer.is_loopback()
        || own
            .iter()
            .chain(lan)
            .any(|s| s.prefix() > 0 && s.contains(peer))
}

/// The subnets that make up the PBX's own network: those of its LAN interfaces
/// ([`interface_is_lan`]), never the WAN port's (`wan`, from the board profile), never
/// a prefix-0 one; and on a board with a WAN port no link-local subnet, since every
/// link has the same `fe80::/64` (and `169.254.0.0/16`): a link-local peer could be on
/// the WAN link.
pub fn own_subnets(
    interfaces: &[pbx_board::InterfaceAddr],
    lan_interfaces: Option<&[String]>,
    wan: Option<&str>,
) -> Vec<Subnet> {
    interfaces
        .iter()
        .filter(|i| wan != Some(i.name.as_str()) && interface_is_lan(&i.name, lan_interfaces))
        .filter(|i| i.subnet.prefix() > 0)
        .filter(|i| wan.is_none() || !is_link_local(i.subnet.network()))
        .map(|i| i.subnet)
        .collect()
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Interfaces that are never the PBX's own segment unless named in
/// `network.lan_interfaces`: dial-up, VPN tunnels, container bridges.
pub const NOT_LAN: [&str; 4] = ["ppp*", "wg*", "tun*", "docker*"];

/// Whether interface `name` is part of the PBX's own network: one of `lan_interfaces`
/// when configured (a trailing `*` matches any rest), else any but [`NOT_LAN`].
pub fn interface_is_lan(name: &str, lan_interfaces: Option<&[String]>) -> bool {
    let matches = |p: &str| {
        p.strip_suffix('*')
            .map_or(name == p, |pre| name.starts_with(pre))
    };
    match lan_interfaces {
        Some(list) => list.iter().any(|p| matches(p)),
        None => !NOT_LAN.iter().any(|p| matches(p)),
    }
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
    fn a_prefix_0_subnet_makes_nothing_local() {
        let any4 = nets(&["0.0.0.0/0"]);
        let any6 = nets(&["::/0"]);
        assert!(!allowed(ip("203.0.113.7"), &any4, &[], false));
        assert!(!allowed(ip("203.0.113.7"), &[], &any4, false));
        assert!(!allowed(ip("2001:db8::1"), &any6, &any6, false));
        assert!(allowed(ip("127.0.0.1"), &any4, &[], false));
    }

    #[test]
    fn tunnels_and_bridges_are_not_the_lan_unless_named() {
        for name in ["eth0", "br-lan", "wlan0", "lan1"] {
            assert!(interface_is_lan(name, None), "{name}");
        }
        for name in ["ppp0", "wg0", "tun3", "docker0"] {
            assert!(!interface_is_lan(name, None), "{name}");
        }
        let only = vec!["eth1".to_string(), "br-*".to_string()];
        assert!(interface_is_lan("eth1", Some(&only)));
        assert!(interface_is_lan("br-lan", Some(&only)));
        assert!(!interface_is_lan("eth0", Some(&only)));
        assert!(!interface_is_lan("wg0", Some(&only)));
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

    fn iface(name: &str, subnet: &str) -> pbx_board::InterfaceAddr {
        let subnet: Subnet = subnet.parse().expect("subnet");
        pbx_board::InterfaceAddr {
            name: name.into(),
            subnet,
            addr: subnet.network(),
        }
    }

    /// Issue 24 (low): on a board with a WAN port, the WAN's subnet and link-local
    /// addresses are not the local network (failed before: every interface counted).
    #[test]
    fn the_wan_port_and_link_local_addresses_are_not_local_on_a_board_with_one() {
        let ifs = [
            iface("eth0", "192.168.1.0/24"),
            iface("eth0", "fe80::/64"),
            iface("eth1", "203.0.113.0/24"),
            iface("eth1", "fe80::/64"),
        ];
        let own = own_subnets(&ifs, None, Some("eth1"));
        assert!(allowed(ip("192.168.1.9"), &own, &[], false));
        assert!(
            !allowed(ip("203.0.113.9"), &own, &[], false),
            "the WAN's subnet"
        );
        assert!(
            !allowed(ip("fe80::1"), &own, &[], false),
            "link-local: maybe the WAN link"
        );
        // Without a WAN port (one LAN), link-local peers are on the PBX's own link.
        let own = own_subnets(&ifs[..2], None, None);
        assert!(allowed(ip("fe80::1"), &own, &[], false));
        // Naming the WAN in lan_interfaces does not make it local.
        let lan = vec!["eth*".to_string()];
        let own = own_subnets(&ifs, Some(&lan), Some("eth1"));
        assert!(!allowed(ip("203.0.113.9"), &own, &[], false));
    }
}
