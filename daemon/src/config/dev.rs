//! The embedded config of `--dev`: a simulated board with everything under one state
//! directory, loopback listeners, and the keys of `--config FILE` laid over it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{key_at, Config, Problem, Problems};

impl Config {
    /// The embedded config of `--dev`: everything under `state_dir`, loopback listeners.
    /// `overrides` (the text of `--config FILE` given with `--dev`) is laid over it key by
    /// key, e.g. to set `server.public_url` or `server.cloud` in a test.
    pub fn dev(
        state_dir: &Path,
        http: SocketAddr,
        https: SocketAddr,
        overrides: Option<&str>,
    ) -> Result<Config, Problems> {
        let path = |p: PathBuf| toml::Value::String(p.to_string_lossy().into_owned());
        let mut base = toml::Table::new();
        let mut server = toml::Table::new();
        server.insert(
            "http".into(),
            toml::Value::Array(vec![http.to_string().into()]),
        );
        server.insert(
            "https".into(),
            toml::Value::Array(vec![https.to_string().into()]),
        );
        // A developer's loopback browser; tests that want it turn it on.
        server.insert("https_only".into(), false.into());
        let mut storage = toml::Table::new();
        storage.insert("board_db".into(), path(state_dir.join("board.db")));
        storage.insert("data_db".into(), path(state_dir.join("data.db")));
        storage.insert("state_dir".into(), path(state_dir.to_path_buf()));
        let mut control = toml::Table::new();
        control.insert("socket".into(), path(state_dir.join("ctl.sock")));
        let mut reset = toml::Table::new();
        reset.insert(
            "erase_paths".into(),
            toml::Value::Array(vec![path(state_dir.join("userfiles"))]),
        );
        base.insert("reset".into(), reset.into());
        base.insert("server".into(), server.into());
        base.insert("storage".into(), storage.into());
        base.insert("control".into(), control.into());
        if let Some(text) = overrides {
            let over: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                Problems(vec![Problem {
                    key: key_at(text, e.span()).unwrap_or_else(|| "(file)".into()),
                    message: e.message().to_string(),
                }])
            })?;
            merge(&mut base, over);
        }
        let mut config = Config::from_table(&base, "")?;
        config.dev = true;
        Ok(config)
    }
}

/// Lays `over` onto `base`, table by table; other values replace.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}
