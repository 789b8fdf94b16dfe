//! What a handler gets: the request ([`Req`]), the connection and the caller the route's
//! access let in ([`Call`]), and what it answers ([`Reply`]). Below the route table, so
//! that the table and the handlers it names both look down at it.

use hyper::body::Incoming;
use hyper::{Request, Response};

use super::guard::Authed;
use super::http::{Body, Ctx};
use crate::error::Error;

/// The request as a handler gets it.
pub type Req = Request<Incoming>;
/// What a handler answers: a response, or an error the router encodes.
pub type Reply = Result<Response<Body>, Error>;

/// What a handler gets besides the app and the request.
pub struct Call {
    pub ctx: Ctx,
    /// The caller the route's access let in (`None` for a public route).
    who: Option<Authed>,
    /// The path's last segment, for a route `Path::Under` a prefix.
    pub tail: String,
}

impl Call {
    pub(super) fn new(ctx: Ctx, who: Option<Authed>, tail: String) -> Call {
        Call { ctx, who, tail }
    }

    /// The signed-in caller; every route whose guard needs a session has one.
    pub fn authed(&self) -> Result<&Authed, Error> {
        self.who.as_ref().ok_or(Error::Unauthenticated)
    }

    /// The TCP peer's address: the only one trusted for limits, audit and the
    /// local-network rule.
    pub fn ip(&self) -> std::net::IpAddr {
        self.ctx.peer.ip()
    }

    /// The signed-in caller, if any (routes with [`super::guard::Guard::Optional`]).
    pub fn who(&self) -> Option<&Authed> {
        self.who.as_ref()
    }
}
