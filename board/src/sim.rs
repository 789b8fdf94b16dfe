//! The simulated board of `pbx-authd --dev` and the tests: a real process on a real
//! network stack, with the board-specific parts kept under a state directory.

use std::path::{Path, PathBuf};

use crate::{net, Board, InterfaceAddr};

/// A board whose hardware lives under `state_dir`.
#[derive(Debug, Clone)]
pub struct SimBoard {
    state_dir: PathBuf,
}

impl SimBoard {
    pub fn new(state_dir: impl Into<PathBuf>) -> SimBoard {
        SimBoard {
            state_dir: state_dir.into(),
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

impl Board for SimBoard {
    fn kind(&self) -> &'static str {
        "sim"
    }
    fn interfaces(&self) -> std::io::Result<Vec<InterfaceAddr>> {
        // The simulated box shares the host's network stack.
        net::interfaces()
    }
}
