// SPDX-License-Identifier: GPL-2.0

//! The announce of a guest that arrived on this host: when a VF that took
//! a migration stream goes to RUNNING, RARP frames from each MAC its guest
//! owns go out on the PF's wire, so the network learns the guest's new
//! place before the guest sends anything (`common::announce` says which
//! frames and when; Documentation/between-hosts.rst why).

use kernel::prelude::*;

use crate::common::admin::AdminConfig;
use crate::common::announce::{self, PortSettings};
use crate::device::IvfDevice;
use crate::pf_admin;

fn port_settings(c: Option<AdminConfig>) -> PortSettings {
    c.map_or(PortSettings::default(), |c| PortSettings {
        mac: c.mac,
        vlan: c.vlan,
        qos: c.qos,
    })
}

/// The guest on `ivf` runs here now, after a load: announce it, unless the
/// VF's `announce` switch is off. Never fails the arc: the guest runs
/// whether or not the network heard of it, and the reason is logged.
pub(crate) fn arrived(ivf: &IvfDevice) {
    if !ivf.announce_enabled() {
        return;
    }
    let port = port_settings(pf_admin::get(ivf.core().pci()).ok().flatten());
    let plan = announce::plan(&ivf.pf_state().snoop.log, &port);
    if plan.count == 0 {
        dev_dbg!(ivf.dev(), "announce: the guest has no MAC to announce\n");
        return;
    }
    if plan.dropped > 0 {
        dev_info!(
            ivf.dev(),
            "announce: {} frames a round; {} more (MACs times VLANs) not sent\n",
            plan.count,
            plan.dropped
        );
    }
    let res = ivf.announcer().start(
        ivf.core().pci(),
        &plan,
        announce::ROUNDS,
        announce::FIRST_GAP_MS,
        announce::GAP_STEP_MS,
    );
    match res {
        Ok(false) => dev_dbg!(
            ivf.dev(),
            "announce not sent: the last one started less than a second ago\n"
        ),
        Ok(true) => dev_dbg!(
            ivf.dev(),
            "announce: {} MACs, {} frames a round, {} rounds\n",
            plan.macs,
            plan.count,
            announce::ROUNDS
        ),
        Err(e) => dev_warn!(ivf.dev(), "announce not sent: {:?}\n", e),
    }
}
