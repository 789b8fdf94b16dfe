//! The control socket: a Unix socket (mode 0600) speaking JSON lines, for the boot
//! service and the reset-button handler. Only root or the daemon's own user may talk to
//! it (checked with SO_PEERCRED). `pbx-authd ctl` is its client ([`client`]).
//!
//! Requests: `{"cmd":"status"}`, `{"cmd":"factory-reset","yes":true}`,
//! `{"cmd":"button","held_ms":N}`, `{"cmd":"recovery-mail"}`, `{"cmd":"selftest"}`. Every answer is one line
//! with `"ok"`; a malformed line gets `{"ok":false,"error":"bad_request",...}` and the
//! connection stays usable.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::app::App;
use crate::model::Health;

/// Longest request line accepted.
const MAX_LINE: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    Status,
    FactoryReset {
        #[serde(default)]
        yes: bool,
    },
    Button {
        held_ms: u64,
    },
    RecoveryMail,
    Selftest,
}

/// Binds the socket (replacing a stale one) with mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

pub async fn serve(app: Arc<App>, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(Arc::clone(&app), stream));
            }
            Err(e) => {
                tracing::warn!("control socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn error(code: &str, message: impl Into<String>) -> Value {
    json!({"ok": false, "error": code, "message": message.into()})
}

async fn connection(app: Arc<App>, stream: UnixStream) {
    let me = nix::unistd::geteuid().as_raw();
    let allowed = match stream.peer_cred() {
        Ok(c) => c.uid() == 0 || c.uid() == me,
        Err(_) => false,
    };
    let (read, mut write) = stream.into_split();
    if !allowed {
        tracing::warn!("control socket: refused a peer that is neither root nor the daemon's user");
        let line = error("forbidden", "only root may use the control socket").to_string() + "\n";
        let _ = write.write_all(line.as_bytes()).await;
        return;
    }
    let mut reader = tokio::io::BufReader::new(read);
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut buf)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                let line =
                    error("bad_request", format!("unreadable request: {e}")).to_string() + "\n";
                let _ = write.write_all(line.as_bytes()).await;
                return;
            }
        };
        if n == 0 {
            return;
        }
        let answer = if buf.len() > MAX_LINE && !buf.ends_with('\n') {
            let a = error("bad_request", "request line longer than 4096 bytes");
            let _ = write.write_all((a.to_string() + "\n").as_bytes()).await;
            return;
        } else {
            match parse_line(&buf) {
                Ok(req) => handle(&app, req).await,
                Err(message) => error("bad_request", message),
            }
        };
        if write
            .write_all((answer.to_string() + "\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Decodes one request line of the control protocol.
pub fn parse_line(line: &str) -> Result<Request, String> {
    serde_json::from_str::<Request>(line.trim())
        .map_err(|e| format!("{e}; expected e.g. {{\"cmd\":\"status\"}}"))
}

pub async fn handle(app: &Arc<App>, req: Request) -> Value {
    match req {
        Request::Status => status(app).await,
        Request::FactoryReset { yes: false } => error(
            "confirm",
            "a factory reset erases all user data; confirm with --yes",
        ),
        Request::FactoryReset { yes: true } => {
            let started = crate::factory_reset::start(app, "control socket");
            json!({"ok": true, "action": "factory-reset", "started": started})
        }
        Request::Button { held_ms } => {
            crate::button::press(app, Duration::from_millis(held_ms), "ctl button").await
        }
        Request::RecoveryMail => crate::button::mail_press(app, "ctl recovery-mail").await,
        Request::Selftest => crate::selftest::run(app).await,
    }
}

async fn status(app: &Arc<App>) -> Value {
    let (state, reason) = match &app.health() {
        Health::Ok => ("ok", None),
        Health::Degraded(why) => ("degraded", Some(why.to_string())),
    };
    let recovery = crate::flows::recovery::readiness(app).await.ok();
    json!({
        "ok": true,
        "state": state,
        "reason": reason,
        "version": env!("CARGO_PKG_VERSION"),
        "board": app.board().kind(),
        "model": app.board_info().map(|b| b.model.clone()),
        "serial": app.board_info().map(|b| b.serial.clone()),
        "uptime_s": app.clock().unix().saturating_sub(app.started_at()),
        "recovery_available": recovery.as_ref().map(|r| r.available),
        "recovery_email": recovery.as_ref().map(|r| match r {
            r if !r.email_bound => "not set",
            r if r.email_stale => "stale",
            r if r.email_confirmed_at.is_some() => "confirmed",
            _ => "unconfirmed",
        }),
        "recovery_warning": recovery.as_ref().filter(|r| r.email_stale).map(|_| {
            "the recovery email has not been confirmed for too long: recovery by email may not work; \
             send a recovery check from the dashboard"
        }),
        "recovery_codes_left": recovery.as_ref().map(|r| r.codes_left),
        "recovery_button": recovery.as_ref().map(|r| r.button.mode),
        "reset_in_progress": app.is_resetting(),
        "clock_unset": crate::flows::recovery::clock_unset(app),
        "sessions": app.sessions().count(),
        "password_checks": app.hasher().checks(),
        "flash_flushes": app.data().ok().map(|d| d.flushes()),
        "hash_priority": app.hasher().priority().map(|p| p.as_str()),
    })
}

/// The `pbx-authd ctl` client: sends one request, prints the answer, and says whether
/// it was `ok`.
pub fn client(socket: &Path, request: &Value) -> Result<(Value, bool), String> {
    let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot connect to {} ({e}); is pbx-authd running?",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    // A refused peer gets its answer and the connection closes at once, possibly before
    // the request is written: read the answer even when the write fails.
    let sent = s.write_all((request.to_string() + "\n").as_bytes());
    let mut line = String::new();
    let read = BufReader::new(&s).read_line(&mut line);
    match (sent, read) {
        (_, Ok(n)) if n > 0 => {}
        (Err(e), _) => return Err(format!("cannot send: {e}")),
        (Ok(()), Err(e)) => return Err(format!("no answer: {e}")),
        (Ok(()), Ok(_)) => return Err("the daemon closed the connection without an answer".into()),
    }
    let v: Value =
        serde_json::from_str(line.trim()).map_err(|e| format!("bad answer ({e}): {line}"))?;
    let ok = v["ok"] == json!(true);
    Ok((v, ok))
}
