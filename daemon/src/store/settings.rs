//! The `settings` tree: name → JSON (SMTP, the last test mail, the device-cookie key).

use serde::Serialize;

use super::{encode, Access, DataDb, StoreError};

impl DataDb {
    /// A JSON setting, if set.
    pub fn setting<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let v = self.with(Access::Read, |t| {
            t.settings.get(name).map_err(|e| self.err(e))
        })?;
        v.map(|b| {
            serde_json::from_slice(&b).map_err(|e| StoreError::Decode {
                key: format!("settings/{name}"),
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    /// Stores a JSON setting and flushes it before returning.
    pub fn put_setting<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let bytes = encode(&format!("settings/{name}"), value)?;
        self.with(Access::Write, |t| {
            t.settings.insert(name, bytes).map_err(|e| self.err(e))?;
            self.flush(t)
        })
    }
}
