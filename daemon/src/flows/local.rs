//! The local-network rule as the flows ask it (spec §4): loopback, the subnets of this
//! box's own interfaces (never the WAN port's) and `network.lan_subnets` are the PBX's
//! own network — unless it is a cloud PBX. Reset links and recovery codes work only
//! from there; it is a lane of its own for sign-ins, connection slots and blocks. The
//! pure decision is [`localnet::allowed`].

use std::net::IpAddr;

use crate::app::App;
use crate::flows::localnet;

/// The subnets of the interfaces that make up the PBX's own network
/// (`network.lan_interfaces`, never the board's WAN port; see [`localnet::own_subnets`]).
pub fn own_subnets(app: &App, config: &crate::config::Config) -> Vec<pbx_board::Subnet> {
    let wan = app.board_info().and_then(|b| b.hw.wan_interface.clone());
    localnet::own_subnets(
        &app.board().interfaces().unwrap_or_default(),
        config.network.lan_interfaces.as_deref(),
        wan.as_deref(),
    )
}

/// The local-network rule as it stands: this box's own subnets (read from its
/// interfaces), `network.lan_subnets` and the cloud switch. Read once, asked many times
/// (the accept loop keeps one for a few seconds).
pub struct LocalRule {
    own: Vec<pbx_board::Subnet>,
    lan: Vec<pbx_board::Subnet>,
    cloud: bool,
}

impl LocalRule {
    pub fn now(app: &App) -> LocalRule {
        let config = app.config();
        LocalRule {
            own: own_subnets(app, &config),
            lan: config.network.lan_subnets.clone(),
            cloud: config.server.cloud,
        }
    }

    /// Whether `peer` may do what only the local network may (reset links, recovery
    /// codes, sign-in on a protected account): on a cloud PBX, everyone.
    pub fn allows(&self, peer: IpAddr) -> bool {
        localnet::allowed(peer, &self.own, &self.lan, self.cloud)
    }

    /// Whether `peer` is on the PBX's own segment, cloud or not (loopback included).
    pub fn on_segment(&self, peer: IpAddr) -> bool {
        localnet::allowed(peer, &self.own, &self.lan, false)
    }
}

/// Whether `peer` is on the PBX's local network (the reset link's rule), with this
/// box's interfaces.
pub fn is_local(app: &App, peer: IpAddr) -> bool {
    LocalRule::now(app).allows(peer)
}
