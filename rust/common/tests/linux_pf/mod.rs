// SPDX-License-Identifier: GPL-2.0

//! The PF side of one VF's mailbox as Linux's PF drivers answer it
//! (`igb_rcv_msg_from_vf` in igb_main.c, `ixgbe_rcv_msg_from_vf` in
//! ixgbe_sriov.c), behind the VF's mailbox registers.
//!
//! What matters for a replayed log, as those functions do it:
//!
//! * the PF reads every posted message, and reading it acknowledges it
//!   (PFACK), whatever it holds;
//! * a message whose word 0 already carries ACK or NACK is "a message we
//!   already processed": the PF does nothing more, so no reply (PFSTS)
//!   ever comes and the VF times out;
//! * RESET is word 0 equal to the type, nothing else; before a RESET every
//!   request is NACKed;
//! * each request is checked as the drivers check it, and answered with
//!   its own word 0 plus ACK or NACK, and CTS.
//!
//! The limits are Linux's own constants, written out here rather than
//! taken from the crate, so that the model does not agree with the code
//! under test by construction. Shared by the crate's tests and the
//! `stream_decode` fuzz target (`#[path]`).

#![allow(dead_code)]

use std::collections::BTreeSet;

use ivf_common::hal::RegIo;
use ivf_common::ids::Family;
use ivf_common::mbx::{ctrl, mac_of, msg, MBX_WORDS};
use ivf_common::regs::{regmap, RegMap};

/// `IXGBE_MAX_VF_MC_ENTRIES`, `IGB_MAX_VF_MC_ENTRIES`.
const MAX_VF_MC_ENTRIES: u32 = 30;
/// ixgbe: `ETH_MIN_MTU` .. `IXGBE_MAX_JUMBO_FRAME_SIZE` (ixgbe_set_vf_lpe).
const IXGBE_LPE: core::ops::RangeInclusive<u32> = 68..=9728;
/// igb: `MAX_JUMBO_FRAME_SIZE` (igb_set_vf_rlpml clamps to it).
const IGB_MAX_JUMBO_FRAME_SIZE: u32 = 0x3f00;
/// `ixgbe_mbox_api_*`: 1.0 = 0, 2.0 = 1, 1.1 = 2, ... 1.5 = 6, 1.6 = 7,
/// 1.7 = 8. Linux's PF takes 1.4 then 1.6 and 1.7; 1.5 is ESX's, taken
/// here too (the crate's other tests negotiate it).
const API_20: u32 = 1;
const API_12: u32 = 3;
const API_13: u32 = 4;
const API_17: u32 = 8;
/// `IXGBEVF_XCAST_MODE_PROMISC`, the last mode.
const XCAST_PROMISC: u32 = 3;
/// igb SET_MAC_ADDR info: `E1000_VF_MAC_FILTER_CLR`, `E1000_VF_MAC_FILTER_ADD`.
const IGB_MAC_FILTER_CLR: u32 = 1;
const IGB_MAC_FILTER_ADD: u32 = 2;
/// igb SET_PROMISC info: `E1000_VF_SET_PROMISC_MULTICAST` (the only flag
/// igb_set_vf_promisc handles; any other is -EINVAL).
const IGB_PROMISC_MULTICAST: u32 = 2;

/// What the PF keeps for the VF.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PfView {
    /// Clear to send: a RESET was done.
    pub cts: bool,
    /// Negotiated API (ixgbe).
    pub api: u32,
    /// The VF's MAC.
    pub mac: Option<[u8; 6]>,
    /// Multicast hashes.
    pub mc: Vec<u16>,
    /// VLANs.
    pub vlans: BTreeSet<u16>,
    /// Maximum frame, as applied.
    pub max_frame: Option<u32>,
    /// ixgbe xcast mode, igb promiscuous flags.
    pub xcast: Option<u32>,
    /// Extra unicast filters (ixgbe MACVLAN, igb MAC filter ADD).
    pub filters: Vec<[u8; 6]>,
}

