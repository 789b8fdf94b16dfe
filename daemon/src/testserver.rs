//! In-process server for API tests, like mini-redis's `start_server()`: the real
//! [`crate::run`] (router, guards, flows, sled store, mail worker) on `127.0.0.1:0`,
//! over a [`TestApp`] whose [`ManualClock`](crate::clock::ManualClock) the test moves —
//! lockout windows, expiry and sessions are tested without sleeping. What needs a
//! process (signals, SIGKILL, the overlay, the button, first boot) stays in the e2e
//! suite, which runs the binary.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::flows::testkit::TestApp;

pub struct Served {
    pub t: TestApp,
    pub http: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    /// A provisioned box whose admin has replaced the label password, serving HTTP.
    pub async fn start(tag: &str) -> Served {
        let t = TestApp::ready(tag).await;
        let config = t.app.config();
        let listener = crate::server::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let http = listener.local_addr().expect("addr");
        let tls = crate::tls::Tls::new(config.tls.clone(), &["localhost".into()]).expect("tls");
        let listeners = crate::server::Listeners {
            http: vec![listener],
            https: Vec::new(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(crate::run(
            Arc::clone(&t.app),
            Arc::new(tls),
            listeners,
            crate::control::bind(&config.control.socket).ok(),
            async move {
                let _ = stopped.await;
            },
        ));
        Served {
            t,
            http,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Moves the box's clock on.
    pub fn advance(&self, by: std::time::Duration) {
        self.t.clock.advance(by);
    }

    /// One request from 127.0.0.1 on its own connection; `headers` as `name: value` lines.
    pub async fn request(&self, method: &str, path: &str, headers: &[String], body: &str) -> Reply {
        let local = std::net::Ipv4Addr::LOCALHOST;
        self.request_from(local, method, path, headers, body).await
    }

    /// [`Self::request`] from another loopback address (each is its own client for the
    /// limits).
    pub async fn request_from(
        &self,
        from: std::net::Ipv4Addr,
        method: &str,
        path: &str,
        headers: &[String],
        body: &str,
    ) -> Reply {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((from, 0)))
            .expect("loopback source");
        let mut s = socket.connect(self.http).await.expect("connect");
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        if !body.is_empty() {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(body);
        s.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        Reply::parse(&String::from_utf8_lossy(&raw))
    }

    /// Signs `username` in; the session's cookie and CSRF header, for [`Self::request`].
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<Vec<String>, Reply> {
        let body = serde_json::json!({ "username": username, "password": password }).to_string();
        let r = self.request("POST", "/api/v1/login", &[], &body).await;
        if r.status != 200 {
            return Err(r);
        }
        let cookie = r
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("session cookie")
            .to_string();
        let csrf = r.json()["csrf_token"].as_str().expect("csrf").to_string();
        Ok(vec![
            format!("Cookie: {cookie}"),
            format!("X-CSRF-Token: {csrf}"),
        ])
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.done.take() {
            d.abort();
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    fn parse(raw: &str) -> Reply {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_string(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests;
