//! The domain: what an account, a reset token, an audit event and the factory data are.
//! Plain data with their invariants; stored by [`crate::store`], shown by the API.

use std::fmt;

use pbx_board::BoardProfile;
use serde::{Deserialize, Serialize};

/// Factory data of the board.
#[derive(Clone, PartialEq, Eq)]
pub struct BoardInfo {
    pub model: String,
    pub serial: String,
    pub mac: String,
    /// Argon2id PHC string of the password printed on the label.
    pub initial_password_hash: String,
    pub hw: BoardProfile,
}

impl fmt::Debug for BoardInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoardInfo")
            .field("model", &self.model)
            .field("serial", &self.serial)
            .field("mac", &self.mac)
            .field("hw", &self.hw)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub username: String,
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub email: Option<String>,
    pub must_change_password: bool,
    pub created_at: u64,
    pub password_changed_at: u64,
    /// SHA-256 (hex) of each unused offline recovery code; never the codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery_codes: Vec<String>,
    /// When the bound email was last proven (its confirmation link opened); `None`:
    /// unconfirmed. Cleared when the address changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_confirmed_at: Option<u64>,
    /// When the current email was bound (the start of "unconfirmed for N days").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_bound_at: Option<u64>,
    /// The confirmation link last mailed to the bound address, as its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_check: Option<EmailCheck>,
    /// Two-factor sign-in (TOTP): being set up, or on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<Totp>,
    /// Signed into every device cookie; a new one voids them all (see
    /// [`Account::new_device_generation`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub device_gen: u32,
    /// The ids of the live device cookies, oldest first (at most
    /// [`crate::auth::device::PER_ACCOUNT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Set on every admin-role account but `admin` by the button's credential reset:
    /// no sign-in until `admin` enables it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// The language the account chose for its pages and mails (a BCP 47 tag, kept as
    /// text so that a tag another firmware knows never makes the account unreadable);
    /// `None`: the box's `i18n.default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// An installer's account: until when, who issued it, where from (spec §10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installer: Option<Installer>,
    /// The alert kinds this account turned off (their names, see [`AlertKind`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts_off: Vec<String>,
    /// A directory user's record (spec §11): the server that last admitted it, e.g.
    /// `RADIUS 10.0.0.5:1812`. Its password is the directory's: none is stored here,
    /// and no local way (a recovery code, a reset link) signs it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

/// What makes an account an installer's: it ends by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installer {
    /// Unix seconds: its sessions end and the account is removed then.
    pub until: u64,
    /// The owner who issued it (mailed at each of its sign-ins).
    pub by: String,
    /// Where it may sign in from besides its role's networks (empty: those only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
}

/// The access settings as the admin edits them on the page (and as stored, as text so
/// that an entry another firmware knows never makes the record unreadable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessSettings {
    pub admin_networks: Vec<String>,
    pub user_networks: Vec<String>,
    pub https_only: bool,
    pub require_2fa_for_admin: bool,
    /// `local+directory` or `directory` (spec §11); another firmware's word reads as the
    /// first, which locks no one out.
    #[serde(default = "sign_in_default")]
    pub sign_in: String,
}

fn sign_in_default() -> String {
    sign_in_text(false).into()
}

/// `access.sign_in` as written: `directory` when only directory users may sign in.
pub fn sign_in_text(directory_only: bool) -> &'static str {
    if directory_only {
        "directory"
    } else {
        "local+directory"
    }
}

/// Fleet sign-in (spec §11) as the config file's `[directory]` or the Directory page
/// give it (the page's, saved in the data DB, win). A certificate or key is the PEM text
/// itself or, from the config file, the path of a file holding it; empty: none.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectorySettings {
    /// Per try of one server.
    pub timeout_s: u64,
    /// Tries after the first, per server (RADIUS over UDP).
    pub retries: u64,
    /// The reply attribute (`Class`, `Filter-Id` or a number) that grants the admin
    /// role when it has `radius_admin_value`.
    pub radius_admin_attribute: String,
    pub radius_admin_value: String,
    /// Unset: every other accepted user is a user; set: only those with this value of
    /// the same attribute, the rest are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius_user_value: Option<String>,
    /// Asked in this order, the second only when the first does not answer.
    #[serde(default)]
    pub radius: Vec<RadiusSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapSettings>,
}

