//! The RADIUS codec (RFC 2865) of the box as a client: an Access-Request with PAP, and
//! the checks every reply must pass before a word of it is believed. Every request
//! carries a Message-Authenticator (RFC 3579, HMAC-MD5 over the whole packet) as its
//! **first** attribute, and a reply without one, or with a wrong one, is refused — the
//! BlastRADIUS mitigation (CVE-2024-3596): an attacker on the path can forge the MD5 of
//! the Response Authenticator, not the HMAC. Pure: no sockets, tested with its own
//! packets and against a real FreeRADIUS.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

/// Packet codes (RFC 2865 §3).
pub mod code {
    pub const ACCESS_REQUEST: u8 = 1;
    pub const ACCESS_ACCEPT: u8 = 2;
    pub const ACCESS_REJECT: u8 = 3;
    pub const ACCESS_CHALLENGE: u8 = 11;
}

/// Attribute types (RFC 2865 §5, RFC 3579 §3.2).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const USER_PASSWORD: u8 = 2;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const FILTER_ID: u8 = 11;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
}

/// RFC 2865 §3: no packet is longer.
pub const MAX_PACKET: usize = 4096;
/// RFC 2865 §5.2: PAP passwords are at most 128 octets.
pub const MAX_PASSWORD: usize = 128;

/// Why a packet could not be built or a reply is not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RadiusError {
    #[error("{0} is too long for RADIUS")]
    TooLong(&'static str),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("malformed reply: {0}")]
    Malformed(&'static str),
    #[error("the reply answers another request")]
    WrongId,
    #[error("the reply has no Message-Authenticator (refused: CVE-2024-3596)")]
    MissingMessageAuthenticator,
    #[error("the reply's Message-Authenticator is wrong (another secret, or forged)")]
    BadMessageAuthenticator,
    #[error("the reply's Response Authenticator is wrong (another secret, or forged)")]
    BadResponseAuthenticator,
    #[error("the reply has code {0}, not Accept, Reject or Challenge")]
    UnexpectedCode(u8),
}

/// An Access-Request with PAP.
pub struct AccessRequest<'a> {
    pub id: u8,
    /// 16 random bytes, new for every request (RFC 2865 §3).
    pub authenticator: [u8; 16],
    pub user: &'a str,
    pub password: &'a [u8],
    /// NAS-Identifier: the box's serial.
    pub nas_identifier: &'a str,
    pub nas_ip: Option<std::net::Ipv4Addr>,
    /// The State of an Access-Challenge this request answers.
    pub state: Option<&'a [u8]>,
}

fn hmac_md5(secret: &[u8], data: &[u8]) -> [u8; 16] {
    let mut m = <Hmac<Md5> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn put(p: &mut Vec<u8>, t: u8, v: &[u8], what: &'static str) -> Result<(), RadiusError> {
    if v.is_empty() {
        return Err(RadiusError::Empty(what));
    }
    let len = u8::try_from(v.len() + 2).map_err(|_| RadiusError::TooLong(what))?;
    p.push(t);
    p.push(len);
    p.extend_from_slice(v);
    Ok(())
}

/// The User-Password attribute's value (RFC 2865 §5.2): the password padded with zeros
/// to a multiple of 16, each block XORed with MD5(secret + the previous cipher block,
/// the Request Authenticator for the first).
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, RadiusError> {
    if password.len() > MAX_PASSWORD {
        return Err(RadiusError::TooLong("the password"));
    }
    let blocks = password.len().div_ceil(16).max(1);
    let mut out = password.to_vec();
    out.resize(blocks * 16, 0);
    let mut prev = *authenticator;
    for block in out.chunks_mut(16) {
        let key = Md5::new()
            .chain_update(secret)
            .chain_update(prev)
            .finalize();
        for (b, k) in block.iter_mut().zip(key.iter()) {
            *b ^= k;
        }
        prev.copy_from_slice(block);
    }
    Ok(out)
}

impl AccessRequest<'_> {
    /// The packet, Message-Authenticator first and signed with `secret`.
    pub fn encode(&self, secret: &[u8]) -> Result<Vec<u8>, RadiusError> {
        let mut p = Vec::with_capacity(128);
        p.extend_from_slice(&[code::ACCESS_REQUEST, self.id, 0, 0]);
        p.extend_from_slice(&self.authenticator);
        put(
            &mut p,
            attr::MESSAGE_AUTHENTICATOR,
            &[0; 16],
            "Message-Authenticator",
        )?;
        put(
            &mut p,
            attr::USER_NAME,
            self.user.as_bytes(),
            "the username",
        )?;
        let hidden = hide_password(self.password, secret, &self.authenticator)?;
        put(&mut p, attr::USER_PASSWORD, &hidden, "the password")?;
        if let Some(ip) = self.nas_ip {
            put(&mut p, attr::NAS_IP_ADDRESS, &ip.octets(), "NAS-IP-Address")?;
        }
        put(
            &mut p,
            attr::NAS_IDENTIFIER,
            self.nas_identifier.as_bytes(),
            "NAS-Identifier",
        )?;
        if let Some(state) = self.state {
            put(&mut p, attr::STATE, state, "State")?;
        }
        let len = u16::try_from(p.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_PACKET)
            .ok_or(RadiusError::TooLong("the request"))?;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        let mac = hmac_md5(secret, &p);
        p[22..38].copy_from_slice(&mac);
        Ok(p)
    }
}

/// A reply that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u8,
    pub attributes: Vec<(u8, Vec<u8>)>,
}

