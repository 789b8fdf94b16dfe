//! The API's errors and their one mapping to HTTP: [`Error::status`] and
//! [`Error::code`] are exhaustive matches (no wildcard), so a new variant forces a
//! decision. 5xx bodies never echo internal error text; the detail goes to the log.

use std::time::Duration;

use hyper::StatusCode;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("The request body is not valid JSON for this call: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Send the request body as JSON (Content-Type: application/json).")]
    UnsupportedMediaType,
    #[error("The request body is larger than 16 KiB.")]
    BodyTooLarge,
    #[error("The request body did not arrive in time; the connection is closed.")]
    RequestTimeout,
    #[error("This address is not one this PBX answers to; open it by its IP address or its configured name.")]
    Misdirected,
    #[error("Enter your current password: {0}")]
    CurrentPasswordRequired(&'static str),
    #[error("Enter the SMTP password: the stored one is only sent to the server, user name and security it was saved for.")]
    PasswordRequired,
    #[error("A factory reset is in progress; the device restarts when it is done.")]
    ResetInProgress,
    #[error("Wrong username or password.")]
    InvalidCredentials { attempts_left: Option<u32> },
    #[error("Too many attempts — try again in {} min.", retry_secs(*.retry_after).div_ceil(60))]
    Locked { retry_after: Duration },
    #[error("This account has had {} failed sign-ins in a row, so it now takes sign-ins only from a browser that signed in to it before or from a computer on the PBX's local network. From elsewhere: use the emailed password-reset link or a recovery code from the local network, or the reset button's credential reset at the PBX; a sign-in or recovery through any of them lifts this protection.", crate::auth::lockout::PROTECT_AFTER)]
    AccountProtected,
    #[error("{}", second_factor_locked(*.retry_after, *.account))]
    SecondFactorLocked {
        retry_after: Duration,
        account: bool,
    },
    #[error("Sign in first.")]
    Unauthenticated,
    #[error("The request lacks a valid X-CSRF-Token header; reload the page and try again.")]
    Csrf,
    #[error("Only the administrator can do this.")]
    Forbidden,
    #[error("This account is disabled: the reset button's credential reset at the PBX switched off every admin account but \"admin\". The admin enables it again on the Accounts page.")]
    AccountDisabled,
    #[error("Change the initial password first.")]
    PasswordChangeRequired,
    #[error("Set up two-factor sign-in first (Profile page): this PBX requires it for the admin.")]
    TwoFactorEnrollmentRequired,
    #[error("Enter the 6-digit code from your authenticator app (or a recovery code).")]
    SecondFactorRequired,
    #[error("This account has two-factor sign-in: enter the current 6-digit code from the authenticator app as well. A recovery code stands in for one factor only; with the phone lost too, use the email link or the reset button at the PBX.")]
    TotpRequired,
    /// The box's clock reads below the newest time it has seen: a phone's code cannot be
    /// checked. Never counted as a failed attempt.
    #[error("This PBX's clock reads {}, earlier than {}, the last time it is known to have been right: codes from your phone cannot be checked until the time is set. Use a recovery code, or set the PBX's time (NTP, or the date on the box).", crate::clock::format_utc(*reads), crate::clock::format_utc(*floor))]
    ClockUnset { reads: u64, floor: u64 },
    #[error("Choose a different password.")]
    WeakPassword { reasons: Vec<String> },
    #[error("The device is busy checking other passwords; try again in a moment.")]
    Busy,
    #[error("The device is receiving too many requests at once; try again in a moment.")]
    Overloaded,
    /// Every connection slot is taken (by many addresses at once: an attack, most
    /// likely); a connection past them is answered this unless it carries a session or
    /// a device cookie of this box.
    #[error("The PBX has no free connection for new browsers right now: every one is taken, most likely by an attack from the internet. A browser that has signed in here before and computers on the PBX's own network still get in; otherwise try again in a few seconds.")]
    Crowded,
    #[error("{0}")]
    Degraded(String),
    #[error("Too many requests from this address — try again in {} min.", retry_secs(*.retry_after).div_ceil(60))]
    RateLimited { retry_after: Duration },
    #[error("Password recovery by email is not set up on this PBX. The only way back in is a factory reset with the reset button (hold it 10-30 seconds), which erases all settings and data.")]
    RecoveryNotConfigured,
    #[error("This password-reset link is invalid, expired or already used. Request a new one on the Forgot Password page.")]
    TokenInvalid,
    #[error("This recovery code is not valid or was already used. Check the username and the code (each code works once).")]
    CodeInvalid,
    #[error("Password-reset links and recovery codes only work from a computer on the PBX's local network ({}). Use a computer on that network.", .subnets.join(", "))]
    NotLocal { subnets: Vec<String> },
    #[error("{0}")]
    Conflict(String),
    #[error("No such page or API call.")]
    NotFound,
    #[error("This method is not allowed here.")]
    MethodNotAllowed { allow: String },
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidJson(_)
            | Error::InvalidRequest(_)
            | Error::WeakPassword { .. }
            | Error::PasswordRequired
            | Error::CurrentPasswordRequired(_) => StatusCode::BAD_REQUEST,
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Error::ResetInProgress => StatusCode::SERVICE_UNAVAILABLE,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::InvalidCredentials { .. } | Error::Unauthenticated => StatusCode::UNAUTHORIZED,
            Error::Locked { .. }
            | Error::RateLimited { .. }
            | Error::SecondFactorLocked { .. }
            | Error::AccountProtected => StatusCode::TOO_MANY_REQUESTS,
            Error::RecoveryNotConfigured | Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TokenInvalid | Error::CodeInvalid => StatusCode::GONE,
            Error::NotLocal { .. } => StatusCode::FORBIDDEN,
            Error::Csrf
            | Error::Forbidden
            | Error::AccountDisabled
            | Error::PasswordChangeRequired
            | Error::TwoFactorEnrollmentRequired => StatusCode::FORBIDDEN,
            Error::SecondFactorRequired | Error::TotpRequired => StatusCode::UNAUTHORIZED,
            Error::ClockUnset { .. } => StatusCode::CONFLICT,
            Error::Busy | Error::Overloaded | Error::Crowded | Error::Degraded(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::Storage(e) => match e {
                StoreError::Full => StatusCode::INSUFFICIENT_STORAGE,
                StoreError::Corrupt { .. }
                | StoreError::Io(_)
                | StoreError::NotProvisioned(_)
                | StoreError::AlreadyProvisioned(_)
                | StoreError::Decode { .. }
                | StoreError::NewerFormat { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidJson(_) => "invalid_json",
            Error::InvalidRequest(_) => "invalid_request",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::BodyTooLarge => "body_too_large",
            Error::RequestTimeout => "request_timeout",
            Error::Misdirected => "misdirected",
            Error::PasswordRequired => "password_required",
            Error::CurrentPasswordRequired(_) => "current_password_required",
            Error::ResetInProgress => "factory_reset_in_progress",
            Error::InvalidCredentials { .. } => "invalid_credentials",
            Error::Locked { .. } => "locked",
            Error::AccountProtected => "account_protected",
            Error::SecondFactorLocked { .. } => "second_factor_locked",
            Error::RateLimited { .. } => "rate_limited",
            Error::RecoveryNotConfigured => "recovery_not_configured",
            Error::TokenInvalid => "token_invalid",
            Error::CodeInvalid => "code_invalid",
            Error::NotLocal { .. } => "not_local",
            Error::Conflict(_) => "conflict",
            Error::Unauthenticated => "unauthenticated",
            Error::Csrf => "csrf",
            Error::Forbidden => "forbidden",
            Error::AccountDisabled => "account_disabled",
            Error::PasswordChangeRequired => "password_change_required",
            Error::TwoFactorEnrollmentRequired => "two_factor_enrollment_required",
            Error::SecondFactorRequired | Error::TotpRequired => "two_factor_required",
            Error::ClockUnset { .. } => "clock_unset",
            Error::WeakPassword { .. } => "weak_password",
            Error::Busy | Error::Overloaded | Error::Crowded => "busy",
            Error::Degraded(_) => "degraded",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::Storage(e) => match e {
                StoreError::Full => "storage_full",
                StoreError::Corrupt { .. }
                | StoreError::Io(_)
                | StoreError::NotProvisioned(_)
                | StoreError::AlreadyProvisioned(_)
                | StoreError::Decode { .. }
                | StoreError::NewerFormat { .. } => "storage_error",
            },
            Error::Internal(_) => "internal",
        }
    }

    /// The sentence shown to people; for 5xx a fixed text, never the internal detail.
    pub fn message(&self) -> String {
        match self {
            Error::Storage(StoreError::Full) => {
                "The device's flash is full; the change was not saved.".into()
            }
            Error::Storage(_) => {
                "The change could not be saved to flash; nothing was changed. Try again; if it keeps failing, the device needs service.".into()
            }
            Error::Internal(_) => "Something went wrong inside the device; nothing was changed.".into(),
            other => other.to_string(),
        }
    }

    /// Extra JSON fields and headers a client needs to act on the error.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Locked { retry_after }
            | Error::RateLimited { retry_after }
            | Error::SecondFactorLocked { retry_after, .. } => Some(retry_secs(*retry_after)),
            Error::Busy | Error::Overloaded => Some(1),
            Error::Crowded => Some(2),
            Error::ResetInProgress => Some(60),
            _ => None,
        }
    }

    pub fn is_server_fault(&self) -> bool {
        self.status().is_server_error()
    }
}

