//! The clock floor on flash (SPEC §12): the newest time this box has seen, written at
//! most hourly while it runs and once at stop, read at start (see
//! [`crate::clock::Floored`]).

use std::time::Duration;

use crate::app::App;

use crate::model::ClockFloor;

/// How often the worker looks whether an hour of new time has passed.
const LOOK_EVERY: Duration = Duration::from_secs(300);

/// Writes the floor when it is due (`at_stop`: whatever is newer than the last write).
pub async fn save_floor(app: &App, at_stop: bool) {
    let Some(t) = app.time().to_save(at_stop) else {
        return;
    };
    let Ok(data) = app.data() else { return };
    match data.save(ClockFloor(t)).await {
        Ok(()) => app.time().saved(t),
        Err(e) => tracing::warn!("clock floor not saved: {e}"),
    }
}

/// Keeps the floor on flash while the daemon runs.
pub async fn keep_floor(app: std::sync::Arc<App>) {
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        save_floor(&app, false).await;
    }
}
