//! What the daemon does once a second, for its life: a change whose probation ran out
//! reverts ([`super::access`]), installer accounts whose time is up end
//! ([`super::installers`]), and an hour's held alerts are summarised ([`super::alerts`]).

use std::time::Duration;

use crate::app::App;

/// Reverts a change whose probation ran out, and ends installer accounts whose time is
/// up: once a second, for the daemon's life.
pub async fn watch(app: std::sync::Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        step(&app).await;
    }
}

/// One pass of [`watch`].
pub async fn step(app: &App) {
    if app
        .access()
        .probation()
        .is_some_and(|p| app.clock().mono() >= p.until)
    {
        super::access::revert(app, super::access::WHY_TIMEOUT).await;
    }
    crate::flows::installers::end_expired(app).await;
    crate::flows::alerts::hourly(app);
}
