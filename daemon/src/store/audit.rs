//! The `audit` tree: a bounded ring ([`AUDIT_MAX`]) of [`AuditEvent`]s, batched by
//! sled's background flush.

use std::sync::atomic::Ordering::SeqCst;

use super::{encode, Access, DataDb, StoreError, AUDIT_MAX};
use crate::model::AuditEvent;

impl DataDb {
    /// Appends an audit event to the bounded ring. Not flushed on its own: sled's
    /// background flush (1 s) batches them, so a flood of failed logins does not turn
    /// into one flash write each.
    pub fn audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let bytes = encode("audit", event)?;
        self.with(Access::Audit, |t| {
            let next = self.audit_next.fetch_add(1, SeqCst);
            t.audit
                .insert(next.to_be_bytes(), bytes)
                .map_err(|e| self.err(e))?;
            if self.audit_len.fetch_add(1, SeqCst) >= AUDIT_MAX
                && t.audit.pop_min().map_err(|e| self.err(e))?.is_some()
            {
                self.audit_len.fetch_sub(1, SeqCst);
            }
            Ok(())
        })
    }

    /// Audit events, newest first.
    pub fn audit_events(&self) -> Result<Vec<AuditEvent>, StoreError> {
        let mut out = Vec::new();
        self.with(Access::Read, |t| {
            for kv in t.audit.iter() {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                if let Ok(ev) = serde_json::from_slice(&v) {
                    out.push(ev);
                }
            }
            Ok(())
        })?;
        out.reverse();
        Ok(out)
    }
}
