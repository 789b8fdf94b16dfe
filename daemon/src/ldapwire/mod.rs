//! The LDAP wire syntax, pure (no I/O, no state): the BER shapes of RFC 4511 ([`ber`])
//! and the search filters of RFC 4515 ([`filter`]). A leaf: the config checks a filter
//! with it, the directory client speaks with it.

pub mod ber;
pub mod filter;
