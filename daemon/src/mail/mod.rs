//! Mail: [`address`] (a recovery address, parsed once), [`message`] (the texts: `Find Password`, the notices, the test mail),
//! [`outbox`] (the queue for the worker and the limits on it) and [`transport`] (SMTP
//! through lettre, or the dev outbox, with failure stages).

pub mod address;
pub mod message;
pub mod outbox;
pub mod transport;