impl Default for DirectorySettings {
    fn default() -> Self {
        DirectorySettings {
            timeout_s: 3,
            retries: 1,
            radius_admin_attribute: "Class".into(),
            radius_admin_value: "pbx-admin".into(),
            radius_user_value: None,
            radius: Vec::new(),
            ldap: None,
        }
    }
}

/// One RADIUS server.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadiusSettings {
    /// `IP:PORT` (UDP) or `radsec://HOST:PORT` (TLS, RFC 6614).
    pub address: String,
    pub secret: String,
    /// RadSec: the CA that signed the server's certificate.
    #[serde(default)]
    pub ca: String,
    /// RadSec: the box's own certificate and key, for a server that asks for one.
    #[serde(default)]
    pub client_cert: String,
    #[serde(default)]
    pub client_key: String,
}

/// The LDAP directory: search-then-bind.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapSettings {
    /// `ldaps://HOST:PORT` or `ldap://HOST:PORT?starttls`.
    pub url: String,
    pub ca: String,
    pub bind_dn: String,
    pub bind_password: String,
    pub base_dn: String,
    /// `{username}` is replaced by the typed name, escaped (RFC 4515).
    pub user_filter: String,
    pub admin_group: String,
    /// Unset: every other user found is a user; set: only members of this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_group: Option<String>,
}

// Never the secrets.
impl fmt::Debug for DirectorySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectorySettings")
            .field(
                "radius",
                &self.radius.iter().map(|r| &r.address).collect::<Vec<_>>(),
            )
            .field("ldap", &self.ldap.as_ref().map(|l| &l.url))
            .finish_non_exhaustive()
    }
}

/// A change that can lock the admin out, applied and waiting for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probation {
    /// Unix seconds: it reverts then unless confirmed.
    pub reverts_at: u64,
    /// The settings it reverts to (the last confirmed ones).
    pub previous: AccessSettings,
    /// The names of the settings that changed.
    pub changes: Vec<String>,
    /// Who made it.
    pub by: String,
}

/// The `access` setting: the admin's settings (absent: the config's) and the change on
/// probation, written together in one flushed write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    pub settings: AccessSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probation: Option<Probation>,
}

/// The alerts mailed to the admins (spec §10), each also an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    NewDevice,
    AddressBlocked,
    AccountCap,
    FactorLocked,
    TwoFactorOff,
    CodesRegenerated,
    CredentialsReset,
    FactoryResetRequested,
    SmtpChanged,
    AdminCreated,
    ProbationReverted,
    InstallerSignIn,
}

