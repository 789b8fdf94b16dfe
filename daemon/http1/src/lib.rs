//! pbx-authd's HTTP/1 connections: hyper's connection code (the request-head parser
//! driver, the dispatch loop, the response encoder) instantiated here, once, for every
//! stream the daemon serves (plain TCP or TLS, behind [`Io`]) and for its one service
//! type ([`Service`]).
//!
//! Why a crate of its own: Cargo sets the opt-level per crate, and generic code is
//! compiled at the level of the crate that instantiates it. hyper is at opt-level 3 in
//! the workspace's profile, but its connection code is generic over the stream and the
//! service, so it was instantiated in the daemon's crate, at "z", twice (plain and TLS).
//! Here it is one copy at 3: fewer instructions per request on the login page and a
//! smaller firmware (figures in docs/performance.md).
//!
//! The daemon's server owns the rest: limits, timeouts, the drain; `api` owns the
//! answers. This crate knows neither.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Every response body: the whole answer in memory.
pub type Body = Full<Bytes>;

/// A stream a connection is served on: TCP, or TLS over TCP. Behind `dyn`, so that
/// hyper's code exists once for both; it costs one indirect call per read and write.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// The answer to one request, as hyper's future: ready at once (nothing built, moved
/// and polled for it), or a handler that awaits (flash, hashing, mail), boxed.
pub enum Answer {
    Ready(Option<Response<Body>>),
    Waiting(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl Answer {
    pub fn ready(response: Response<Body>) -> Self {
        Answer::Ready(Some(response))
    }
}

impl Future for Answer {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Ready(r) => Poll::Ready(Ok(r.take().expect("polled after it was ready"))),
            Answer::Waiting(f) => f.as_mut().poll(cx).map(Ok),
        }
    }
}

/// What answers a connection's requests.
pub struct Service(Box<dyn Fn(Request<Incoming>) -> Answer + Send>);

impl Service {
    pub fn new(f: impl Fn(Request<Incoming>) -> Answer + Send + 'static) -> Self {
        Service(Box::new(f))
    }
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<Incoming>) -> Answer {
        (self.0)(req)
    }
}

/// One connection, served until the client closes it or it is shut down.
pub struct Conn(http1::Connection<TokioIo<Box<dyn Io>>, Service>);

impl Conn {
    pub fn new(builder: &http1::Builder, io: Box<dyn Io>, service: Service) -> Self {
        Conn(builder.serve_connection(TokioIo::new(io), service))
    }

    /// Finish the request in flight (if any), then close.
    pub fn graceful_shutdown(&mut self) {
        Pin::new(&mut self.0).graceful_shutdown();
    }
}

impl Future for Conn {
    type Output = hyper::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::{Answer, Body, Conn, Service};
    use hyper::server::conn::http1;
    use hyper::Response;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Every request's future is moved a few times on its way into hyper: it must stay
    /// the size of one response, not of a state machine holding the request.
    #[test]
    fn the_request_future_stays_small() {
        let n = std::mem::size_of::<Answer>();
        let response = std::mem::size_of::<Response<Body>>();
        assert!(n <= response + 8, "the answer's future is {n} bytes");
    }

    /// Both kinds of answer reach the client, on one keep-alive connection, in order.
    #[tokio::test(flavor = "current_thread")]
    async fn ready_and_waiting_answers_are_sent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("one client");
            let service = Service::new(|req| {
                if req.uri().path() == "/now" {
                    Answer::ready(Response::new(Body::from("now")))
                } else {
                    Answer::Waiting(Box::pin(async {
                        tokio::task::yield_now().await;
                        Response::new(Body::from("later"))
                    }))
                }
            });
            Conn::new(&http1::Builder::new(), Box::new(stream), service).await
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        client
            .write_all(
                b"GET /now HTTP/1.1\r\nHost: a\r\n\r\n\
                  GET /later HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            )
            .await
            .expect("send two requests");
        let mut got = String::new();
        client
            .read_to_string(&mut got)
            .await
            .expect("read both answers");
        let (first, second) = got.split_once("now").expect("the ready answer first");
        assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(second.contains("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(second.ends_with("\r\n\r\nlater"), "{got}");
        assert!(server.await.expect("server task").is_ok());
    }
}
