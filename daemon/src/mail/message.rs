//! The texts of the recovery mails: subject `Find Password` with the reset link, and the
//! "Your password was changed" notice.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::Message;

/// What the "Find Password" mail says.
pub struct FindPassword<'a> {
    pub username: &'a str,
    pub device: &'a str,
    pub link: &'a str,
    pub expires_at: u64,
    pub ttl_min: u64,
    pub requested_from: &'a str,
    /// Cloud PBX: the link opens from anywhere, so no local-network note.
    pub cloud: bool,
}

pub const FIND_PASSWORD_SUBJECT: &str = "Find Password";
pub const CHANGED_SUBJECT: &str = "Your password was changed";
pub const TEST_SUBJECT: &str = "PBX test mail";
pub const EMAIL_CHANGED_SUBJECT: &str = "Recovery email changed";
pub const CONFIRM_SUBJECT: &str = "Confirm your recovery email";
pub const DRILL_SUBJECT: &str = "Recovery check";
pub const CREDENTIALS_RESET_SUBJECT: &str = "Admin password reset with the reset button";
pub const FACTOR_LOCKED_SUBJECT: &str = "Two-factor sign-in locked";
pub const SMTP_CHANGED_SUBJECT: &str = "Email settings changed";
pub const ADMIN_CREATED_SUBJECT: &str = "Admin account created";

pub fn build(from: &Mailbox, to: &Mailbox, subject: &str, text: String) -> Result<Message, String> {
    // 7bit keeps the reset link byte-for-byte in the mail; quoted-printable would turn
    // `token=` into `token=3D` and break a long link across lines. lettre only picks 7bit
    // for lines of at most 76 characters, a link on a LAN address is longer; RFC 5322
    // allows 998, so the body is pre-encoded here when it is ASCII within that limit.
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let body = if crlf.is_ascii() && crlf.split("\r\n").all(|l| l.len() <= 998) {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text)
    };
    Message::builder()
        .from(from.clone())
        .to(to.clone())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| e.to_string())
}

pub fn find_password(
    from: &Mailbox,
    to: &Mailbox,
    m: &FindPassword<'_>,
) -> Result<Message, String> {
    let local = if m.cloud {
        String::new()
    } else {
        "The link only opens from a computer on the PBX's local network (the office LAN \
         the PBX is connected to), not from outside.\n\n"
            .to_string()
    };
    let body = format!(
        "Hello {user},\n\n\
         someone asked to reset the password of the account \"{user}\" on {device}.\n\n\
         To choose a new password, open this link:\n\n{link}\n\n\
         The link works once and expires at {expiry} ({ttl} minutes after the request).\n\
         {local}\
         The request came from the address {ip}.\n\
         If you did not ask for this, ignore this mail: your password stays unchanged.\n",
        user = m.username,
        device = m.device,
        link = m.link,
        expiry = format_utc(m.expires_at),
        ttl = m.ttl_min,
        ip = m.requested_from,
    );
    build(from, to, FIND_PASSWORD_SUBJECT, body)
}

pub fn password_changed(
    from: &Mailbox,
    to: &Mailbox,
    username: &str,
    device: &str,
    at: u64,
    ip: &str,
    how: &str,
) -> Result<Message, String> {
    let body = format!(
        "Hello {username},\n\n\
         the password of the account \"{username}\" on {device} was changed at {when} \
         with {how}, from the address {ip}. All sessions of the account \
         were signed out.\n\n\
         If this was not you, someone else has set a new password for your account: \
         contact your PBX administrator at once.\n",
        when = format_utc(at),
    );
    build(from, to, CHANGED_SUBJECT, body)
}

/// The notice to the *old* recovery address when it is changed or removed.
pub fn email_changed(
    from: &Mailbox,
    to: &Mailbox,
    username: &str,
    device: &str,
    new: Option<&str>,
    at: u64,
    ip: &str,
) -> Result<Message, String> {
    let what = match new {
        Some(n) => format!("changed from this address to {n}"),
        None => "removed (no address is bound now)".to_string(),
    };
    let body = format!(
        "Hello {username},\n\n\
         the recovery email of the account \"{username}\" on {device} was {what} at \
         {when}, from the address {ip}. Password-reset links now go to the new address \
         only; links sent here before no longer work.\n\n\
         If this was not you, someone else has signed in to your account: contact your \
         PBX administrator at once.\n",
        when = format_utc(at),
    );
    build(from, to, EMAIL_CHANGED_SUBJECT, body)
}

/// What a confirmation mail of a recovery address says.
pub struct EmailCheckText<'a> {
    pub username: &'a str,
    pub device: &'a str,
    pub link: &'a str,
    pub expires_at: u64,
    /// The periodic "Recovery check" rather than the one after binding the address.
    pub drill: bool,
}

