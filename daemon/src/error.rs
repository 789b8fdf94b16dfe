//! The API's errors and their one mapping to HTTP: [`Error::status`] and
//! [`Error::code`] are exhaustive matches (no wildcard), so a new variant forces a
//! decision. 5xx bodies never echo internal error text; the detail goes to the log.

use std::time::Duration;

use hyper::StatusCode;

use crate::i18n::{k, Key, Lang, Msg};
use crate::store::StoreError;

#[derive(Debug)]
pub enum Error {
    /// The body is not the JSON this call takes; the parser's detail (technical, English).
    InvalidJson(String),
    InvalidRequest(Msg),
    UnsupportedMediaType,
    BodyTooLarge,
    RequestTimeout,
    Misdirected,
    /// The current password is needed: why, in words.
    CurrentPasswordRequired(Key),
    PasswordRequired,
    ResetInProgress,
    InvalidCredentials {
        attempts_left: Option<u32>,
    },
    Locked {
        retry_after: Duration,
    },
    AccountProtected,
    SecondFactorLocked {
        retry_after: Duration,
        account: bool,
    },
    Unauthenticated,
    Csrf,
    Forbidden,
    AccountDisabled,
    PasswordChangeRequired,
    TwoFactorEnrollmentRequired,
    SecondFactorRequired,
    TotpRequired,
    /// The box's clock reads below the newest time it has seen: a phone's code cannot be
    /// checked. Never counted as a failed attempt.
    ClockUnset {
        reads: u64,
        floor: u64,
    },
    WeakPassword {
        reasons: Vec<Msg>,
    },
    Busy,
    Overloaded,
    /// Every connection slot is taken (by many addresses at once: an attack, most
    /// likely); a connection past them is answered this unless it carries a session or
    /// a device cookie of this box.
    Crowded,
    /// Why the box cannot sign anyone in (technical, English).
    Degraded(String),
    RateLimited {
        retry_after: Duration,
    },
    RecoveryNotConfigured,
    TokenInvalid,
    CodeInvalid,
    NotLocal {
        subnets: Vec<String>,
    },
    Conflict(Msg),
    /// A sign-in or request from outside the trusted networks of the account's role.
    NotTrustedNetwork {
        admin: bool,
        networks: Vec<String>,
        local: bool,
        ip: std::net::IpAddr,
    },
    /// A change on probation confirmed by a session older than the change.
    ConfirmFromNewSession,
    NothingOnProbation,
    /// An installer account whose time is over.
    InstallerExpired,
    /// No directory server answered (or none gave a reply that passed the checks).
    DirectoryUnavailable {
        servers: String,
    },
    /// The directory accepted the password but grants no role on this box.
    DirectoryNoRole,
    /// `access.sign_in = "directory"` and a local account other than the admin at the
    /// box or on its own network.
    DirectoryOnly,
    /// A password confirmation of a directory user that the directory answered with a
    /// challenge (only the sign-in page can take its code).
    DirectoryCodeNeeded,
    /// A directory user's password is the directory's: not changed or recovered here.
    DirectoryPassword,
    NotFound,
    MethodNotAllowed {
        allow: String,
    },
    Storage(StoreError),
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        Error::Storage(e)
    }
}

impl std::error::Error for Error {}

