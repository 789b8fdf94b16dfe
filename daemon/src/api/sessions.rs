//! `/api/v1/sessions`: who is signed in. Everyone sees and ends their own sessions; the
//! admin sees and ends every account's.

use std::sync::Arc;

use hyper::StatusCode;

use super::call::{Call, Reply, Req};
use super::guard;
use super::http::{self};
use crate::app::App;
use crate::error::Error;
use crate::model::AuditKind;
use crate::model::Role;

/// Whose sessions the caller may see and end: `None` = everyone's (admin).
fn scope(a: &guard::Authed) -> Option<&str> {
    (a.session.role != Role::Admin).then_some(&*a.session.username)
}

/// `GET /sessions`: newest first, the caller's own marked `current`.
pub fn list(app: &Arc<App>, _: &Req, call: Call) -> Reply {
    let a = call.authed()?;
    let list = app.sessions().list(scope(a), &a.key);
    Ok(http::json(StatusCode::OK, &list))
}

/// `DELETE /sessions/{id}`: 204, or 404 for an id the caller cannot see.
pub fn delete_one(app: &Arc<App>, _: &Req, call: Call) -> Reply {
    let (a, id) = (call.authed()?, call.tail.as_str());
    if !app.sessions().remove_id(id, scope(a)) {
        return Err(Error::NotFound);
    }
    app.audit(
        AuditKind::SessionRevoked,
        Some(&a.session.username),
        Some(call.ip()),
        Some(id),
    );
    Ok(http::no_content())
}

/// `DELETE /sessions`: ends every other session of the caller's account.
pub fn delete_others(app: &Arc<App>, _: &Req, call: Call) -> Reply {
    let a = call.authed()?;
    let ended = app.sessions().remove_others(&a.session.username, &a.key);
    app.audit(
        AuditKind::SessionRevoked,
        Some(&a.session.username),
        Some(call.ip()),
        Some(&format!("all others ({ended})")),
    );
    Ok(http::json(
        StatusCode::OK,
        &serde_json::json!({ "ended": ended }),
    ))
}