/// "Confirm your recovery email" / "Recovery check": a link that proves the address
/// receives the PBX's mail. Opening it changes nothing else.
pub fn email_check(
    from: &Mailbox,
    to: &Mailbox,
    m: &EmailCheckText<'_>,
) -> Result<Message, String> {
    let why = if m.drill {
        "This is the regular recovery check: the PBX makes sure that password-reset mail \
         still reaches you."
    } else {
        "This address was just bound as the recovery email of the account."
    };
    let body = format!(
        "Hello {user},\n\n         {why} To confirm that mail from {device} arrives here, open this link:\n\n{link}\n\n         The link works once until {expiry}. It only confirms this address; it does not sign \
         you in or change anything else.\n         If the PBX does not hear back, its dashboard will warn that recovery by email may \
         not work.\n",
        user = m.username,
        device = m.device,
        link = m.link,
        expiry = format_utc(m.expires_at),
    );
    build(
        from,
        to,
        if m.drill {
            DRILL_SUBJECT
        } else {
            CONFIRM_SUBJECT
        },
        body,
    )
}

/// The notice to the admin's address after the button's credential-only reset.
pub fn credentials_reset(
    from: &Mailbox,
    to: &Mailbox,
    device: &str,
    at: u64,
) -> Result<Message, String> {
    let body = format!(
        "Hello admin,

         the admin password of {device} was reset with the reset button at {when}.          Data was kept: extensions, settings and recordings are unchanged. The admin          account now signs in with the password printed on the PBX's label and must          choose a new one; every admin session was signed out.

         If this was not you, someone had their hands on the PBX: sign in with the label          password, choose a new password, and check who can reach the device.
",
        when = format_utc(at),
    );
    build(from, to, CREDENTIALS_RESET_SUBJECT, body)
}

/// The notice to the admin that another account with the admin role exists now.
pub fn admin_created(
    from: &Mailbox,
    to: &Mailbox,
    device: &str,
    username: &str,
    by: &str,
    at: u64,
    ip: &str,
) -> Result<Message, String> {
    let body = format!(
        "Hello admin,\n\n\
         at {when} the account \"{by}\" created the account \"{username}\" with the \
         admin role on {device}, from the address {ip}. It can do everything the admin \
         can.\n\n\
         If this was not you, sign in and delete it on the Accounts page, or press the \
         reset button of the PBX for 3-8 seconds: that resets the admin password and \
         disables every other admin account.\n",
        when = format_utc(at),
    );
    build(from, to, ADMIN_CREATED_SUBJECT, body)
}

/// The notice, sent the old way, that the PBX's mail now goes through another server.
pub fn smtp_changed(
    from: &Mailbox,
    to: &Mailbox,
    device: &str,
    by: &str,
    at: u64,
    ip: &str,
    route: &str,
) -> Result<Message, String> {
    let body = format!(
        "Hello admin,\n\n\
         at {when} the account \"{by}\" changed the email settings of {device} from the \
         address {ip}: password-reset links and notices now go through {route}.\n\n\
         If this was not you, someone can reroute your recovery mail: sign in, check the \
         Email settings page, change your password, and end the other sessions.\n",
        when = format_utc(at),
    );
    build(from, to, SMTP_CHANGED_SUBJECT, body)
}

/// The notice to an account's confirmed address when wrong codes locked its second
/// factor: whoever sent them had the password.
pub fn factor_locked(
    from: &Mailbox,
    to: &Mailbox,
    username: &str,
    device: &str,
    at: u64,
    ip: &str,
    minutes: u64,
) -> Result<Message, String> {
    let body = format!(
        "Hello {username},\n\n\
         at {when} the right password of the account \"{username}\" on {device} was \
         entered, followed by wrong two-factor codes, the last from the address {ip}. \
         Two-factor sign-in of the account is locked for {minutes} minutes.\n\n\
         If this was not you, someone knows your password: sign in once the lock is \
         over and choose a new password (Profile page), or ask your PBX administrator.\n",
        when = format_utc(at),
    );
    build(from, to, FACTOR_LOCKED_SUBJECT, body)
}

pub use crate::clock::format_utc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_utc(1_795_717_800), "2026-11-26 18:30 UTC");
    }

    #[test]
    fn find_password_mail_has_subject_link_expiry_and_local_note() {
        let from: Mailbox = "PBX <pbx@example.com>".parse().expect("from");
        let to: Mailbox = "admin@example.com".parse().expect("to");
        let m = FindPassword {
            username: "admin",
            device: "PBX S50 (serial S50-1)",
            link: "https://pbx.example.com/reset?token=abc",
            expires_at: 1_795_717_800,
            ttl_min: 30,
            requested_from: "192.168.1.20",
            cloud: false,
        };
        let text = String::from_utf8(find_password(&from, &to, &m).expect("mail").formatted())
            .expect("utf-8");
        assert!(text.contains("Subject: Find Password\r\n"), "{text}");
        assert!(
            text.contains("https://pbx.example.com/reset?token=abc"),
            "{text}"
        );
        assert!(text.contains("2026-11-26 18:30 UTC"));
        assert!(text.contains("Content-Transfer-Encoding: 7bit"), "{text}");
        assert!(text.contains("local network"));
        assert!(text.contains("192.168.1.20"));
        let cloud = FindPassword { cloud: true, ..m };
        let text = String::from_utf8(find_password(&from, &to, &cloud).expect("mail").formatted())
            .expect("utf-8");
        assert!(!text.contains("local network"));
    }
}
