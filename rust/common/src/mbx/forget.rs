// SPDX-License-Identifier: GPL-2.0

//! Making the PF forget what a VF's guest asked for, through the VF's own
//! mailbox, exactly as a VF driver starts over.
//!
//! A VF reset (FLR or the VF's CTRL.RST) makes the PF drivers drop most of
//! a guest's filters, not all: igb zeroes its copy of the VF's MAC but
//! leaves the VF's receive-address entry (RAR) valid, and keeps the extra
//! unicast filters (MAC filter ADD) a guest added. The NIC's switch then
//! still delivers the guest's MAC to the closed VF instead of the wire: the
//! source host loses the guest after it moved. The fix is the VF driver's
//! own start: CTRL.RST, then RESET, which makes the PF rewrite the VF's RAR
//! with the MAC it now holds (none, unless the administrator set one) and
//! clear its VLANs and multicast; then a clear of the extra unicast
//! filters. Nothing the administrator set changes: the PF re-applies the
//! port VLAN and an administrator's MAC on RESET itself.

use super::super::bits::Ctrl;
use super::super::hal::RegIo;
use super::super::ids::Family;
use super::super::regs::RegMap;
use super::proto::{msg, Message};
use super::vf::{MbxError, VfMailbox};

/// A valid unicast address for the clear request: igb refuses a filter
/// request whose address is not valid, even a clear, which uses none.
pub const CLEAR_ADDRESS: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

/// What a [`forget`] did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// The PF answered RESET with a MAC: the administrator's, which stays.
    pub admin_mac: bool,
    /// The extra unicast filters were cleared (not asked when the PF would
    /// refuse: an administrator's MAC on an untrusted VF, whose guest could
    /// add none).
    pub filters_cleared: bool,
    /// Mailbox messages sent.
    pub messages: u32,
}

/// The request that clears every extra unicast filter of the VF: igb's
/// SET_MAC_ADDR with info CLEAR, ixgbe's SET_MACVLAN with index 0.
pub fn clear_filters_message(family: Family) -> Message {
    let (a, b) = super::proto::mac_words(&CLEAR_ADDRESS);
    let info = match family {
        Family::Igb => msg::word0(msg::SET_MAC_ADDR, msg::IGB_MAC_FILTER_CLEAR),
        Family::Ixgbe => msg::word0(msg::SET_PROMISC_OR_MACVLAN, 0),
    };
    Message::new(&[info, a, b])
}

/// Resets the VF behind `io` and asks its PF to drop every filter a guest
/// set. `trusted`: the administrator trusts the VF (its guest may have added
/// filters even under an administrator's MAC).
pub fn forget(
    io: &mut impl RegIo,
    map: &RegMap,
    family: Family,
    trusted: bool,
) -> Result<Forgotten, MbxError> {
    let ctrl = io.read32(map.ctrl);
    io.write32(map.ctrl, Ctrl(ctrl).with_rst().0);
    let mut mbx = VfMailbox::new(io, map);
    mbx.wait_reset_done()?;
    let mut done = Forgotten::default();
    // ACK carries the MAC the PF keeps (the administrator's); NACK says it
    // keeps none: the guest's is forgotten.
    let reply = mbx.exchange(&Message::reset())?;
    done.admin_mac = !msg::is_nack(reply[0]);
    done.messages = 1;
    if !done.admin_mac || trusted {
        mbx.exchange(&clear_filters_message(family))?;
        done.messages += 1;
        done.filters_cleared = true;
    }
    Ok(done)
}
