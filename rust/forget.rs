// SPDX-License-Identifier: GPL-2.0

//! The PF made to forget a VF's guest when the last user closes the VF
//! (after a migration the source host must not keep delivering the guest's
//! MAC to the VF it left) and at an open after a close that could not (a
//! new user must find nothing of the last one's filters);
//! `common::mbx::forget` says what the PF drivers leave behind and how it
//! goes.

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use kernel::prelude::*;

use crate::common::ids::Family;
use crate::common::mbx;
use crate::device::IvfDevice;
use crate::log_limit::vf_line;
use crate::msg::Msg;
use crate::pf_admin;

/// When the forget runs.
#[derive(Copy, Clone)]
pub(crate) enum Moment {
    /// A user opened the VF (after the core's reset).
    Open,
    /// The last user closes it (before the core's reset).
    Close,
}

impl Moment {
    fn name(self) -> &'static str {
        match self {
            Moment::Open => "open",
            Moment::Close => "close",
        }
    }
}

/// Asks the PF, through the VF's mailbox, to drop every filter the VF's
/// guest set. Never fails the open or close: a VF whose BAR0 cannot be
/// reached (in a low-power state) or whose PF does not answer is forgotten
/// at the next open instead, and the reason is logged.
/// Returns whether the PF forgot.
pub(crate) fn forget_guest(ivf: &IvfDevice, when: Moment) -> bool {
    let admin = pf_admin::get(ivf.core().pci()).ok().flatten();
    let trusted = admin.as_ref().is_some_and(|c| c.trusted);
    let mailbox = ivf.mailbox();
    let mut bar = match ivf.core().bar0() {
        Ok(bar) => bar,
        Err(e) => {
            vf_line!(ivf, dev_info,
                "the PF keeps the last guest's filters until the next open: BAR0 is not accessible at {} ({:?})\n",
                when.name(),
                e
            );
            return false;
        }
    };
    let res = mbx::forget(&mut *bar, ivf.regmap(), ivf.family(), trusted);
    // Neither memory_lock nor the mailbox is held across rtnl (as in the save).
    drop(bar);
    drop(mailbox);
    match res {
        Ok(done) => {
            ivf.forgotten();
            // ixgbe turns anti-spoofing off when a guest adds a MACVLAN and
            // turns it back on at a reset only with a port VLAN: the
            // administrator's setting goes back in force.
            if ivf.family() == Family::Ixgbe {
                if let Some(c) = admin.as_ref().filter(|c| c.spoofchk) {
                    if let Err(e) = pf_admin::reapply_spoofchk(ivf.core().pci(), c) {
                        vf_line!(
                            ivf,
                            dev_warn,
                            "spoof checking not re-applied after the forget: {:?}\n",
                            e
                        );
                    }
                }
            }
            dev_dbg!(
                ivf.dev(),
                "at {}: the PF dropped the guest's filters ({} messages; administrator's MAC kept: {}, extra filters cleared: {})\n",
                when.name(),
                done.messages,
                done.admin_mac,
                done.filters_cleared
            );
            true
        }
        Err(e) => {
            vf_line!(
                ivf,
                dev_warn,
                "at {}: the PF did not drop the guest's filters: {}\n",
                when.name(),
                Msg(e)
            );
            false
        }
    }
}
