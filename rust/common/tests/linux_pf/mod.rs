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
//!   its own word 0 plus ACK or NACK, and CTS;
//! * ixgbe, as Linux 7.3 has it: API 1.0 to 1.4, 1.6 and 1.7 (not 1.5,
//!   not 2.0), FEATURES_NEGOTIATE, the link-state queries, IPsec SAs of a
//!   trusted VF, MACVLANs from a pool all VFs share (index 0 or 1 clears
//!   them all first), the xcast mode and the VMOLR bits its handlers
//!   touch, kept across the VF's RESET as the PF keeps them.
//!
//! The limits are Linux's own constants, written out here rather than
//! taken from the crate, so that the model does not agree with the code
//! under test by construction. Shared by the crate's tests and the
//! `stream_decode` fuzz target (`#[path]`); its includer has the tests'
//! `support` module too (the mailbox registers: `support/mbx.rs`).

#![allow(dead_code)]

use std::collections::BTreeSet;

use ivf_common::hal::RegIo;
use ivf_common::ids::Family;
use ivf_common::mbx::{mac_of, msg, Snoop, MBX_WORDS};
use ivf_common::regs::{regmap, RegMap};

use crate::support::mbx::Mailbox;

/// `IXGBE_MAX_VF_MC_ENTRIES`, `IGB_MAX_VF_MC_ENTRIES`.
const MAX_VF_MC_ENTRIES: u32 = 30;
/// ixgbe: `ETH_MIN_MTU` .. `IXGBE_MAX_JUMBO_FRAME_SIZE` (ixgbe_set_vf_lpe).
const IXGBE_LPE: core::ops::RangeInclusive<u32> = 68..=9728;
/// `ETH_FRAME_LEN`, `ETH_FCS_LEN`, `ETH_HLEN`.
const ETH_FRAME_LEN: u32 = 1514;
const ETH_FCS_LEN: u32 = 4;
const ETH_HLEN: u32 = 14;
/// igb: `MAX_JUMBO_FRAME_SIZE` (igb_set_vf_rlpml clamps to it).
const IGB_MAX_JUMBO_FRAME_SIZE: u32 = 0x3f00;
/// `enum ixgbe_pfvf_api_rev` (ixgbe_mbx.h): 1.0 = 0, 2.0 = 1, 1.1 = 2, ...
/// 1.5 = 6, 1.6 = 7, 1.7 = 8.
pub const API_10: u32 = 0;
pub const API_20: u32 = 1;
pub const API_11: u32 = 2;
pub const API_12: u32 = 3;
pub const API_13: u32 = 4;
pub const API_14: u32 = 5;
pub const API_15: u32 = 6;
pub const API_16: u32 = 7;
pub const API_17: u32 = 8;
/// ixgbe message types past the shared ones (ixgbe_mbx.h).
pub const GET_RETA: u32 = 0x0a;
pub const GET_RSS_KEY: u32 = 0x0b;
pub const IPSEC_ADD: u32 = 0x0d;
pub const IPSEC_DEL: u32 = 0x0e;
pub const GET_LINK_STATE: u32 = 0x10;
pub const GET_PF_LINK_STATE: u32 = 0x11;
pub const FEATURES_NEGOTIATE: u32 = 0x12;
/// `IXGBEVF_PF_SUP_IPSEC`, `IXGBEVF_PF_SUP_ESX_MBX`; the PF's
/// `IXGBE_SUPPORTED_FEATURES` is IPSEC alone.
pub const SUP_IPSEC: u32 = 1 << 0;
pub const SUP_ESX_MBX: u32 = 1 << 1;
/// `enum ixgbevf_xcast_modes`.
pub const XCAST_NONE: u32 = 0;
pub const XCAST_MULTI: u32 = 1;
pub const XCAST_ALLMULTI: u32 = 2;
pub const XCAST_PROMISC: u32 = 3;
/// `IXGBE_VMOLR_*` (ixgbe_type.h).
pub const VMOLR_UPE: u32 = 0x0040_0000;
pub const VMOLR_VPE: u32 = 0x0080_0000;
pub const VMOLR_AUPE: u32 = 0x0100_0000;
pub const VMOLR_ROMPE: u32 = 0x0200_0000;
pub const VMOLR_BAM: u32 = 0x0800_0000;
pub const VMOLR_MPE: u32 = 0x1000_0000;
/// `XFRM_DEV_OFFLOAD_IN`: the only SA direction a VF may offload.
pub const XFRM_DEV_OFFLOAD_IN: u32 = 1;
/// igb SET_MAC_ADDR info: `E1000_VF_MAC_FILTER_CLR`, `E1000_VF_MAC_FILTER_ADD`.
const IGB_MAC_FILTER_CLR: u32 = 1;
const IGB_MAC_FILTER_ADD: u32 = 2;
/// igb SET_PROMISC info: `E1000_VF_SET_PROMISC_MULTICAST` (the only flag
/// igb_set_vf_promisc handles; any other is -EINVAL).
const IGB_PROMISC_MULTICAST: u32 = 2;
/// `hw->mac.num_rar_entries - (IXGBE_MAX_PF_MACVLANS + 1 + num_vfs)` on an
/// 82599 (128 RAR entries) with 8 VFs: the MACVLAN entries all the VFs
/// share (`ixgbe_alloc_vf_macvlans`).
pub const IXGBE_VF_MACVLANS_82599_8VFS: usize = 128 - (15 + 1 + 8);