impl AlertKind {
    pub const ALL: [AlertKind; 12] = [
        AlertKind::NewDevice,
        AlertKind::AddressBlocked,
        AlertKind::AccountCap,
        AlertKind::FactorLocked,
        AlertKind::TwoFactorOff,
        AlertKind::CodesRegenerated,
        AlertKind::CredentialsReset,
        AlertKind::FactoryResetRequested,
        AlertKind::SmtpChanged,
        AlertKind::AdminCreated,
        AlertKind::ProbationReverted,
        AlertKind::InstallerSignIn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AlertKind::NewDevice => "new_device",
            AlertKind::AddressBlocked => "address_blocked",
            AlertKind::AccountCap => "account_cap",
            AlertKind::FactorLocked => "factor_locked",
            AlertKind::TwoFactorOff => "two_factor_off",
            AlertKind::CodesRegenerated => "codes_regenerated",
            AlertKind::CredentialsReset => "credentials_reset",
            AlertKind::FactoryResetRequested => "factory_reset_requested",
            AlertKind::SmtpChanged => "smtp_changed",
            AlertKind::AdminCreated => "admin_created",
            AlertKind::ProbationReverted => "probation_reverted",
            AlertKind::InstallerSignIn => "installer_sign_in",
        }
    }

    /// The first seven may be turned off on the profile; the rest always come (what
    /// they tell cannot be waved away: someone reached the owner's settings).
    pub fn optional(self) -> bool {
        matches!(
            self,
            AlertKind::NewDevice
                | AlertKind::AddressBlocked
                | AlertKind::AccountCap
                | AlertKind::FactorLocked
                | AlertKind::TwoFactorOff
                | AlertKind::CodesRegenerated
                | AlertKind::CredentialsReset
        )
    }

    pub fn from_name(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl Account {
    /// The language of the account's mails: its choice, else the box's default.
    pub fn mail_lang(&self, default: crate::i18n::Lang) -> crate::i18n::Lang {
        self.language
            .as_deref()
            .and_then(crate::i18n::Lang::from_tag)
            .filter(|l| l.shipped())
            .unwrap_or(default)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An account's TOTP secret (base32, as the authenticator app has it) and the last step
/// a code was accepted for (a step is never accepted twice).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totp {
    pub secret: String,
    /// False while set up but not yet confirmed with a first code.
    pub enabled: bool,
    #[serde(default)]
    pub last_step: Option<u64>,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// A new account with a password its owner replaces at the first sign-in.
    pub fn fresh(
        username: String,
        role: Role,
        password_hash: String,
        email: Option<String>,
        now: u64,
    ) -> Account {
        Account {
            username,
            role,
            password_hash,
            email_bound_at: email.as_ref().map(|_| now),
            email,
            // The admin chose this password; its owner replaces it at first sign-in.
            must_change_password: true,
            created_at: now,
            password_changed_at: now,
            recovery_codes: Vec::new(),
            email_confirmed_at: None,
            email_check: None,
            totp: None,
            device_gen: 0,
            devices: Vec::new(),
            disabled: false,
            language: None,
            installer: None,
            alerts_off: Vec::new(),
            directory: None,
        }
    }

    /// Whether sign-in asks for a second factor.
    pub fn two_factor(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.enabled)
    }
}

/// An outstanding confirmation link of a recovery email: SHA-256 (hex) of its token and
/// when it lapses. A newer link replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailCheck {
    pub digest: String,
    pub expires_at: u64,
    /// When its link was opened: kept so that a second click says "already confirmed"
    /// (until a newer link or another address replaces it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<u64>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

pub const ADMIN: &str = "admin";

/// What a 3-8 s press of the reset button does (`recovery.button`, spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonMode {
    /// The admin account goes back to the label password; all data is kept.
    Credentials,
    /// A reset link is mailed to the admin's bound address.
    Mail,
    /// Nothing: only the 10-30 s factory reset remains.
    Off,
}

impl ButtonMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ButtonMode::Credentials => "credentials",
            ButtonMode::Mail => "mail",
            ButtonMode::Off => "off",
        }
    }
}

/// A change of the [`ButtonMode`] that waits for its press at the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingMode {
    pub mode: ButtonMode,
    /// Monotonic time (the app's clock) after which it lapses.
    pub until: std::time::Duration,
}

impl std::str::FromStr for ButtonMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "credentials" => Ok(ButtonMode::Credentials),
            "mail" => Ok(ButtonMode::Mail),
            "off" => Ok(ButtonMode::Off),
            _ => Err(()),
        }
    }
}

/// One audit event (`GET /api/v1/audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: u64,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Stamped while the clock was unset: `at` is the floor, not a reading.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clock_unset: bool,
}

/// What an audit event records. Its [`name`](AuditKind::name) is what the trail stores,
/// exports and sends to syslog (stable: stores of older firmware hold it), and its
/// [`severity`](AuditKind::severity) what syslog and alerts make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    Login,
    LoginFailed,
    LoginLocked,
    AccountProtected,
    AuditOverflow,
    PasswordChanged,
    PasswordReset,
    ForgotRequest,
    RecoveryPress,
    CredentialsReset,
    AdminsDisabled,
    RecoveryCodesGenerated,
    RecoveryEmailChanged,
    RecoveryEmailConfirmed,
    RecoveryEmailStale,
    RecoveryCheckFailed,
    TwoFactorEnabled,
    TwoFactorDisabled,
    TwoFactorFailed,
    TwoFactorLocked,
    AccountCreated,
    AccountDeleted,
    AccountEmailChanged,
    AccountDisabled,
    AccountEnabled,
    TemporaryPasswordSet,
    SessionRevoked,
    SmtpSettingsSaved,
    SmtpSettingsChanged,
    SmtpTestSent,
    ButtonModeRequested,
    ButtonModeChanged,
    ButtonModeCancelled,
    FactoryReset,
    FactoryResetFailed,
    LoginUntrusted,
    AccessChanged,
    DirectoryChanged,
    AccessConfirmed,
    AccessReverted,
    InstallerCreated,
    InstallerEnded,
    AlertsHeld,
}

