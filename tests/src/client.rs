//! A small HTTP/1.1 client for the tests: one connection per request, an optional
//! loopback source address (to act as another computer on the LAN), HTTPS that trusts
//! exactly the daemon's own certificate, and a cookie jar of the session and device cookies.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpSocket, TcpStream};

#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    source: Option<IpAddr>,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// `pbx_session=...` once a response set it.
    pub cookie: Option<String>,
    /// `pbx_device=...` (the device cookie of a successful sign-in), kept like a browser.
    pub device_cookie: Option<String>,
    /// A sign-in's pre-session, while it owes its second factor.
    pub presession: Option<String>,
    pub csrf: Option<String>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    }
}

/// A rustls client config that trusts only the given certificate.
pub fn trust_only(cert_pem: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert_pem).expect("cert file") {
        roots.add(c.expect("cert PEM")).expect("usable root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

impl Client {
    pub fn http(addr: SocketAddr) -> Client {
        Client {
            addr,
            source: None,
            tls: None,
            cookie: None,
            device_cookie: None,
            presession: None,
            csrf: None,
        }
    }

    /// HTTPS, verifying the server against `cert_pem` for the name `localhost`.
    pub fn https(addr: SocketAddr, cert_pem: &Path) -> Client {
        let name = ServerName::try_from("localhost").expect("valid name");
        Client {
            tls: Some((tokio_rustls::TlsConnector::from(trust_only(cert_pem)), name)),
            ..Client::http(addr)
        }
    }

    /// Sends from this loopback source address (e.g. 127.0.0.2).
    pub fn from(mut self, source: IpAddr) -> Client {
        self.source = Some(source);
        self
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        let sock = if self.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(src) = self.source {
            sock.bind(SocketAddr::new(src, 0))?;
        }
        sock.connect(self.addr).await
    }

    /// Sends one request; remembers a session cookie the response sets.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        // `localhost` unless the test sends a Host of its own.
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            b = b.header("host", "localhost");
        }
        let jar: Vec<&str> = [&self.cookie, &self.device_cookie, &self.presession]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !jar.is_empty() {
            b = b.header("cookie", jar.join("; "));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("valid request");
        let stream = self.connect().await.expect("connect to daemon");
        let resp = match &self.tls {
            None => {
                let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("http handshake");
                tokio::spawn(conn);
                tx.send_request(req).await.expect("response")
            }
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), stream)
                    .await
                    .expect("TLS handshake with the daemon's certificate");
                let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .expect("http handshake");
                tokio::spawn(conn);
                tx.send_request(req).await.expect("response")
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        let r = Resp {
            status,
            headers,
            body,
        };
        for c in r.set_cookies() {
            if let Some(v) = c.split(';').next() {
                // Over HTTPS the names carry the `__Host-` prefix; kept as sent.
                let (name, value) = v.split_once('=').unwrap_or((v, ""));
                let kept = (!value.is_empty()).then(|| v.to_string());
                match name.trim_start_matches("__Host-") {
                    "pbx_session" => self.cookie = kept,
                    "pbx_device" => self.device_cookie = kept,
                    "pbx_2fa" => self.presession = kept,
                    _ => {}
                }
            }
        }
        r
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, &[], None).await
    }

    /// POST JSON, with the CSRF header when this client holds a token.
    pub async fn post_json(&mut self, path: &str, body: &serde_json::Value) -> Resp {
        let csrf = self.csrf.clone();
        let mut h = vec![("content-type", "application/json")];
        if let Some(t) = csrf.as_deref() {
            h.push(("x-csrf-token", t));
        }
        self.send("POST", path, &h, Some(body.to_string().into_bytes()))
            .await
    }

    /// Any method with a JSON body and the CSRF header (PUT, DELETE, ...).
    pub async fn send_json(&mut self, method: &str, path: &str, body: &serde_json::Value) -> Resp {
        let csrf = self.csrf.clone();
        let mut h = vec![("content-type", "application/json")];
        if let Some(t) = csrf.as_deref() {
            h.push(("x-csrf-token", t));
        }
        self.send(method, path, &h, Some(body.to_string().into_bytes()))
            .await
    }

    /// Logs in; on 200 keeps the cookie and CSRF token.
    pub async fn login(&mut self, username: &str, password: &str) -> Resp {
        let r = self
            .post_json(
                "/api/v1/login",
                &serde_json::json!({"username": username, "password": password}),
            )
            .await;
        if r.status == 200 {
            self.csrf = r.json()["csrf_token"].as_str().map(str::to_string);
        }
        r
    }
}
