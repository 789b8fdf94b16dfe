//! Board support for `pbx-authd`: everything that touches the appliance's hardware or
//! pretends to. The daemon talks to a board only through the [`Board`] trait, so the
//! same code runs on an S-Series box, a K2, or the simulated board of `pbx-authd --dev`.
//!
//! Module map:
//! - [`profile`]: board profiles (TOML): which button, LEDs and flash partitions a model has,
//!   named rather than numbered so one firmware fits several board revisions.
//! - [`net`]: the device's own interfaces and their subnets (getifaddrs), and the subnet type
//!   the daemon's local-network rule is built on.
//! - [`sim`]: the simulated board used by `--dev` and the tests.
#![forbid(unsafe_code)]

pub mod net;
pub mod profile;
pub mod sim;

pub use net::{InterfaceAddr, Subnet};
pub use profile::BoardProfile;
pub use sim::SimBoard;

/// What the daemon needs from the hardware it runs on.
pub trait Board: Send + Sync + 'static {
    /// Short name for logs and `ctl status` (`"linux"`, `"sim"`).
    fn kind(&self) -> &'static str;
    /// The addresses of the device's own network interfaces, loopback excluded.
    fn interfaces(&self) -> std::io::Result<Vec<InterfaceAddr>>;
}

/// The board of a real appliance: the kernel's view of the hardware.
#[derive(Debug, Default)]
pub struct LinuxBoard;

impl Board for LinuxBoard {
    fn kind(&self) -> &'static str {
        "linux"
    }
    fn interfaces(&self) -> std::io::Result<Vec<InterfaceAddr>> {
        net::interfaces()
    }
}
