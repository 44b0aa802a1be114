// SPDX-License-Identifier: GPL-2.0

//! `mbx::forget` against a model of igb's PF side: what the PF holds for
//! the VF after a guest left, before and after.

use ivf_common::bits::Ctrl;
use ivf_common::hal::RegIo;
use ivf_common::ids::Family;
use ivf_common::mbx::forget::{clear_filters_message, CLEAR_ADDRESS};
use ivf_common::mbx::{ctrl, forget, mac_of, mac_words, msg, Forgotten, MbxError, MBX_WORDS};
use ivf_common::regs::IGB;

/// The PF side of igb's mailbox for one VF, as far as a forget goes.
#[derive(Default)]
struct ModelPf {
    admin_mac: Option<[u8; 6]>,
    trusted: bool,
    /// The VF's MAC as the PF holds it, and whether its RAR is valid.
    vf_mac: Option<[u8; 6]>,
    rar_valid: bool,
    filters: Vec<[u8; 6]>,
    vlans: Vec<u16>,
    cts: bool,
    ctrl_bits: u32,
    mem: [u32; MBX_WORDS],
    sent: Vec<u32>,
}

impl ModelPf {
    fn reply(&mut self, w0: u32) {
        self.mem[0] = w0;
        self.ctrl_bits |= ctrl::PFACK | ctrl::PFSTS;
    }

    fn request(&mut self) {
        let w0 = self.mem[0];
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
                        self.mem[1] = a;
                        self.mem[2] = b;
                        self.reply(msg::RESET | msg::ACK);
                    }
                    None => self.reply(msg::RESET | msg::NACK),
                }
            }
            (msg::SET_MAC_ADDR, msg::IGB_MAC_FILTER_CLEAR) => {
                let valid = mac_of(self.mem[1], self.mem[2]) == CLEAR_ADDRESS;
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
        if off == IGB.mbx_ctrl {
            let v = self.ctrl_bits | ctrl::VFU;
            self.ctrl_bits &= !ctrl::R2C;
            v
        } else if off >= IGB.mbx_mem && off < IGB.mbx_mem + 4 * MBX_WORDS as u32 {
            self.mem[((off - IGB.mbx_mem) / 4) as usize]
        } else {
            0
        }
    }

    fn write32(&mut self, off: u32, value: u32) {
        if off == IGB.ctrl && Ctrl(value).rst() {
            // The PF's reset event: its copy of the MAC goes unless the
            // administrator set it; the RAR stays as it was.
            self.vf_mac = self.admin_mac;
            self.cts = false;
        } else if off == IGB.mbx_ctrl && value & ctrl::REQ != 0 {
            self.request();
        } else if off >= IGB.mbx_mem && off < IGB.mbx_mem + 4 * MBX_WORDS as u32 {
            self.mem[((off - IGB.mbx_mem) / 4) as usize] = value;
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
    struct Silent;
    impl RegIo for Silent {
        fn read32(&mut self, off: u32) -> u32 {
            if off == IGB.mbx_ctrl {
                ctrl::VFU
            } else {
                0
            }
        }
        fn write32(&mut self, _off: u32, _value: u32) {}
        fn delay_us(&mut self, _us: u32) {}
    }
    let e = forget(&mut Silent, &IGB, Family::Igb, false).unwrap_err();
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
