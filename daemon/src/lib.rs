//! `pbx-authd`: the authentication and recovery daemon of S-Series / K2 PBX appliances.
//! It serves the on-box web login over HTTP and HTTPS, keeps accounts on flash (sled),
//! and is the only way back into a box whose admin password is lost.
//!
//! A request walks one way: [`server`] → [`api::route`] (the route table, its guard)
//! → `api::<flow>` (decode)
//! → `flows::<flow>` (the rules) → [`store`] / mail / [`auth`] → back up as a value →
//! `api::<flow>` encodes. Nothing below `api` builds a response.
//!
//! Module map:
//! - [`cli`]: the command line, parsed by hand.
//! - [`config`]: TOML file → validated [`config::Config`]; every problem with its key.
//! - [`app`]: shared state; opens the stores, first boot, the degraded state.
//! - [`server`]: accept loops, TLS handshake and header timeouts, graceful drain; each
//!   connection is served by crate `pbx-http1` (hyper's connection code, at opt-level 3).
//! - [`tls`]: certificate from PEM or a generated self-signed ECDSA P-256 one.
//! - [`api`]: the only layer that knows HTTP: the Host check, the route table (every
//!   route with the access it needs, applied before its handler), bodies, cookies; one
//!   file per flow decodes, calls the flow and encodes what it returns.
//! - [`flows`]: the rules, without HTTP: sign-in and the password check under the
//!   limits, accounts, profile, SMTP, the device's audit and factory reset, and
//!   [`flows::recovery`] (readiness, Forgot Password, the reset link and its
//!   local-network rule, the mail worker), who may reach the admin (`flows::gate`,
//!   `flows::access` and its probation, `flows::installers`, `flows::alerts`), fleet
//!   sign-in (`flows::directory`, its page `flows::directory_settings`).
//! - [`directory`]: the company's directory as the box asks it: RADIUS (UDP with
//!   timeout, retries; RadSec over rustls) and LDAP (search-then-bind over LDAPS or
//!   StartTLS); [`ldapwire`]: LDAP's BER and RFC 4515 filters, pure.
//! - [`auth`]: argon2id off the runtime, password rules, sessions, lockout, what
//!   the ways back in keep in RAM (`auth::recovery`), trusted networks (`auth::trust`).
//! - [`model`]: the domain — accounts, roles, reset tokens, audit events, factory data.
//! - [`store`]: typed sled wrapper (board DB, data DB; one file per tree), flush on
//!   credential writes; async code calls it through [`store::Store`].
//! - [`mail`]: the mail texts, the queue for the worker (`mail::outbox`), and the
//!   transport (SMTP through lettre, or the dev outbox).
//! - [`provision`]: factory step that writes the board DB and the label password.
//! - [`factory_reset`]: marker → erase → reboot; resumed at start if interrupted.
//! - [`button`]: what a reset-button press does; [`control`]: the Unix control socket.
//! - [`error`]: the error enum and its one status mapping.
//! - [`clock`]: injectable time; [`window`]: the one sliding-window counter (and its
//!   keyed table).
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod auth;
pub mod button;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod directory;
pub mod error;
pub mod factory_reset;
pub mod firewall;
pub mod flows;
pub mod fsutil;
pub mod fuzzing;
pub mod i18n;
pub mod ldapwire;
pub mod mail;
pub mod model;
pub mod provision;
pub mod qr;
pub mod selftest;
pub mod server;
pub mod store;
pub mod syslog;
#[cfg(test)]
mod testserver;
pub mod tls;
pub mod window;

use std::future::Future;
use std::sync::Arc;

pub use app::App;
pub use config::Config;
pub use server::Listeners;
pub use tls::Tls;

/// Serves `app` on `listeners` (and the control socket, bound by the caller before it
/// announced them) until `shutdown` resolves, then drains connections. Also runs the
/// mail worker that sends recovery mail off the request path.
pub async fn run(
    app: Arc<App>,
    tls: Arc<Tls>,
    listeners: Listeners,
    control: Option<tokio::net::UnixListener>,
    shutdown: impl Future<Output = ()>,
) {
    if let Some(rx) = app.outbox().take_worker_queue() {
        tokio::spawn(flows::recovery::mail_worker(Arc::clone(&app), rx));
    }
    tokio::spawn(flows::recovery::email::drill_worker(Arc::clone(&app)));
    tokio::spawn(flows::login::failure_summaries(Arc::clone(&app)));
    flows::installers::schedule(&app).await;
    tokio::spawn(flows::ticker::watch(Arc::clone(&app)));
    tokio::spawn(flows::time::keep_floor(Arc::clone(&app)));
    app.syslog().configure(app.config().syslog.clone());
    if let Some(l) = control {
        tokio::spawn(control::serve(Arc::clone(&app), l));
    }
    button::spawn_watcher(&app);
    let (http, https) = listeners.local_addrs();
    let mut ports: Vec<u16> = http.iter().chain(&https).map(|a| a.port()).collect();
    ports.dedup();
    app.firewall().start(&ports);
    server::serve(Arc::clone(&app), tls, listeners, shutdown).await;
    app.firewall().stop();
    flows::time::save_floor(&app, true).await;
}

/// The names a generated certificate covers: loopback, `localhost`, the device's own
/// addresses and the host of `public_url`.
pub fn certificate_names(config: &Config, board: &dyn pbx_board::Board) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(ifs) = board.interfaces() {
        names.extend(ifs.iter().map(|i| i.addr.to_string()));
    }
    names.extend(config.public_host());
    names.dedup();
    names
}
