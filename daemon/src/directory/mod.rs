//! Sign-in from the company's directory (spec §11), the protocols:
//! - [`radius`]: the RADIUS packet codec (RFC 2865 Access-Request / -Accept / -Reject /
//!   -Challenge) with the Message-Authenticator of RFC 3579 first in every request and
//!   required in every reply, and [`radius::ask`]: timeout, retries, failover.
//! - [`radsec`]: the same over TLS (RFC 6614).
//! - [`ldap`]: search-then-bind over LDAPS or StartTLS, on [`crate::ldapwire`].
//!
//! Sign-in asks them through [`crate::flows::directory`].

pub mod ldap;
pub mod radius;
pub mod radsec;