/// The ixgbe MAC generations whose PF behaviour differs for a VF.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MacType {
    /// `ixgbe_mac_82599EB`: SET_LPE tied to the PF's MTU, no VF PROMISC.
    M82599,
    /// X540 and later (not E610): PROMISC allowed when the PF is.
    X540,
    /// `ixgbe_mac_e610`: GET_PF_LINK_STATE answered.
    E610,
}

/// What the PF keeps for the VF and voids at its RESET.
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
    /// igb promiscuous flags (ixgbe's mode is [`LinuxPf::xcast_mode`]).
    pub xcast: Option<u32>,
    /// Extra unicast filters (ixgbe MACVLAN, igb MAC filter ADD).
    pub filters: Vec<[u8; 6]>,
    /// ixgbe: IPsec SAs the VF offloaded (their handles).
    pub ipsec_sas: Vec<u32>,
}

/// The VF's mailbox registers with a Linux PF of `family` answering.
pub struct LinuxPf {
    /// The PF driver.
    pub family: Family,
    map: &'static RegMap,
    mbx: Mailbox,
    /// What the PF holds.
    pub pf: PfView,
    /// Word 0 of every message the PF read, in order.
    pub requests: Vec<u32>,
    /// Messages read and never answered.
    pub unanswered: u32,
    /// ixgbe: the MAC generation.
    pub mac_type: MacType,
    /// The administrator trusts the VF (`vfinfo[].trusted`).
    pub trusted: bool,
    /// The administrator set the VF's MAC (`pf_set_mac`).
    pub pf_set_mac: bool,
    /// ixgbe: the PF's own MTU (82599's SET_LPE depends on it).
    pub pf_mtu: u32,
    /// ixgbe: the PF is promiscuous (FCTRL.UPE), which VF PROMISC needs.
    pub pf_promisc: bool,
    /// ixgbe: `IXGBE_FLAG2_VF_IPSEC_ENABLED`.
    pub vf_ipsec: bool,
    /// ixgbe: `vfinfo[].xcast_mode`, set to NONE at SR-IOV enable and
    /// changed only by UPDATE_XCAST_MODE: a RESET leaves it.
    pub xcast_mode: u32,
    /// ixgbe: the pool's VMOLR (the bits the mailbox handlers touch).
    pub vmolr: u32,
    /// ixgbe: free entries of the MACVLAN list all VFs share
    /// (`adapter->vf_mvs`).
    pub macvlans_free: usize,
    /// When set, sees every access as the trap does.
    pub snoop: Option<Snoop>,
    next_sa: u32,
}

/// `is_valid_ether_addr`: neither multicast nor zero.
pub fn is_valid_ether_addr(m: &[u8; 6]) -> bool {
    m[0] & 1 == 0 && *m != [0; 6]
}