/// The VF's mailbox registers with a Linux PF of `family` answering.
pub struct LinuxPf {
    /// The PF driver.
    pub family: Family,
    map: &'static RegMap,
    mem: [u32; MBX_WORDS],
    ctrl: u32,
    /// What the PF holds.
    pub pf: PfView,
    /// Word 0 of every message the PF read, in order.
    pub requests: Vec<u32>,
    /// Messages read and never answered.
    pub unanswered: u32,
}

/// `is_valid_ether_addr`: neither multicast nor zero.
pub fn is_valid_ether_addr(m: &[u8; 6]) -> bool {
    m[0] & 1 == 0 && *m != [0; 6]
}

impl LinuxPf {
    /// A VF just enabled: no MAC, no CTS.
    pub fn new(family: Family) -> LinuxPf {
        LinuxPf {
            family,
            map: regmap(family),
            mem: [0; MBX_WORDS],
            ctrl: 0,
            pf: PfView::default(),
            requests: Vec::new(),
            unanswered: 0,
        }
    }

    fn reply(&mut self, words: [u32; MBX_WORDS]) {
        self.mem = words;
        self.ctrl |= ctrl::PFSTS;
    }

    fn receive(&mut self) {
        let m = self.mem;
        self.requests.push(m[0]);
        // The PF's read of the message is its acknowledgement.
        self.ctrl |= ctrl::PFACK;
        if m[0] & (msg::ACK | msg::NACK) != 0 {
            // "this is a message we already processed, do nothing"
            self.unanswered += 1;
            return;
        }
        if m[0] == msg::RESET {
            let mac = self.pf.mac;
            self.pf = PfView {
                cts: true,
                mac,
                ..PfView::default()
            };
            let mut r = [0u32; MBX_WORDS];
            r[0] = match mac {
                Some(a) => {
                    r[1] = u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
                    r[2] = u32::from_le_bytes([a[4], a[5], 0, 0]);
                    msg::RESET | msg::ACK
                }
                None => msg::RESET | msg::NACK,
            };
            self.reply(r);
            return;
        }
        if !self.pf.cts {
            let mut r = [0u32; MBX_WORDS];
            r[0] = m[0] | msg::NACK;
            self.reply(r);
            return;
        }
        let kind = m[0] & msg::TYPE_MASK;
        let info = (m[0] >> msg::INFO_SHIFT) & 0xff;
        let ok = match self.family {
            Family::Ixgbe => self.ixgbe(kind, info, &m),
            Family::Igb => self.igb(kind, info, &m),
        };
        let mut r = m;
        r[0] = m[0] | if ok { msg::ACK } else { msg::NACK } | msg::CTS;
        self.reply(r);
    }

    fn multicast(&mut self, info: u32, m: &[u32; MBX_WORDS]) -> bool {
        let n = info.min(MAX_VF_MC_ENTRIES) as usize;
        self.pf.mc = (0..n)
            .map(|i| (m[1 + i / 2] >> (16 * (i % 2))) as u16)
            .collect();
        true
    }

    fn vlan(&mut self, info: u32, m: &[u32; MBX_WORDS]) -> bool {
        let vid = (m[1] & 0xfff) as u16;
        if info != 0 {
            self.pf.vlans.insert(vid);
        } else {
            self.pf.vlans.remove(&vid);
        }
        true
    }

