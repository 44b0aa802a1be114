// SPDX-License-Identifier: GPL-2.0

//! The announce of a guest that arrived on this host: when a VF that took
//! a migration stream goes to RUNNING, RARP frames from each MAC its guest
//! owns go out on the PF's wire, so the network learns the guest's new
//! place before the guest sends anything (`common::announce` says which
//! frames and when; Documentation/between-hosts.rst why).

use kernel::prelude::*;

use crate::common::admin::AdminConfig;
use crate::common::announce::{self, PortSettings};
use crate::common::ids::Family;
use crate::device::IvfDevice;
use crate::pf_admin;

/// The administrator's settings the announce uses, read now (at the load).
/// The MAC only on igb, which forgets a VF's MAC at a reset unless the
/// administrator set it: ixgbe keeps the last one, which may be an earlier
/// tenant's, so there only the MACs the guest itself set are announced.
pub(crate) fn port_settings(ivf: &IvfDevice) -> PortSettings {
    pf_admin::get(ivf.core().pci()).ok().flatten().map_or(
        PortSettings::default(),
        |c: AdminConfig| PortSettings {
            mac: if ivf.family() == Family::Igb {
                c.mac
            } else {
                [0; 6]
            },
            vlan: c.vlan,
            qos: c.qos,
        },
    )
}

/// The guest on `ivf` runs here now, after a load: announce it, unless the
/// VF's `announce` switch is off. Never fails the arc: the guest runs
/// whether or not the network heard of it, and the reason is logged.
pub(crate) fn arrived(ivf: &IvfDevice, port: &PortSettings) {
    if !ivf.announce_enabled() {
        return;
    }
    let plan = announce::plan(&ivf.pf_state().snoop.log, port);
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
