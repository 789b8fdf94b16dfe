//! The rules, without HTTP: each flow is a plain function over the [`App`] that takes
//! decoded input and returns a value or an [`Error`]; `api/` decodes before and encodes
//! after, `control.rs` does the same for the control socket. Nothing here imports hyper
//! (`make test` checks).
//!
//! - [`login`]: sign-in, the password check under the brute-force limits (every path
//!   that checks a password uses it), password change.
//! - [`accounts`]: extension accounts. [`profile`]: the recovery email.
//! - [`smtp`]: SMTP settings and the test mail.
//! - [`device`]: the audit trail, the factory reset from the web.
//! - [`gate`]: where each account may sign in from; [`access`]: the trusted networks'
//!   settings, HTTPS-only, the probation of risky changes; [`ticker`]: once a second;
//!   [`installers`]: time-limited installer accounts; [`alerts`]: alert mails.
//! - [`recovery`]: email recovery (readiness, Forgot Password, the reset link, the worker).
//!
//! [`App`]: crate::app::App
//! [`Error`]: crate::error::Error

pub mod access;
pub mod accounts;
pub mod alerts;
pub mod device;
pub mod directory;
pub mod directory_settings;
pub mod gate;
pub mod installers;
pub mod local;
pub mod localnet;
pub mod login;
pub mod profile;
pub mod recovery;
pub mod smtp;
#[cfg(test)]
pub(crate) mod testkit;
pub mod ticker;
pub mod time;
pub mod twofactor;

use crate::app::App;
use crate::auth::Secret;
use crate::error::Error;

/// Checks a new password of `username` against the rules (spec §5) and hashes it off the
/// runtime. "Not the label's initial password" costs one hash and is checked last.
pub async fn hash_new_password(
    app: &App,
    password: Secret,
    username: &str,
) -> Result<String, Error> {
    let mut reasons = crate::auth::policy::check(password.expose(), username, &app.config().policy);
    if reasons.is_empty() {
        if let Some(board) = app.board_info() {
            let is_initial = app
                .hasher()
                .verify(password.clone(), Some(board.initial_password_hash.clone()))
                .await
                .map_err(|_| Error::Busy)?;
            if is_initial {
                reasons.push(crate::auth::policy::label_reused());
            }
        }
    }
    if !reasons.is_empty() {
        return Err(Error::WeakPassword { reasons });
    }
    app.hasher().hash(password).await.map_err(|_| Error::Busy)
}

/// Ends every way `username` is signed in or halfway signed in: its sessions and its
/// pre-sessions (a right password waiting for its code). After a password change, a
/// reset, a temporary password, a second-factor change or a deletion, neither may
/// outlive the credential it was opened with. Returns how many sessions ended.
pub fn end_sign_ins(app: &App, username: &str) -> usize {
    app.presessions().remove_user(username);
    app.sessions().remove_user(username)
}