impl Reply {
    /// Every value of attribute `t`, in order.
    pub fn values(&self, t: u8) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter(move |(a, _)| *a == t)
            .map(|(_, v)| v.as_slice())
    }

    /// The server's words to the user (Reply-Message, joined), if any.
    pub fn message(&self) -> Option<String> {
        let parts: Vec<String> = self
            .values(attr::REPLY_MESSAGE)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        (!parts.is_empty()).then(|| parts.concat())
    }
}

/// Checks a reply to the request `id` / `request_authenticator` and reads it: the length,
/// the id, a Message-Authenticator (required) that verifies, the Response Authenticator,
/// a code of Accept, Reject or Challenge. Constant-time comparisons.
pub fn decode_reply(
    packet: &[u8],
    id: u8,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<Reply, RadiusError> {
    if packet.len() < 20 {
        return Err(RadiusError::Malformed("shorter than a header"));
    }
    let len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if !(20..=MAX_PACKET).contains(&len) || len > packet.len() {
        return Err(RadiusError::Malformed("its length field"));
    }
    let p = &packet[..len];
    if p[1] != id {
        return Err(RadiusError::WrongId);
    }
    let mut attributes = Vec::new();
    let mut mac_at = None;
    let mut i = 20;
    while i < len {
        if i + 2 > len {
            return Err(RadiusError::Malformed("an attribute cut short"));
        }
        let (t, l) = (p[i], usize::from(p[i + 1]));
        if l < 2 || i + l > len {
            return Err(RadiusError::Malformed("an attribute's length"));
        }
        if t == attr::MESSAGE_AUTHENTICATOR {
            if l != 18 || mac_at.is_some() {
                return Err(RadiusError::BadMessageAuthenticator);
            }
            mac_at = Some(i + 2);
        } else {
            attributes.push((t, p[i + 2..i + l].to_vec()));
        }
        i += l;
    }
    let mac_at = mac_at.ok_or(RadiusError::MissingMessageAuthenticator)?;
    let mut signed = p.to_vec();
    signed[4..20].copy_from_slice(request_authenticator);
    signed[mac_at..mac_at + 16].fill(0);
    if !crate::auth::ct_eq(&hmac_md5(secret, &signed), &p[mac_at..mac_at + 16]) {
        return Err(RadiusError::BadMessageAuthenticator);
    }
    let expected = Md5::new()
        .chain_update(&p[..4])
        .chain_update(request_authenticator)
        .chain_update(&p[20..])
        .chain_update(secret)
        .finalize();
    if !crate::auth::ct_eq(&expected, &p[4..20]) {
        return Err(RadiusError::BadResponseAuthenticator);
    }
    match p[0] {
        code::ACCESS_ACCEPT | code::ACCESS_REJECT | code::ACCESS_CHALLENGE => Ok(Reply {
            code: p[0],
            attributes,
        }),
        other => Err(RadiusError::UnexpectedCode(other)),
    }
}

#[cfg(test)]
mod tests;

/// Where and how long to ask.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    /// Tried in order: the next one when a server does not answer.
    pub servers: &'a [std::net::SocketAddr],
    pub secret: &'a [u8],
    /// Per try; a server gets `1 + retries` tries (the same packet, RFC 2865 §3).
    pub timeout: std::time::Duration,
    pub retries: u32,
}

/// Why no reply was believed.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// No server answered (within timeout × tries each).
    #[error("no RADIUS server answered: {}", tried.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Unreachable { tried: Vec<std::net::SocketAddr> },
    /// Answers came, none of them passed the checks (the last one's reason).
    #[error("every RADIUS reply was refused: {0}")]
    Refused(RadiusError),
    #[error("the request cannot be sent: {0}")]
    Request(RadiusError),
    #[error("network: {0}")]
    Io(String),
    /// RadSec: the TLS settings or handshake failed (a certificate not trusted, ...).
    #[error("TLS: {0}")]
    Tls(String),
}

/// Sends `request` (its id and authenticator fresh for this call) to each server in
/// turn until one gives a reply that passes [`decode_reply`]. A datagram that does not
/// pass (from anyone: a forgery, a late answer) is logged and the wait goes on, so a
/// forged packet cannot stand in for, or shut out, the server's real one.
pub async fn ask(how: &Ask<'_>, request: &mut AccessRequest<'_>) -> Result<Reply, AskError> {
    use tokio::net::UdpSocket;
    let mut refused = None;
    for server in how.servers {
        request.id = crate::auth::random_bytes::<1>()[0];
        request.authenticator = crate::auth::random_bytes::<16>();
        let packet = request.encode(how.secret).map_err(AskError::Request)?;
        let local: std::net::SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local)
            .await
            .map_err(|e| AskError::Io(e.to_string()))?;
        for _ in 0..=how.retries {
            if let Err(e) = sock.send_to(&packet, server).await {
                tracing::warn!(%server, "RADIUS request not sent: {e}");
                break;
            }
            let deadline = tokio::time::Instant::now() + how.timeout;
            let mut buf = [0u8; MAX_PACKET];
            loop {
                let got = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
                let Ok(Ok((n, from))) = got else { break };
                if from != *server {
                    tracing::warn!(%from, "a RADIUS datagram from an address not asked: ignored");
                    continue;
                }
                match decode_reply(&buf[..n], request.id, &request.authenticator, how.secret) {
                    Ok(reply) => return Ok(reply),
                    Err(e) => {
                        tracing::warn!(%server, "RADIUS reply refused: {e}");
                        refused = Some(e);
                    }
                }
            }
        }
        tracing::warn!(%server, "RADIUS server did not answer");
    }
    Err(match refused {
        Some(e) => AskError::Refused(e),
        None => AskError::Unreachable {
            tried: how.servers.to_vec(),
        },
    })
}
