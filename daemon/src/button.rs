//! What a reset-button press does (spec §6), whoever reports it: the daemon's own
//! watcher of the input device, or `pbx-authd ctl button --held-ms N` from an
//! OpenWrt-style `rc.button` handler. The classification itself is the board profile's
//! pure function; this module acts on it.

use std::sync::Arc;
use std::time::Duration;

use pbx_board::profile::IgnoredPress;
use pbx_board::{Pattern, Press};
use serde_json::{json, Value};

use crate::app::App;
use crate::flows::recovery::{self, button};
use crate::model::AuditKind;
use crate::model::{ButtonMode, ADMIN};

fn led(app: &App, pattern: Pattern) {
    if let Some(name) = app
        .board_info()
        .as_ref()
        .and_then(|b| b.hw.status_led.as_deref())
    {
        if let Err(e) = app.board().set_led(name, pattern) {
            tracing::warn!("status LED {name:?}: {e}");
        }
    }
}

/// Handles a press held for `held`; returns what happened (the `ctl` answer).
pub async fn press(app: &Arc<App>, held: Duration, source: &str) -> Value {
    let ms = u64::try_from(held.as_millis()).unwrap_or(u64::MAX);
    if app.is_resetting() {
        tracing::info!(ms, "button press ignored: factory reset in progress");
        return json!({"ok": true, "action": "ignored", "reason": "a factory reset is in progress"});
    }
    let windows = app
        .board_info()
        .as_ref()
        .map(|b| b.hw.button)
        .unwrap_or_default();
    // A change of the mode waits for a short press (1-2.5 s, below the recovery
    // window): that press confirms it and does nothing else. A recovery press never
    // confirms, so a pending change cannot swallow the owner's press at the box.
    let confirm_max = button::CONFIRM_MAX_MS.min(windows.recovery_min_ms.saturating_sub(1));
    if (button::CONFIRM_MIN_MS..=confirm_max).contains(&ms) {
        if let Some(done) = button::confirm(app).await {
            return match done {
                Ok(mode) => {
                    led(app, Pattern::ButtonModeConfirmed);
                    json!({"ok": true, "action": "button-mode-confirmed", "mode": mode})
                }
                Err(e) => {
                    tracing::error!("confirming the button mode: {e}");
                    json!({"ok": false, "error": e.code(), "message": e.message(crate::i18n::Lang::En)})
                }
            };
        }
    }
    match windows.classify(ms) {
        Press::Recovery => {
            button::cancel(app, "a recovery press");
            crate::flows::access::revert(app, crate::flows::access::WHY_BUTTON).await;
            recovery_press(app, source).await
        }
        Press::FactoryReset => {
            let started =
                crate::factory_reset::start(app, &format!("reset button held {ms} ms ({source})"));
            json!({"ok": true, "action": "factory-reset", "started": started})
        }
        Press::Ignored(why) => {
            let reason = match why {
                IgnoredPress::TooShort => "too short",
                IgnoredPress::BetweenWindows => "between the recovery and the reset windows",
                IgnoredPress::Stuck => "held too long: a stuck button",
            };
            tracing::info!(ms, reason, "button press ignored");
            json!({"ok": true, "action": "ignored", "reason": reason})
        }
    }
}

/// The 3-8 s press, by `recovery.button`.
async fn recovery_press(app: &Arc<App>, source: &str) -> Value {
    match button::mode(app).await {
        ButtonMode::Off => {
            app.audit(
                AuditKind::RecoveryPress,
                Some(ADMIN),
                None,
                Some("button mode off"),
            );
            tracing::info!(source, "recovery press ignored: recovery.button is off");
            json!({"ok": true, "action": "ignored", "reason": "the recovery press is off (recovery.button)"})
        }
        ButtonMode::Mail => mail_press(app, source).await,
        ButtonMode::Credentials => match button::reset_admin_credentials(app, source).await {
            Ok(()) => {
                led(app, Pattern::CredentialsReset);
                json!({"ok": true, "action": "credentials-reset"})
            }
            Err(e) => {
                led(app, Pattern::ResetFailed);
                app.audit(
                    AuditKind::RecoveryPress,
                    Some(ADMIN),
                    None,
                    Some("credential reset failed"),
                );
                tracing::error!(source, "credential reset failed: {e}");
                json!({"ok": false, "error": e.code(), "message": e.message(crate::i18n::Lang::En)})
            }
        },
    }
}

/// Mails a reset link to the admin's bound address if recovery by mail is set up;
/// otherwise only shows "not configured" on the LED. Audited either way. The press in
/// `mail` mode, and `ctl recovery-mail`.
pub async fn mail_press(app: &Arc<App>, source: &str) -> Value {
    let ready = recovery::readiness(app).await.is_ok_and(|r| r.available);
    let email = match app.data() {
        Ok(d) => d
            .account(ADMIN)
            .await
            .ok()
            .flatten()
            // Only a proven address gets a reset link.
            .and_then(|a| a.email.filter(|_| a.email_confirmed_at.is_some())),
        Err(_) => None,
    };
    let (Some(email), true) = (email, ready) else {
        led(app, Pattern::RecoveryNotConfigured);
        app.audit(
            AuditKind::RecoveryPress,
            Some(ADMIN),
            None,
            Some("recovery not configured"),
        );
        tracing::warn!(source, "recovery press: email recovery is not configured");
        return json!({"ok": true, "action": "recovery-mail", "sent": false,
                      "reason": "email recovery is not configured"});
    };
    match recovery::send_reset_link(app, ADMIN, &email, "the reset button of the PBX").await {
        Ok(()) => {
            led(app, Pattern::RecoveryMailSent);
            app.audit(
                AuditKind::RecoveryPress,
                Some(ADMIN),
                None,
                Some("reset link mailed"),
            );
            tracing::info!(source, "recovery press: reset link mailed to the admin");
            json!({"ok": true, "action": "recovery-mail", "sent": true})
        }
        Err(e) => {
            led(app, Pattern::RecoveryNotConfigured);
            app.audit(
                AuditKind::RecoveryPress,
                Some(ADMIN),
                None,
                Some("mail failed"),
            );
            tracing::error!(source, stage = ?e.stage, "recovery press: mail failed: {}", e.message);
            json!({"ok": false, "error": "mail_failed", "stage": e.stage, "message": e.message})
        }
    }
}

/// Watches the board's button input device on a thread of its own, if the profile names
/// one and it exists; presses go to [`press`] on the runtime.
pub fn spawn_watcher(app: &Arc<App>) {
    let Some((input, key)) = app
        .board_info()
        .and_then(|b| Some((b.hw.button_input.clone()?, b.hw.button_key)))
    else {
        return;
    };
    let Some(dev) = app.board().button_device(&input) else {
        tracing::warn!(
            input,
            "reset button input device not found; presses come only via `ctl button`"
        );
        return;
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Duration>(8);
    std::thread::spawn(move || {
        let r = pbx_board::button::watch(&dev, key, |held| {
            let _ = tx.blocking_send(held);
        });
        if let Err(e) = r {
            tracing::error!(device = %dev.display(), "reset button watcher stopped: {e}");
        }
    });
    let app = Arc::clone(app);
    tokio::spawn(async move {
        while let Some(held) = rx.recv().await {
            press(&app, held, "input device").await;
        }
    });
}
