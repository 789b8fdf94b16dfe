//! The floor for serving a page with hyper: a bare current_thread hyper 1 server that
//! answers every request with the same bytes (the file given), and nothing else — no
//! routing, sessions, limits or timeouts. `make bench` runs it beside the daemon, built
//! the same way, to show what the daemon's own work costs. Extra `NAME: VALUE`
//! arguments are sent as headers too (the bench passes the daemon's own page headers,
//! to tell the cost of those bytes from the cost of the daemon's code).
//! Usage: bare-hyper PORT FILE [NAME: VALUE]...

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: bare-hyper PORT FILE");
    let body = Bytes::from(
        std::fs::read(args.next().expect("usage: bare-hyper PORT FILE")).expect("page file"),
    );
    let mut extra = hyper::HeaderMap::new();
    for h in args {
        let (name, value) = h.split_once(':').expect("headers as NAME: VALUE");
        extra.insert(
            hyper::header::HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
            hyper::header::HeaderValue::from_str(value.trim()).expect("header value"),
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (body, extra) = (body.clone(), extra.clone());
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    let (body, extra) = (body.clone(), extra.clone());
                    async move {
                        let mut r = Response::new(Full::new(body));
                        *r.headers_mut() = extra;
                        r.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
                        );
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
