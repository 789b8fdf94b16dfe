//! HTTPS with the generated certificate; handshake and header timeouts; SIGHUP.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use pbx_e2e::Daemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fresh;

/// DER of the OID prime256v1 (1.2.840.10045.3.1.7).
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn cert_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PEM body")
}

#[tokio::test]
async fn https_serves_the_generated_p256_certificate_and_keeps_it() {
    let (dir, d) = fresh("https");
    let cert_path = dir.path().join("state/tls/cert.pem");
    let pem = std::fs::read_to_string(&cert_path).expect("generated certificate on flash");
    let der = cert_der(&pem);
    assert!(
        der.windows(P256_OID.len()).any(|w| w == P256_OID),
        "ECDSA P-256 key"
    );
    // The client trusts only this certificate, for the name "localhost".
    let r = d.tls_client().get("/healthz").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));

    drop(d);
    let d = Daemon::start(&dir.path().join("state"));
    assert_eq!(
        std::fs::read_to_string(&cert_path).expect("cert"),
        pem,
        "same certificate after restart"
    );
    assert_eq!(d.tls_client().get("/healthz").await.status, 200);

    // SIGHUP reloads and the daemon keeps serving both protocols.
    kill(d.pid(), Signal::SIGHUP).expect("SIGHUP");
    pbx_e2e::poll_until(Duration::from_secs(10), "no reload logged", || {
        d.log_text().contains("reloaded").then_some(())
    })
    .await;
    assert_eq!(d.tls_client().get("/healthz").await.status, 200);
    assert_eq!(d.client().get("/healthz").await.status, 200);
}

/// Reads until the server closes; returns how long that took.
async fn time_to_close(mut s: tokio::net::TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("server kept a stalled connection open for 30 s"),
        }
    }
}

#[tokio::test]
async fn stalled_tls_handshake_and_slow_headers_are_cut_after_10_s() {
    let (_dir, d) = fresh("timeouts");
    // A TCP connection to the HTTPS port that never starts the handshake.
    let tls = tokio::net::TcpStream::connect(d.https)
        .await
        .expect("connect");
    // A plain HTTP request whose headers never finish.
    let mut slow = tokio::net::TcpStream::connect(d.http)
        .await
        .expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let (t1, t2) = tokio::join!(time_to_close(tls), time_to_close(slow));
    for t in [t1, t2] {
        assert!(t >= Duration::from_secs(9), "closed too early: {t:?}");
        assert!(t < Duration::from_secs(25), "closed too late: {t:?}");
    }
    // Meanwhile and afterwards, the daemon answers.
    assert_eq!(d.client().get("/healthz").await.status, 200);
}

/// The server's suite order (issue 27: ring hashes SHA-256 with the CPU's SHA
/// instructions, SHA-384 without): OpenSSL listing AES-256-GCM-SHA384 first still gets
/// TLS 1.3 AES-128-GCM-SHA256; a client that offers only AES-256 gets that.
#[tokio::test]
async fn tls13_prefers_aes128_gcm_sha256_over_the_clients_order() {
    let (_dir, d) = fresh("suites");
    let suite = |offer: &str| {
        let out = std::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &d.https.to_string(),
                "-tls1_3",
                "-ciphersuites",
                offer,
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find_map(|l| {
                l.split_once("Cipher is ")
                    .map(|(_, c)| c.trim().to_string())
            })
            .unwrap_or_else(|| format!("no cipher in: {text}"))
    };
    assert_eq!(
        suite("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"),
        "TLS_AES_128_GCM_SHA256"
    );
    assert_eq!(suite("TLS_AES_256_GCM_SHA384"), "TLS_AES_256_GCM_SHA384");
}