    fn ixgbe(&mut self, kind: u32, info: u32, m: &[u32; MBX_WORDS]) -> bool {
        let pf = &mut self.pf;
        let mac = mac_of(m[1], m[2]);
        match kind {
            msg::SET_MAC_ADDR if is_valid_ether_addr(&mac) => {
                pf.mac = Some(mac);
                true
            }
            msg::SET_MULTICAST => self.multicast(info, m),
            msg::SET_VLAN => self.vlan(info, m),
            msg::SET_LPE if IXGBE_LPE.contains(&m[1]) => {
                pf.max_frame = Some(m[1]);
                true
            }
            // ixgbe_set_vf_macvlan_msg: index 0 clears, index 1 clears and
            // sets, n > 1 adds; a filter needs a valid address.
            msg::SET_PROMISC_OR_MACVLAN => {
                if info > 0 && !is_valid_ether_addr(&mac) {
                    return false;
                }
                if info <= 1 {
                    pf.filters.clear();
                }
                if info > 0 {
                    pf.filters.push(mac);
                }
                true
            }
            // ixgbe_negotiate_vf_api: every API but 2.0 (Solaris).
            msg::API_NEGOTIATE if m[1] <= API_17 && m[1] != API_20 => {
                pf.api = m[1];
                true
            }
            msg::GET_QUEUES => (API_20..=API_17).contains(&pf.api),
            // ixgbe_update_vf_xcast_mode: 1.2 without PROMISC, 1.3 and on.
            msg::UPDATE_XCAST_MODE => {
                let gate = match pf.api {
                    API_12 => m[1] != XCAST_PROMISC,
                    a => (API_13..=API_17).contains(&a),
                };
                if gate && m[1] <= XCAST_PROMISC {
                    pf.xcast = Some(m[1]);
                }
                gate && m[1] <= XCAST_PROMISC
            }
            _ => false,
        }
    }

    fn igb(&mut self, kind: u32, info: u32, m: &[u32; MBX_WORDS]) -> bool {
        let pf = &mut self.pf;
        let mac = mac_of(m[1], m[2]);
        match kind {
            msg::SET_MAC_ADDR => match info {
                0 if is_valid_ether_addr(&mac) => {
                    pf.mac = Some(mac);
                    true
                }
                IGB_MAC_FILTER_CLR => {
                    pf.filters.clear();
                    true
                }
                IGB_MAC_FILTER_ADD if is_valid_ether_addr(&mac) => {
                    pf.filters.push(mac);
                    true
                }
                _ => false,
            },
            // igb_set_vf_promisc: flags other than MULTICAST are -EINVAL.
            msg::SET_PROMISC_OR_MACVLAN => {
                let ok = info & !IGB_PROMISC_MULTICAST == 0;
                if ok {
                    pf.xcast = Some(info);
                }
                ok
            }
            msg::SET_MULTICAST => self.multicast(info, m),
            msg::SET_VLAN => self.vlan(info, m),
            // igb_set_vf_rlpml: clamped, always done.
            msg::SET_LPE => {
                pf.max_frame = Some((m[1] as i32).min(IGB_MAX_JUMBO_FRAME_SIZE as i32) as u32);
                true
            }
            _ => false,
        }
    }
}

impl RegIo for LinuxPf {
    fn read32(&mut self, off: u32) -> u32 {
        if off == self.map.mbx_ctrl {
            let v = self.ctrl;
            self.ctrl &= !ctrl::R2C;
            v
        } else if off >= self.map.mbx_mem && off < self.map.mbx_mem + 4 * MBX_WORDS as u32 {
            self.mem[((off - self.map.mbx_mem) / 4) as usize]
        } else {
            0
        }
    }

    fn write32(&mut self, off: u32, v: u32) {
        if off == self.map.mbx_ctrl {
            if v & ctrl::VFU != 0 {
                self.ctrl |= ctrl::VFU;
            }
            if v & (ctrl::REQ | ctrl::ACK) != 0 {
                self.ctrl &= !ctrl::VFU;
            }
            if v & ctrl::REQ != 0 {
                self.receive();
            }
        } else if off >= self.map.mbx_mem && off < self.map.mbx_mem + 4 * MBX_WORDS as u32 {
            self.mem[((off - self.map.mbx_mem) / 4) as usize] = v;
        }
    }

    fn delay_us(&mut self, _: u32) {}
}