fn second_factor_locked(retry_after: Duration, account: bool) -> String {
    let min = retry_secs(retry_after).div_ceil(60);
    if account {
        format!(
            "Too many wrong codes for this account: its two-factor sign-in is locked for \
             {min} min. If those codes were not yours, someone knows the password — \
             change it once you are in. At the PBX, the reset button's credential reset \
             (a 3-8 second press, where it is on) removes two-factor sign-in."
        )
    } else {
        format!("Too many wrong codes from this address — try again in {min} min.")
    }
}

/// Whole seconds to tell a client to wait, rounded up so it never retries too early.
pub fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_seconds_round_up() {
        assert_eq!(retry_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_secs(Duration::from_secs(600)), 600);
    }

    #[test]
    fn server_errors_do_not_echo_internals() {
        let e = Error::Storage(StoreError::Io(std::io::Error::other(
            "/dev/mtd3 EIO secret-path",
        )));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message().contains("secret-path"));
        assert_eq!(
            Error::Storage(StoreError::Full).status(),
            StatusCode::INSUFFICIENT_STORAGE
        );
    }

    #[test]
    fn locked_message_rounds_minutes_up() {
        let e = Error::Locked {
            retry_after: Duration::from_secs(61),
        };
        assert_eq!(e.message(), "Too many attempts — try again in 2 min.");
        assert_eq!(e.retry_after(), Some(61));
    }
}