/// How much an audit event matters to whoever watches the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Normal use: sign-ins, changes by their owner.
    Notice,
    /// Failures and blocks: guessing, a lock, a way back in that stopped working.
    Warning,
}

impl AuditKind {
    pub const ALL: [AuditKind; 43] = [
        AuditKind::Login,
        AuditKind::LoginFailed,
        AuditKind::LoginLocked,
        AuditKind::AccountProtected,
        AuditKind::AuditOverflow,
        AuditKind::PasswordChanged,
        AuditKind::PasswordReset,
        AuditKind::ForgotRequest,
        AuditKind::RecoveryPress,
        AuditKind::CredentialsReset,
        AuditKind::AdminsDisabled,
        AuditKind::RecoveryCodesGenerated,
        AuditKind::RecoveryEmailChanged,
        AuditKind::RecoveryEmailConfirmed,
        AuditKind::RecoveryEmailStale,
        AuditKind::RecoveryCheckFailed,
        AuditKind::TwoFactorEnabled,
        AuditKind::TwoFactorDisabled,
        AuditKind::TwoFactorFailed,
        AuditKind::TwoFactorLocked,
        AuditKind::AccountCreated,
        AuditKind::AccountDeleted,
        AuditKind::AccountEmailChanged,
        AuditKind::AccountDisabled,
        AuditKind::AccountEnabled,
        AuditKind::TemporaryPasswordSet,
        AuditKind::SessionRevoked,
        AuditKind::SmtpSettingsSaved,
        AuditKind::SmtpSettingsChanged,
        AuditKind::SmtpTestSent,
        AuditKind::ButtonModeRequested,
        AuditKind::ButtonModeChanged,
        AuditKind::ButtonModeCancelled,
        AuditKind::FactoryReset,
        AuditKind::FactoryResetFailed,
        AuditKind::LoginUntrusted,
        AuditKind::AccessChanged,
        AuditKind::DirectoryChanged,
        AuditKind::AccessConfirmed,
        AuditKind::AccessReverted,
        AuditKind::InstallerCreated,
        AuditKind::InstallerEnded,
        AuditKind::AlertsHeld,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AuditKind::Login => "login",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::LoginLocked => "login_locked",
            AuditKind::AccountProtected => "account_protected",
            AuditKind::AuditOverflow => "audit_overflow",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::PasswordReset => "password_reset",
            AuditKind::ForgotRequest => "forgot_request",
            AuditKind::RecoveryPress => "recovery_press",
            AuditKind::CredentialsReset => "credentials_reset",
            AuditKind::AdminsDisabled => "admins_disabled",
            AuditKind::RecoveryCodesGenerated => "recovery_codes_generated",
            AuditKind::RecoveryEmailChanged => "recovery_email_changed",
            AuditKind::RecoveryEmailConfirmed => "recovery_email_confirmed",
            AuditKind::RecoveryEmailStale => "recovery_email_stale",
            AuditKind::RecoveryCheckFailed => "recovery_check_failed",
            AuditKind::TwoFactorEnabled => "two_factor_enabled",
            AuditKind::TwoFactorDisabled => "two_factor_disabled",
            AuditKind::TwoFactorFailed => "two_factor_failed",
            AuditKind::TwoFactorLocked => "two_factor_locked",
            AuditKind::AccountCreated => "account_created",
            AuditKind::AccountDeleted => "account_deleted",
            AuditKind::AccountEmailChanged => "account_email_changed",
            AuditKind::AccountDisabled => "account_disabled",
            AuditKind::AccountEnabled => "account_enabled",
            AuditKind::TemporaryPasswordSet => "temporary_password_set",
            AuditKind::SessionRevoked => "session_revoked",
            AuditKind::SmtpSettingsSaved => "smtp_settings_saved",
            AuditKind::SmtpSettingsChanged => "smtp_settings_changed",
            AuditKind::SmtpTestSent => "smtp_test_sent",
            AuditKind::ButtonModeRequested => "button_mode_requested",
            AuditKind::ButtonModeChanged => "button_mode_changed",
            AuditKind::ButtonModeCancelled => "button_mode_cancelled",
            AuditKind::FactoryReset => "factory_reset",
            AuditKind::FactoryResetFailed => "factory_reset_failed",
            AuditKind::LoginUntrusted => "login_untrusted",
            AuditKind::AccessChanged => "access_changed",
            AuditKind::DirectoryChanged => "directory_changed",
            AuditKind::AccessConfirmed => "access_confirmed",
            AuditKind::AccessReverted => "access_reverted",
            AuditKind::InstallerCreated => "installer_created",
            AuditKind::InstallerEnded => "installer_ended",
            AuditKind::AlertsHeld => "alerts_held",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            AuditKind::LoginFailed
            | AuditKind::LoginLocked
            | AuditKind::AccountProtected
            | AuditKind::RecoveryEmailStale
            | AuditKind::RecoveryCheckFailed
            | AuditKind::TwoFactorFailed
            | AuditKind::TwoFactorLocked
            | AuditKind::FactoryResetFailed
            | AuditKind::LoginUntrusted
            | AuditKind::AccessReverted
            | AuditKind::AlertsHeld => Severity::Warning,
            _ => Severity::Notice,
        }
    }

    /// The kind of a stored event's name (`None` for a name this firmware does not know).
    pub fn from_name(name: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The clock's floor as stored: the newest time this box has seen (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClockFloor(pub u64);

/// A password-reset token as stored: only its hash is the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetToken {
    pub username: String,
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
    pub issued_ip: String,
    pub issued_at: u64,
}

