//! Outgoing mail: [`message`] (the texts: `Find Password`, the notices, the test mail)
//! and [`transport`] (SMTP through lettre, or the dev outbox, with failure stages).

pub mod message;
pub mod transport;
