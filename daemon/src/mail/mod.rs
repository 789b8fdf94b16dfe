//! Mail: [`address`] (a recovery address, parsed once), [`message`] (the texts: `Find Password`, the notices, the test mail)
//! and [`transport`] (SMTP through lettre, or the dev outbox, with failure stages).

pub mod address;
pub mod message;
pub mod transport;
