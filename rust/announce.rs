// SPDX-License-Identifier: GPL-2.0

//! The announce of a guest that arrived on this host: when a VF that took
//! a migration stream goes to RUNNING, RARP frames from each MAC its guest
//! owns go out on the PF's wire, so the network learns the guest's new
//! place before the guest sends anything (`common::announce` says which
//! frames and when; Documentation/between-hosts.rst why).

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use kernel::prelude::*;

use crate::common::announce::{self, Arrival};
use crate::device::IvfDevice;
use crate::log_limit::vf_line;
use crate::msg::Msg;
use crate::pf_admin;
use crate::switches::Switch;

/// What the announce of a guest that arrived on `ivf` may say, read now
/// (at the load, after the replay): the PF's view of the VF, never the
/// log's alone (`common::announce::port_settings`).
pub(crate) fn port_settings(ivf: &IvfDevice) -> Arrival {
    let pf = pf_admin::get(ivf.core().pci()).ok().flatten();
    let log = ivf.pf_channel().snoop.log;
    announce::port_settings(ivf.family(), pf.as_ref(), &log)
}

/// The guest on `ivf` runs here now, after a load: announce it, unless the
/// VF's `announce` switch is off or the PF's view silences it. Never fails
/// the arc: the guest runs whether or not the network heard of it, and the
/// reason is logged.
pub(crate) fn arrived(ivf: &IvfDevice, arrival: &Arrival) {
    if !ivf.switch(Switch::Announce) {
        return;
    }
    let port = match arrival {
        Ok(port) => port,
        Err(why) => {
            vf_line!(ivf, dev_info, "announce not sent: {}\n", Msg(*why));
            return;
        }
    };
    let plan = announce::plan(&ivf.pf_channel().snoop.log, port);
    if plan.count == 0 {
        dev_dbg!(ivf.dev(), "announce: the guest has no MAC to announce\n");
        return;
    }
    if plan.dropped > 0 {
        vf_line!(
            ivf,
            dev_info,
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
            "announce deferred: the last one started less than a second ago\n"
        ),
        Ok(true) => dev_dbg!(
            ivf.dev(),
            "announce: {} MACs, {} frames a round, {} rounds\n",
            plan.macs,
            plan.count,
            announce::ROUNDS
        ),
        Err(e) => vf_line!(ivf, dev_warn, "announce not sent: {:?}\n", e),
    }
}
