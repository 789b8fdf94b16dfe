//! `GET /audit` (filtered, paged, CSV), `GET /device` and `POST /factory-reset`.

use std::sync::Arc;

use hyper::StatusCode;

use super::call::{Call, Reply, Req};
use super::http::{self};
use crate::app::App;
use crate::flows::device::{self, FactoryResetRequest};

/// The value of `key` in a query string, percent-decoded (`+` is a space).
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    let raw = query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)?
        .1;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
}

fn filter(query: Option<&str>) -> device::AuditFilter {
    device::AuditFilter {
        event: query_param(query, "event"),
        user: query_param(query, "user"),
        text: query_param(query, "q"),
    }
}

/// `GET /audit?event=&user=&q=&page=&per_page=`: newest first; `X-Total-Count` says how
/// many passed the filter (pages count from 1; without `page`, all of them).
pub async fn audit(app: &App, req: Req, _: Call) -> Reply {
    let q = req.uri().query();
    let events = device::audit_filtered(app, &filter(q)).await?;
    let total = events.len();
    let page: Option<usize> = query_param(q, "page").and_then(|p| p.parse().ok());
    let per: usize = query_param(q, "per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let shown: Vec<_> = match page {
        Some(p) => events
            .into_iter()
            .skip(p.saturating_sub(1) * per)
            .take(per)
            .collect(),
        None => events,
    };
    let mut r = http::json(StatusCode::OK, &shown);
    r.headers_mut().insert("x-total-count", total.into());
    Ok(r)
}

/// `GET /audit.csv?event=&user=`: the filtered trail as a download.
pub async fn audit_csv(app: &App, req: Req, _: Call) -> Reply {
    let events = device::audit_filtered(app, &filter(req.uri().query())).await?;
    let mut r = http::response(
        StatusCode::OK,
        "text/csv; charset=utf-8",
        device::audit_csv(&events),
    );
    r.headers_mut().insert(
        hyper::header::CONTENT_DISPOSITION,
        hyper::header::HeaderValue::from_static("attachment; filename=\"pbx-audit.csv\""),
    );
    Ok(r)
}

/// `GET /device`: model, serial, MAC, firmware, uptime, the data DB's size, readiness.
pub async fn info(app: &App, _: Req, _: Call) -> Reply {
    Ok(http::json(StatusCode::OK, &device::info(app).await))
}

/// 202 and the erase runs; the box reboots when it is done.
pub async fn factory_reset(app: &Arc<App>, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let body: FactoryResetRequest = http::read_json(req).await?;
    let started = device::factory_reset(app, call.ip(), &a.session.username, body).await?;
    Ok(http::json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "erasing": true, "started": started }),
    ))
}
