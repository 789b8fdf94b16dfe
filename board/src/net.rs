//! The device's own network: interface addresses read with getifaddrs(3), and the
//! [`Subnet`] type used to decide whether a peer is on the PBX's local segment.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One address of one interface, with the subnet it sits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    pub name: String,
    pub subnet: Subnet,
    pub addr: IpAddr,
}

/// An IP network in CIDR form, e.g. `192.168.1.0/24` or `fd00::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubnetError {
    #[error("expected ADDRESS/PREFIX, e.g. 192.168.1.0/24")]
    MissingPrefix,
    #[error("{0:?} is not an IP address")]
    BadAddress(String),
    #[error("prefix length {0} is out of range for this address family")]
    BadPrefix(String),
}

impl Subnet {
    /// The subnet of `addr` with `prefix` bits; host bits are cleared.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Subnet, SubnetError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(SubnetError::BadPrefix(prefix.to_string()));
        }
        Ok(Subnet {
            network: mask(addr, prefix),
            prefix,
        })
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network address (the first address of the subnet).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may arrive as ::ffff:a.b.c.d on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;
    fn from_str(s: &str) -> Result<Subnet, SubnetError> {
        let (a, p) = s.split_once('/').ok_or(SubnetError::MissingPrefix)?;
        let addr: IpAddr = a.parse().map_err(|_| SubnetError::BadAddress(a.into()))?;
        let prefix: u8 = p.parse().map_err(|_| SubnetError::BadPrefix(p.into()))?;
        Subnet::new(addr, prefix)
    }
}

/// Every IPv4/IPv6 address of every interface that is up, loopback excluded.
pub fn interfaces() -> std::io::Result<Vec<InterfaceAddr>> {
    use nix::net::if_::InterfaceFlags;
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        if !ifa.flags.contains(InterfaceFlags::IFF_UP)
            || ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK)
        {
            continue;
        }
        let (Some(addr), Some(netmask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (ip, prefix) =
            if let (Some(a), Some(m)) = (addr.as_sockaddr_in(), netmask.as_sockaddr_in()) {
                (IpAddr::V4(a.ip()), m.ip().to_bits().count_ones())
            } else if let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), netmask.as_sockaddr_in6()) {
                (IpAddr::V6(a.ip()), u128::from(m.ip()).count_ones())
            } else {
                continue;
            };
        // count_ones of a netmask is at most 128, so it fits in u8.
        let prefix = u8::try_from(prefix).unwrap_or(128);
        if let Ok(subnet) = Subnet::new(ip, prefix) {
            out.push(InterfaceAddr {
                name: ifa.interface_name,
                subnet,
                addr: ip,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn parses_and_masks_host_bits() {
        let s: Subnet = "192.168.1.77/24".parse().expect("valid");
        assert_eq!(s.to_string(), "192.168.1.0/24");
        assert!(s.contains(ip("192.168.1.200")));
        assert!(!s.contains(ip("192.168.2.1")));
    }

    #[test]
    fn v4_mapped_v6_peer_matches_v4_subnet() {
        let s: Subnet = "10.0.0.0/8".parse().expect("valid");
        assert!(s.contains(ip("::ffff:10.1.2.3")));
        assert!(!s.contains(ip("fd00::1")));
    }

    #[test]
    fn edge_prefixes() {
        let all: Subnet = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("203.0.113.9")));
        let one: Subnet = "fd00::1/128".parse().expect("valid");
        assert!(one.contains(ip("fd00::1")));
        assert!(!one.contains(ip("fd00::2")));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            "10.0.0.0".parse::<Subnet>(),
            Err(SubnetError::MissingPrefix)
        );
        assert!(matches!(
            "10.0.0.0/33".parse::<Subnet>(),
            Err(SubnetError::BadPrefix(_))
        ));
        assert!(matches!(
            "ten/8".parse::<Subnet>(),
            Err(SubnetError::BadAddress(_))
        ));
    }

    #[test]
    fn lists_interfaces_without_loopback() {
        let list = interfaces().expect("getifaddrs works in the test environment");
        assert!(list.iter().all(|i| !i.addr.is_loopback()));
    }
}