impl LinuxPf {
    /// A VF just enabled: no MAC, no CTS. ixgbe: an X540 with a 1500-byte
    /// MTU, the VF untrusted, a pool of MACVLANs as an 82599's with 8 VFs.
    pub fn new(family: Family) -> LinuxPf {
        LinuxPf {
            family,
            map: regmap(family),
            mbx: Mailbox::new(regmap(family)),
            pf: PfView::default(),
            requests: Vec::new(),
            unanswered: 0,
            mac_type: MacType::X540,
            trusted: false,
            pf_set_mac: false,
            pf_mtu: 1500,
            pf_promisc: false,
            vf_ipsec: false,
            xcast_mode: XCAST_NONE,
            vmolr: 0,
            macvlans_free: IXGBE_VF_MACVLANS_82599_8VFS,
            snoop: None,
            next_sa: 0,
        }
    }

    /// What an ixgbe PF's mailbox handlers leave for the VF: the view, its
    /// xcast mode and its VMOLR bits.
    pub fn ixgbe_state(&self) -> (PfView, u32, u32) {
        (self.pf.clone(), self.xcast_mode, self.vmolr)
    }

    fn reply(&mut self, words: [u32; MBX_WORDS]) {
        self.mbx.reply(words);
    }

    fn receive(&mut self) {
        let m = self.mbx.mem;
        self.requests.push(m[0]);
        // The PF's read of the message is its acknowledgement.
        self.mbx.ack();
        if m[0] & (msg::ACK | msg::NACK) != 0 {
            // "this is a message we already processed, do nothing"
            self.unanswered += 1;
            return;
        }
        if m[0] == msg::RESET {
            self.reset();
            let mac = self.pf.mac;
            let mut r = [0u32; MBX_WORDS];
            // ixgbe_vf_reset_msg: ACK with the MAC only when the
            // administrator set it; igb_vf_reset_msg: when it has one
            // (igb forgot a MAC the VF set).
            let admin = match self.family {
                Family::Ixgbe => self.pf_set_mac,
                Family::Igb => true,
            };
            r[0] = match mac {
                Some(a) if admin => {
                    r[1] = u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
                    r[2] = u32::from_le_bytes([a[4], a[5], 0, 0]);
                    msg::RESET | msg::ACK
                }
                _ => msg::RESET | msg::NACK,
            };
            self.reply(r);
            return;
        }
        if !self.pf.cts {
            // No CTS in this NACK: no handler ran.
            let mut r = [0u32; MBX_WORDS];
            r[0] = m[0] | msg::NACK;
            self.reply(r);
            return;
        }
        let kind = m[0] & msg::TYPE_MASK;
        let info = (m[0] >> msg::INFO_SHIFT) & 0xff;
        let mut r = m;
        let ok = match self.family {
            Family::Ixgbe => self.ixgbe(kind, info, &mut r),
            Family::Igb => self.igb(kind, info, &m),
        };
        r[0] = m[0] | if ok { msg::ACK } else { msg::NACK } | msg::CTS;
        self.reply(r);
    }