/// In English, for the log: the detail of a storage or internal fault included (it
/// never reaches an answer: [`Error::message`]).
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Storage(e) => write!(f, "storage: {e}"),
            Error::Internal(e) => write!(f, "internal: {e}"),
            other => f.write_str(&other.message(Lang::En)),
        }
    }
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
            Error::NotLocal { .. } | Error::NotTrustedNetwork { .. } => StatusCode::FORBIDDEN,
            Error::ConfirmFromNewSession | Error::NothingOnProbation => StatusCode::CONFLICT,
            Error::InstallerExpired => StatusCode::UNAUTHORIZED,
            Error::DirectoryUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::DirectoryNoRole | Error::DirectoryOnly => StatusCode::FORBIDDEN,
            Error::DirectoryCodeNeeded | Error::DirectoryPassword => StatusCode::CONFLICT,
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
            Error::NotTrustedNetwork { .. } => "not_trusted_network",
            Error::ConfirmFromNewSession => "confirm_from_new_session",
            Error::NothingOnProbation => "nothing_on_probation",
            Error::InstallerExpired => "installer_expired",
            Error::DirectoryUnavailable { .. } => "directory_unavailable",
            Error::DirectoryNoRole => "directory_no_role",
            Error::DirectoryOnly => "directory_only",
            Error::DirectoryCodeNeeded => "directory_code_needed",
            Error::DirectoryPassword => "directory_password",
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

    /// The sentence shown to people, as a catalogue text; for 5xx a fixed text, never
    /// the internal detail.
    pub fn msg(&self) -> Msg {
        let mins = |d: &Duration| retry_secs(*d).div_ceil(60);
        match self {
            Error::InvalidJson(detail) => Msg::new(k::ERR_INVALID_JSON).arg("detail", detail),
            Error::InvalidRequest(m) | Error::Conflict(m) => m.clone(),
            Error::UnsupportedMediaType => Msg::new(k::ERR_UNSUPPORTED_MEDIA_TYPE),
            Error::BodyTooLarge => Msg::new(k::ERR_BODY_TOO_LARGE),
            Error::RequestTimeout => Msg::new(k::ERR_REQUEST_TIMEOUT),
            Error::Misdirected => Msg::new(k::ERR_MISDIRECTED),
            Error::CurrentPasswordRequired(why) => Msg::new(k::ERR_CURRENT_PASSWORD_REQUIRED)
                .arg("why", crate::i18n::t(Lang::En, *why)),
            Error::PasswordRequired => Msg::new(k::ERR_PASSWORD_REQUIRED),
            Error::ResetInProgress => Msg::new(k::ERR_RESET_IN_PROGRESS),
            Error::InvalidCredentials { .. } => Msg::new(k::ERR_INVALID_CREDENTIALS),
            Error::Locked { retry_after } => {
                Msg::new(k::ERR_LOCKED).arg("minutes", mins(retry_after))
            }
            Error::AccountProtected => {
                Msg::new(k::ERR_ACCOUNT_PROTECTED).arg("n", crate::auth::lockout::PROTECT_AFTER)
            }
            Error::SecondFactorLocked {
                retry_after,
                account: true,
            } => Msg::new(k::ERR_SECOND_FACTOR_LOCKED_ACCOUNT).arg("minutes", mins(retry_after)),
            Error::SecondFactorLocked {
                retry_after,
                account: false,
            } => Msg::new(k::ERR_SECOND_FACTOR_LOCKED_ADDRESS).arg("minutes", mins(retry_after)),
            Error::Unauthenticated => Msg::new(k::ERR_UNAUTHENTICATED),
            Error::Csrf => Msg::new(k::ERR_CSRF),
            Error::Forbidden => Msg::new(k::ERR_FORBIDDEN),
            Error::AccountDisabled => Msg::new(k::ERR_ACCOUNT_DISABLED),
            Error::PasswordChangeRequired => Msg::new(k::ERR_PASSWORD_CHANGE_REQUIRED),
            Error::TwoFactorEnrollmentRequired => Msg::new(k::ERR_TWO_FACTOR_ENROLLMENT_REQUIRED),
            Error::SecondFactorRequired => Msg::new(k::ERR_SECOND_FACTOR_REQUIRED),
            Error::TotpRequired => Msg::new(k::ERR_TOTP_REQUIRED),
            Error::ClockUnset { reads, floor } => Msg::new(k::ERR_CLOCK_UNSET)
                .arg("reads", crate::clock::format_utc(*reads))
                .arg("floor", crate::clock::format_utc(*floor)),
            Error::WeakPassword { .. } => Msg::new(k::ERR_WEAK_PASSWORD),
            Error::Busy => Msg::new(k::ERR_BUSY),
            Error::Overloaded => Msg::new(k::ERR_OVERLOADED),
            Error::Crowded => Msg::new(k::ERR_CROWDED),
            Error::Degraded(why) => Msg::new(k::ERR_DEGRADED).arg("why", why),
            Error::RateLimited { retry_after } => {
                Msg::new(k::ERR_RATE_LIMITED).arg("minutes", mins(retry_after))
            }
            Error::RecoveryNotConfigured => Msg::new(k::ERR_RECOVERY_NOT_CONFIGURED),
            Error::TokenInvalid => Msg::new(k::ERR_TOKEN_INVALID),
            Error::CodeInvalid => Msg::new(k::ERR_CODE_INVALID),
            Error::NotLocal { subnets } => {
                Msg::new(k::ERR_NOT_LOCAL).arg("subnets", subnets.join(", "))
            }
            Error::NotTrustedNetwork {
                admin,
                networks,
                ip,
                ..
            } => Msg::new(if *admin {
                k::ERR_NOT_TRUSTED_NETWORK_ADMIN
            } else {
                k::ERR_NOT_TRUSTED_NETWORK_USER
            })
            .arg("networks", networks.join(", "))
            .arg("ip", ip),
            Error::ConfirmFromNewSession => Msg::new(k::ERR_CONFIRM_FROM_NEW_SESSION),
            Error::NothingOnProbation => Msg::new(k::ERR_NOTHING_ON_PROBATION),
            Error::InstallerExpired => Msg::new(k::ERR_INSTALLER_EXPIRED),
            Error::DirectoryUnavailable { servers } => {
                Msg::new(k::ERR_DIRECTORY_UNAVAILABLE).arg("server", servers)
            }
            Error::DirectoryNoRole => Msg::new(k::ERR_DIRECTORY_NO_ROLE),
            Error::DirectoryOnly => Msg::new(k::ERR_DIRECTORY_ONLY),
            Error::DirectoryCodeNeeded => Msg::new(k::ERR_DIRECTORY_CODE_NEEDED),
            Error::DirectoryPassword => Msg::new(k::ERR_DIRECTORY_PASSWORD),
            Error::NotFound => Msg::new(k::ERR_NOT_FOUND),
            Error::MethodNotAllowed { .. } => Msg::new(k::ERR_METHOD_NOT_ALLOWED),
            Error::Storage(StoreError::Full) => Msg::new(k::ERR_STORAGE_FULL),
            Error::Storage(_) => Msg::new(k::ERR_STORAGE),
            Error::Internal(_) => Msg::new(k::ERR_INTERNAL),
        }
    }

    /// [`Error::msg`] in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        match self {
            // The reason is a text of its own, in the same language.
            Error::CurrentPasswordRequired(why) => Msg::new(k::ERR_CURRENT_PASSWORD_REQUIRED)
                .arg("why", crate::i18n::t(lang, *why))
                .text(lang),
            // "this PBX's own network" in the same language, before the subnets.
            Error::NotTrustedNetwork {
                local: true,
                networks,
                ..
            } => {
                let mut m = self.msg();
                let own = crate::i18n::t(lang, k::MSG_NET_LOCAL).to_string();
                let all = std::iter::once(own).chain(networks.iter().cloned());
                m.args[0].1 = all.collect::<Vec<_>>().join(", ");
                m.text(lang)
            }
            other => other.msg().text(lang),
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
        assert!(!e.message(Lang::En).contains("secret-path"));
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
        assert_eq!(
            e.message(Lang::En),
            "Too many attempts — try again in 2 min."
        );
        assert_eq!(e.retry_after(), Some(61));
    }
}