impl Account {
    /// A new password is in force: its hash, no forced change, the time it was set.
    /// The one place these three fields change together (password change, reset link).
    pub fn apply_new_password(&mut self, hash: &str, now: u64) {
        self.password_hash = hash.to_string();
        self.must_change_password = false;
        self.password_changed_at = now;
        self.new_device_generation();
    }

    /// Voids every device cookie of the account: after a password change, a reset, a
    /// code recovery or a change of the second factor, no browser counts as known.
    pub fn new_device_generation(&mut self) {
        self.device_gen = self.device_gen.wrapping_add(1);
        self.devices.clear();
    }
}

/// Whether the daemon can sign people in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    Degraded(Reason),
}

/// Where the device is in its life: one state, changed only through [`crate::app::App`].
///
/// `Serving` → `Resetting` (an erase started: the API answers 503 until the reboot) →
/// reboot, or `Degraded(ResetFailed)` when the user data could not be erased. A start
/// on flash that cannot be trusted begins `Degraded`; a factory reset is the way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    Serving,
    Resetting,
    Degraded(Reason),
}

/// Why the daemon cannot sign people in. Each says what to do, in words for the admin
/// (shown by `/healthz`, the UI and `ctl status`); code tells them apart by variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No factory data: the box never went through `provision`.
    NotProvisioned(String),
    /// The factory data cannot be read.
    FactoryDataUnreadable(String),
    /// The user data cannot be read (damaged flash): a factory reset restores access.
    DataUnreadable(String),
    /// The first boot could not create the admin account.
    AdminNotCreated(String),
    /// The flash is too full to open the user data: free space (a reset would not help).
    FlashFull,
    /// A factory reset could not erase the user data (the marker stays).
    ResetFailed(String),
    /// The user data was written by a newer firmware (after a rollback): kept as it is.
    NewerFormat(String),
}

/// What to tell the admin when the data DB cannot be used.
const DATA_DAMAGED_HINT: &str = "sign-in is disabled to protect the device; a factory reset \
(hold the reset button 10-30 s) erases the damaged user data and restores access with the \
password on the device label";

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotProvisioned(e) => write!(f, "{e}; run `pbx-authd provision` at the factory"),
            Reason::FactoryDataUnreadable(e) => {
                write!(f, "factory data unreadable ({e}); the device needs service")
            }
            Reason::DataUnreadable(e) => {
                write!(f, "user data unreadable ({e}); {DATA_DAMAGED_HINT}")
            }
            Reason::AdminNotCreated(e) => {
                write!(
                    f,
                    "cannot create the admin account ({e}); {DATA_DAMAGED_HINT}"
                )
            }
            Reason::FlashFull => f.write_str(
                "the flash is full, so the user data cannot be opened; free space on it (old \
                 recordings, logs), then restart pbx-authd",
            ),
            Reason::ResetFailed(why) => f.write_str(why),
            Reason::NewerFormat(e) => write!(
                f,
                "the user data was {e}: install that firmware again (or a newer one). Sign-in \
                 is off and no record is written, so that firmware finds everything as it was; a \
                 factory reset would erase it"
            ),
        }
    }
}
