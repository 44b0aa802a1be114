// SPDX-License-Identifier: GPL-2.0

//! `mbx::forget` against a model of igb's PF side: what the PF holds for
//! the VF after a guest left, before and after.

use ivf_common::bits::Ctrl;
use ivf_common::hal::RegIo;
use ivf_common::ids::Family;
use ivf_common::mbx::forget::{clear_filters_message, CLEAR_ADDRESS};
use ivf_common::mbx::{forget, mac_of, mac_words, msg, Forgotten, MbxError};
use ivf_common::regs::IGB;

mod support;
use support::mbx::Mailbox;

/// The PF side of igb's mailbox for one VF, as far as a forget goes.
struct ModelPf {
    admin_mac: Option<[u8; 6]>,
    trusted: bool,
    /// The VF's MAC as the PF holds it, and whether its RAR is valid.
    vf_mac: Option<[u8; 6]>,
    rar_valid: bool,
    filters: Vec<[u8; 6]>,
    vlans: Vec<u16>,
    cts: bool,
    mbx: Mailbox,
    sent: Vec<u32>,
}

impl Default for ModelPf {
    fn default() -> Self {
        ModelPf {
            admin_mac: None,
            trusted: false,
            vf_mac: None,
            rar_valid: false,
            filters: Vec::new(),
            vlans: Vec::new(),
            cts: false,
            mbx: Mailbox::new(&IGB),
            sent: Vec::new(),
        }
    }
}

impl ModelPf {
    fn reply(&mut self, w0: u32) {
        let mut words = self.mbx.mem;
        words[0] = w0;
        self.mbx.ack();
        self.mbx.reply(words);
    }

    fn request(&mut self) {
        let w0 = self.mbx.mem[0];
        self.sent.push(w0);
        match (msg::kind(w0), msg::info(w0)) {
            (msg::RESET, _) => {
                // igb_vf_reset_msg: VLANs and multicast dropped, the
                // RAR rewritten with the MAC the PF holds.
                self.vlans.clear();
                self.cts = true;
                self.rar_valid = self.vf_mac.is_some();
                match self.vf_mac {
                    Some(m) => {
                        let (a, b) = mac_words(&m);
                        self.mbx.mem[1] = a;
                        self.mbx.mem[2] = b;
                        self.reply(msg::RESET | msg::ACK);
                    }
                    None => self.reply(msg::RESET | msg::NACK),
                }
            }
            (msg::SET_MAC_ADDR, msg::IGB_MAC_FILTER_CLEAR) => {
                let valid = mac_of(self.mbx.mem[1], self.mbx.mem[2]) == CLEAR_ADDRESS;
                if !self.cts || !valid || (self.admin_mac.is_some() && !self.trusted) {
                    self.reply(msg::SET_MAC_ADDR | msg::NACK);
                } else {
                    self.filters.clear();
                    self.reply(msg::SET_MAC_ADDR | msg::ACK);
                }
            }
            _ => self.reply(w0 | msg::NACK),
        }
    }
}

impl RegIo for ModelPf {
    fn read32(&mut self, off: u32) -> u32 {
        self.mbx.read(off).unwrap_or(0)
    }

    fn write32(&mut self, off: u32, value: u32) {
        if off == IGB.ctrl && Ctrl(value).rst() {
            // The PF's reset event: its copy of the MAC goes unless the
            // administrator set it; the RAR stays as it was.
            self.vf_mac = self.admin_mac;
            self.cts = false;
        } else if self.mbx.write(off, value) {
            self.request();
        }
    }

    fn delay_us(&mut self, _us: u32) {}
}

const GUEST: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
const ADMIN: [u8; 6] = [0x52, 0x54, 0, 0, 0, 7];

fn guest_left(admin_mac: Option<[u8; 6]>, trusted: bool) -> ModelPf {
    ModelPf {
        admin_mac,
        trusted,
        vf_mac: Some(admin_mac.unwrap_or(GUEST)),
        rar_valid: true,
        filters: vec![[0x02, 9, 9, 9, 9, 9]],
        vlans: vec![100, 200],
        cts: true,
        ..ModelPf::default()
    }
}

#[test]
fn the_guests_mac_filters_and_vlans_are_dropped() {
    let mut pf = guest_left(None, false);
    let done = forget(&mut pf, &IGB, Family::Igb, false).unwrap();
    assert_eq!(
        done,
        Forgotten {
            admin_mac: false,
            filters_cleared: true,
            messages: 2
        }
    );
    assert!(!pf.rar_valid, "the RAR still holds the guest's MAC");
    assert!(pf.filters.is_empty() && pf.vlans.is_empty());
}

#[test]
fn an_administrators_mac_stays() {
    // Untrusted: the guest could add no filter, and the PF would refuse
    // (and warn about) a clear, so none is sent.
    let mut pf = guest_left(Some(ADMIN), false);
    pf.filters.clear();
    let done = forget(&mut pf, &IGB, Family::Igb, false).unwrap();
    assert_eq!(
        (done.admin_mac, done.filters_cleared, done.messages),
        (true, false, 1)
    );
    assert_eq!((pf.vf_mac, pf.rar_valid), (Some(ADMIN), true));
    // Trusted: its guest may have added filters; they go, the MAC stays.
    let mut pf = guest_left(Some(ADMIN), true);
    let done = forget(&mut pf, &IGB, Family::Igb, true).unwrap();
    assert_eq!((done.admin_mac, done.filters_cleared), (true, true));
    assert!(pf.filters.is_empty());
    assert_eq!((pf.vf_mac, pf.rar_valid), (Some(ADMIN), true));
}

#[test]
fn the_sequence_is_a_vf_drivers_start() {
    let mut pf = guest_left(None, false);
    forget(&mut pf, &IGB, Family::Igb, false).unwrap();
    assert_eq!(
        pf.sent,
        [
            msg::RESET,
            msg::word0(msg::SET_MAC_ADDR, msg::IGB_MAC_FILTER_CLEAR)
        ]
    );
    let ixgbe = clear_filters_message(Family::Ixgbe);
    assert_eq!(
        (ixgbe.kind(), msg::info(ixgbe.words[0])),
        (msg::SET_PROMISC_OR_MACVLAN, 0),
        "ixgbe clears its MACVLANs with index 0"
    );
}

#[test]
fn a_silent_pf_is_an_error_not_a_hang() {
    // Its registers keep what the VF writes, and nothing answers.
    let mut silent = support::io::Regs::default();
    let e = forget(&mut silent, &IGB, Family::Igb, false).unwrap_err();
    assert!(
        matches!(
            e,
            MbxError::Timeout {
                kind: msg::RESET,
                ..
            }
        ),
        "{e:?}"
    );
}
