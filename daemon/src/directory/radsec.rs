//! RADIUS over TLS (RFC 6614, "RadSec"): the same packets on a TCP connection in TLS to
//! port 2083, the shared secret "radsec" by convention. The server's certificate must
//! chain to the CA of the config and name the configured host; the box shows its own
//! certificate when one is configured (servers that require it). One connection per
//! question: a sign-in is rare, and no idle connection waits on the box. TCP needs no
//! retransmission (RFC 6614 §2.2); the timeout covers the connect, the handshake and
//! the reply each.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::radius::{decode_reply, AccessRequest, AskError, Reply, MAX_PACKET};

/// Where and how to reach one RadSec server.
pub struct Tls<'a> {
    pub host: &'a str,
    pub port: u16,
    /// The CA that signed the server's certificate.
    pub ca: Vec<CertificateDer<'static>>,
    /// The box's certificate chain and key, if the server wants one.
    pub client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    pub timeout: Duration,
}

/// TLS client settings that trust only `ca` (and show `client`, if given).
pub fn client_config(
    ca: Vec<CertificateDer<'static>>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots
            .add(c)
            .map_err(|e| format!("the CA certificate: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the client certificate: {e}"))?,
    };
    Ok(Arc::new(config))
}

/// Sends `request` (its id and authenticator fresh) over a new TLS connection and reads
/// one reply, which must pass [`decode_reply`] like a UDP one (Message-Authenticator
/// required). What failed is said: the connection, the certificate, the reply.
pub async fn ask(
    t: Tls<'_>,
    secret: &[u8],
    request: &mut AccessRequest<'_>,
) -> Result<Reply, AskError> {
    let config = client_config(t.ca, t.client).map_err(AskError::Tls)?;
    let name = ServerName::try_from(t.host.to_string())
        .map_err(|_| AskError::Tls(format!("{:?} is not a host name", t.host)))?;
    let within = |what: &'static str| {
        move |_| {
            AskError::Io(format!(
                "{what}: no answer within {} s",
                t.timeout.as_secs()
            ))
        }
    };
    let tcp = tokio::time::timeout(t.timeout, tokio::net::TcpStream::connect((t.host, t.port)))
        .await
        .map_err(within("connect"))?
        .map_err(|e| AskError::Io(format!("connect: {e}")))?;
    let mut tls = tokio::time::timeout(
        t.timeout,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(within("TLS handshake"))?
    .map_err(|e| AskError::Tls(e.to_string()))?;
    request.id = crate::auth::random_bytes::<1>()[0];
    request.authenticator = crate::auth::random_bytes::<16>();
    let packet = request.encode(secret).map_err(AskError::Request)?;
    let exchange = async {
        tls.write_all(&packet).await?;
        tls.flush().await?;
        let mut head = [0u8; 4];
        tls.read_exact(&mut head).await?;
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        if !(20..=MAX_PACKET).contains(&len) {
            return Err(std::io::Error::other(format!("a reply of {len} bytes")));
        }
        let mut reply = vec![0u8; len];
        reply[..4].copy_from_slice(&head);
        tls.read_exact(&mut reply[4..]).await?;
        Ok(reply)
    };
    let reply = tokio::time::timeout(t.timeout, exchange)
        .await
        .map_err(within("reply"))?
        .map_err(|e| AskError::Io(format!("reply: {e}")))?;
    decode_reply(&reply, request.id, &request.authenticator, secret).map_err(AskError::Refused)
}