    /// The PF's side of the VF's RESET (`ixgbe_vf_reset_event`,
    /// `igb_vf_reset_event`).
    fn reset(&mut self) {
        let mac = match self.family {
            // ixgbe keeps `vf_mac_addresses` and re-installs it.
            Family::Ixgbe => self.pf.mac,
            // igb zeroes a MAC the administrator did not set.
            Family::Igb => self.pf.mac.filter(|_| self.pf_set_mac),
        };
        let filters = match self.family {
            // ixgbe_set_vf_macvlan(adapter, vf, 0, NULL)
            Family::Ixgbe => {
                self.macvlans_free += self.pf.filters.len();
                Vec::new()
            }
            // igb keeps the VF's MAC filters.
            Family::Igb => core::mem::take(&mut self.pf.filters),
        };
        let max_frame = self.pf.max_frame;
        self.pf = PfView {
            cts: true,
            mac,
            filters,
            max_frame: max_frame.filter(|_| self.family == Family::Ixgbe),
            ..PfView::default()
        };
        if self.family == Family::Ixgbe {
            // ixgbe_clear_vf_vlans, then VLAN 0 (no port VLAN) back.
            self.pf.vlans.insert(0);
            // ixgbe_set_vmolr(hw, vf, aupe): BAM, AUPE; then
            // ixgbe_set_rx_mode -> ixgbe_restore_vf_multicasts with no
            // hash: ROMPE off. MPE/UPE/VPE and xcast_mode stay.
            self.vmolr |= VMOLR_BAM | VMOLR_AUPE;
            self.vmolr &= !VMOLR_ROMPE;
        }
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

    /// `vfinfo[].vf_api` is one of `apis`.
    fn api_in(&self, apis: &[u32]) -> bool {
        apis.contains(&self.pf.api)
    }

    /// `ixgbe_rcv_msg_from_vf`'s switch, handler by handler
    /// (ixgbe_sriov.c, Linux 7.3); `r` is the reply's words.
    fn ixgbe(&mut self, kind: u32, info: u32, r: &mut [u32; MBX_WORDS]) -> bool {
        let m = *r;
        let mac = mac_of(m[1], m[2]);
        match kind {
            // ixgbe_set_vf_mac_addr (the info field is not looked at).
            msg::SET_MAC_ADDR => {
                if !is_valid_ether_addr(&mac) {
                    return false;
                }
                if self.pf_set_mac && !self.trusted && self.pf.mac != Some(mac) {
                    return false;
                }
                self.pf.mac = Some(mac);
                true
            }
            // ixgbe_set_vf_multicasts: at most 30, and ROMPE on.
            msg::SET_MULTICAST => {
                self.multicast(info, &m);
                self.vmolr |= VMOLR_ROMPE;
                true
            }
            // ixgbe_set_vf_vlan_msg: VLAN 0 is never removed.
            msg::SET_VLAN => {
                if m[1] & 0xfff == 0 && info == 0 {
                    return true;
                }
                self.vlan(info, &m)
            }
            msg::SET_LPE => self.ixgbe_lpe(m[1]),
            msg::SET_PROMISC_OR_MACVLAN => self.ixgbe_macvlan(info as usize, mac),
            // ixgbe_negotiate_vf_api: 1.0 to 1.4, 1.6, 1.7.
            msg::API_NEGOTIATE => {
                let ok = [API_10, API_11, API_12, API_13, API_14, API_16, API_17].contains(&m[1]);
                if ok {
                    self.pf.api = m[1];
                }
                ok
            }
            // ixgbe_get_vf_queues: 2.0, 1.1 to 1.4, 1.6, 1.7.
            msg::GET_QUEUES => {
                if !self.api_in(&[API_20, API_11, API_12, API_13, API_14, API_16, API_17]) {
                    return false;
                }
                r[1] = 2;
                r[2] = 2;
                r[3] = 0;
                r[4] = 0;
                true
            }
            // ixgbe_get_vf_reta, ixgbe_get_vf_rss_key: rss_query_enabled
            // is off by default (-EPERM).
            GET_RETA | GET_RSS_KEY => false,
            msg::UPDATE_XCAST_MODE => self.ixgbe_xcast(m[1], r),
            // ixgbe_get_vf_link_state: 1.2 to 1.4, 1.6, 1.7.
            GET_LINK_STATE => {
                if !self.api_in(&[API_12, API_13, API_14, API_16, API_17]) {
                    return false;
                }
                r[1] = 1;
                true
            }
            IPSEC_ADD => self.ipsec_add(r),
            IPSEC_DEL => self.ipsec_del(m[1]),
            // ixgbe_send_vf_link_status: 1.6, 1.7, an E610.
            GET_PF_LINK_STATE => {
                if !self.api_in(&[API_16, API_17]) || self.mac_type != MacType::E610 {
                    return false;
                }
                r[1] = 0x80; // IXGBE_LINK_SPEED_10GB_FULL
                r[2] = 1;
                true
            }
            // ixgbe_negotiate_vf_features: 1.7; IPsec is all it offers.
            FEATURES_NEGOTIATE => {
                if !self.api_in(&[API_17]) {
                    return false;
                }
                r[1] = m[1] & SUP_IPSEC;
                true
            }
            // "Unhandled Msg": -EIO.
            _ => false,
        }
    }

    /// ixgbe_set_vf_lpe.
    fn ixgbe_lpe(&mut self, max_frame: u32) -> bool {
        if !IXGBE_LPE.contains(&max_frame) {
            return false;
        }
        if self.mac_type == MacType::M82599 {
            let pf_max_frame = self.pf_mtu + ETH_HLEN;
            let modern = self.api_in(&[API_11, API_12, API_13, API_14, API_16, API_17]);
            let err = !(modern && pf_max_frame > ETH_FRAME_LEN)
                && (pf_max_frame > ETH_FRAME_LEN || max_frame > ETH_FRAME_LEN + ETH_FCS_LEN);
            if err {
                return false;
            }
        }
        self.pf.max_frame = Some(max_frame);
        true
    }

    /// ixgbe_set_vf_macvlan_msg and ixgbe_set_vf_macvlan: index 0 or 1
    /// clears every filter of the VF first; 1 and more then add one, from
    /// the pool all VFs share (-ENOSPC when it is empty, after the clear).
    fn ixgbe_macvlan(&mut self, index: usize, mac: [u8; 6]) -> bool {
        if self.pf_set_mac && !self.trusted && index > 0 {
            return false;
        }
        if index > 0 && !is_valid_ether_addr(&mac) {
            return false;
        }
        if index <= 1 {
            self.macvlans_free += self.pf.filters.len();
            self.pf.filters.clear();
        }
        if index == 0 {
            return true;
        }
        if self.macvlans_free == 0 {
            return false;
        }
        self.macvlans_free -= 1;
        self.pf.filters.push(mac);
        true
    }

    /// ixgbe_update_vf_xcast_mode.
    fn ixgbe_xcast(&mut self, requested: u32, r: &mut [u32; MBX_WORDS]) -> bool {
        match self.pf.api {
            API_12 if requested == XCAST_PROMISC => return false,
            API_12 | API_13 | API_14 | API_16 | API_17 => {}
            _ => return false,
        }
        let mut mode = requested;
        if mode > XCAST_MULTI && !self.trusted {
            mode = XCAST_MULTI;
        }
        if self.xcast_mode != mode {
            let (disable, enable) = match mode {
                XCAST_NONE => (VMOLR_ROMPE | VMOLR_MPE | VMOLR_UPE | VMOLR_VPE, VMOLR_BAM),
                XCAST_MULTI => (VMOLR_MPE | VMOLR_UPE | VMOLR_VPE, VMOLR_BAM | VMOLR_ROMPE),
                XCAST_ALLMULTI => (VMOLR_UPE | VMOLR_VPE, VMOLR_BAM | VMOLR_ROMPE | VMOLR_MPE),
                XCAST_PROMISC => {
                    if self.mac_type == MacType::M82599 || !self.pf_promisc {
                        return false;
                    }
                    (VMOLR_VPE, VMOLR_BAM | VMOLR_ROMPE | VMOLR_MPE | VMOLR_UPE)
                }
                _ => return false,
            };
            self.vmolr = (self.vmolr & !disable) | enable;
            self.xcast_mode = mode;
        }
        r[1] = mode;
        true
    }

    /// ixgbe_ipsec_vf_add_sa: a trusted VF, VF IPsec enabled, an Rx SA.
    fn ipsec_add(&mut self, r: &mut [u32; MBX_WORDS]) -> bool {
        let dir = r[2] & 0xff;
        if !self.trusted || !self.vf_ipsec || dir != XFRM_DEV_OFFLOAD_IN {
            return false;
        }
        let handle = self.next_sa;
        self.next_sa += 1;
        self.pf.ipsec_sas.push(handle);
        r[1] = handle;
        true
    }

    /// ixgbe_ipsec_vf_del_sa: a trusted VF; an unused entry is no error.
    fn ipsec_del(&mut self, handle: u32) -> bool {
        if !self.trusted {
            return false;
        }
        self.pf.ipsec_sas.retain(|h| *h != handle);
        true
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
        let v = self.mbx.read(off).unwrap_or(0);
        if let Some(s) = &mut self.snoop {
            s.on_read(self.map, self.family, off, v);
        }
        v
    }

    fn write32(&mut self, off: u32, v: u32) {
        if let Some(s) = &mut self.snoop {
            s.on_write(self.map, off, v);
        }
        if self.mbx.write(off, v) {
            self.receive();
        }
    }

    fn delay_us(&mut self, _: u32) {}
}
