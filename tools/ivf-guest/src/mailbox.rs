// SPDX-License-Identifier: GPL-2.0

//! The guest's PF mailbox: the shared VF driver ([`VfMailbox`], igbvf's
//! sequence) over the VF's BAR0, and the few messages the guest sends.

use std::time::Duration;

use ivf_common::hal::RegIo;
use ivf_common::mbx::{mac_of, msg, Message, VfMailbox, VlanOp};
use ivf_common::regs::IGB;
use ivf_vfio::Bar;

/// A failed mailbox exchange: the shared driver's error.
pub use ivf_common::mbx::MbxError as MailboxError;

/// BAR0 as the shared driver reads it; polls sleep.
struct BarIo<'b>(&'b Bar);

impl RegIo for BarIo<'_> {
    fn read32(&mut self, off: u32) -> u32 {
        self.0.read32(off as usize)
    }

    fn write32(&mut self, off: u32, value: u32) {
        self.0.write32(off as usize, value);
    }

    fn delay_us(&mut self, us: u32) {
        std::thread::sleep(Duration::from_micros(u64::from(us)));
    }
}

/// Sends `m`; `Ok` when the PF did it.
fn request(bar: &Bar, m: &Message) -> Result<(), MailboxError> {
    VfMailbox::new(&mut BarIo(bar), &IGB)
        .exchange(m)
        .map(|_| ())
}

/// After CTRL.RST: waits for the PF's reset to finish, sends RESET and
/// returns the MAC address of the reply; `None` when the PF has none for
/// this VF (a NACKed RESET: the VF must pick one and SET_MAC_ADDR it).
pub(crate) fn reset(bar: &Bar) -> Result<Option<[u8; 6]>, MailboxError> {
    let mut io = BarIo(bar);
    let mut mbx = VfMailbox::new(&mut io, &IGB);
    mbx.wait_reset_done()?;
    let r = mbx.exchange(&Message::reset())?;
    if msg::is_nack(r[0]) {
        return Ok(None);
    }
    Ok(Some(mac_of(r[1], r[2])))
}

/// SET_MAC_ADDR: asks the PF to filter `mac` for this VF.
pub(crate) fn set_mac(bar: &Bar, mac: [u8; 6]) -> Result<(), MailboxError> {
    request(bar, &Message::set_mac(&mac))
}

/// igb's MAC filter ADD: asks the PF to deliver `mac` too (an extra
/// unicast filter, as a macvlan on the guest's netdev asks).
pub(crate) fn add_mac_filter(bar: &Bar, mac: [u8; 6]) -> Result<(), MailboxError> {
    request(bar, &Message::igb_add_mac_filter(&mac))
}

/// SET_MULTICAST: asks the PF to accept the multicast `hashes` (at most 30).
pub(crate) fn set_multicast(bar: &Bar, hashes: &[u16]) -> Result<(), MailboxError> {
    request(bar, &Message::set_multicast(hashes))
}

/// SET_VLAN: asks the PF to add VLAN `vid` for this VF.
pub(crate) fn add_vlan(bar: &Bar, vid: u16) -> Result<(), MailboxError> {
    request(bar, &Message::set_vlan(vid, VlanOp::Add))
}
