// SPDX-License-Identifier: GPL-2.0

//! The mailbox wire, shared by the igb and ixgbe VF protocols: message
//! words (type, info, reply flags), the control register's bits, and the
//! messages a VF sends.

use super::super::bytes::copy_into;

/// Message types shared by the igb and ixgbe VF protocols (low 16 bits).
pub mod msg {
    /// VF asks the PF to reset its filters and enable it.
    pub const RESET: u32 = 0x01;
    /// VF sets its MAC address.
    pub const SET_MAC_ADDR: u32 = 0x02;
    /// VF sets its multicast hash list (count in the message info).
    pub const SET_MULTICAST: u32 = 0x03;
    /// VF adds (info 1) or removes (info 0) a VLAN.
    pub const SET_VLAN: u32 = 0x04;
    /// VF sets its maximum frame size (long packet enable).
    pub const SET_LPE: u32 = 0x05;
    /// igb's SET_MAC_ADDR info: clear every extra unicast filter of the VF.
    pub const IGB_MAC_FILTER_CLEAR: u32 = 1;
    /// igb's SET_MAC_ADDR info: add an extra unicast filter.
    pub const IGB_MAC_FILTER_ADD: u32 = 2;
    /// igb: promiscuous flags; ixgbe: an extra unicast filter (MACVLAN).
    pub const SET_PROMISC_OR_MACVLAN: u32 = 0x06;
    /// ixgbe: mailbox API version negotiation.
    pub const API_NEGOTIATE: u32 = 0x08;
    /// ixgbe: queue configuration query (read-only, not logged).
    pub const GET_QUEUES: u32 = 0x09;
    /// ixgbe: RSS redirection table query (read-only).
    pub const GET_RETA: u32 = 0x0a;
    /// ixgbe: RSS key query (read-only).
    pub const GET_RSS_KEY: u32 = 0x0b;
    /// ixgbe: unicast/multicast/promiscuous reception mode.
    pub const UPDATE_XCAST_MODE: u32 = 0x0c;
    /// ixgbe: a trusted VF offloads an IPsec SA to the PF (API 1.4 and on).
    pub const IPSEC_ADD: u32 = 0x0d;
    /// ixgbe: a trusted VF deletes an IPsec SA it offloaded.
    pub const IPSEC_DEL: u32 = 0x0e;
    /// ixgbe: the VF's link state as the administrator set it (read-only).
    pub const GET_LINK_STATE: u32 = 0x10;
    /// ixgbe: the PF's link speed and state (API 1.6, E610; read-only).
    pub const GET_PF_LINK_STATE: u32 = 0x11;
    /// ixgbe: the features the PF offers (API 1.7; the PF keeps nothing).
    pub const FEATURES_NEGOTIATE: u32 = 0x12;
    /// Reply flag: the PF did it.
    pub const ACK: u32 = 0x8000_0000;
    /// Reply flag: the PF refused.
    pub const NACK: u32 = 0x4000_0000;
    /// Reply flag: clear to send (the PF has seen the VF's reset).
    pub const CTS: u32 = 0x2000_0000;
    /// Shift of the message info field.
    pub const INFO_SHIFT: u32 = 16;
    /// Mask of the message type.
    pub const TYPE_MASK: u32 = 0xffff;
    /// Mask of the message info field (after [`INFO_SHIFT`]): bits 16..23
    /// (`IXGBE_VT_MSGINFO_MASK`, `E1000_VT_MSGINFO_MASK`). An info value
    /// above it would reach bits 24..31 of word 0, CTS, NACK and ACK among
    /// them.
    pub const INFO_MASK: u32 = 0xff;

    /// Word 0 of a request: type `kind` with info `info`.
    pub const fn word0(kind: u32, info: u32) -> u32 {
        kind | info << INFO_SHIFT
    }

    /// The name of message type `kind` (ixgbe_mbx.h, e1000_mbx.h; type
    /// 6 is ixgbe's SET_MACVLAN and igb's SET_PROMISC).
    pub const fn name(kind: u32) -> &'static str {
        match kind {
            RESET => "RESET",
            SET_MAC_ADDR => "SET_MAC_ADDR",
            SET_MULTICAST => "SET_MULTICAST",
            SET_VLAN => "SET_VLAN",
            SET_LPE => "SET_LPE",
            SET_PROMISC_OR_MACVLAN => "SET_MACVLAN/SET_PROMISC",
            API_NEGOTIATE => "API_NEGOTIATE",
            GET_QUEUES => "GET_QUEUES",
            GET_RETA => "GET_RETA",
            GET_RSS_KEY => "GET_RSS_KEY",
            UPDATE_XCAST_MODE => "UPDATE_XCAST_MODE",
            IPSEC_ADD => "IPSEC_ADD",
            IPSEC_DEL => "IPSEC_DEL",
            GET_LINK_STATE => "GET_LINK_STATE",
            GET_PF_LINK_STATE => "GET_PF_LINK_STATE",
            FEATURES_NEGOTIATE => "FEATURES_NEGOTIATE",
            _ => "unknown",
        }
    }

    /// Whether an ixgbe request of type `kind` only asks the PF something
    /// and leaves no state there: nothing to log or replay.
    pub const fn ixgbe_query(kind: u32) -> bool {
        matches!(
            kind,
            GET_QUEUES
                | GET_RETA
                | GET_RSS_KEY
                | GET_LINK_STATE
                | GET_PF_LINK_STATE
                | FEATURES_NEGOTIATE
        )
    }

    /// The message type of word 0.
    pub const fn kind(word0: u32) -> u32 {
        word0 & TYPE_MASK
    }

    /// The info field of word 0 (a count, an index, a flag).
    pub const fn info(word0: u32) -> u32 {
        (word0 >> INFO_SHIFT) & INFO_MASK
    }

    /// Whether word 0 carries the PF's ACK or NACK (a reply, not a request).
    pub const fn is_reply(word0: u32) -> bool {
        word0 & (ACK | NACK) != 0
    }

    /// Whether word 0 carries the PF's NACK.
    pub const fn is_nack(word0: u32) -> bool {
        word0 & NACK != 0
    }

    /// The VLAN ID of SET_VLAN's word 1.
    pub const fn vlan_id(word1: u32) -> u32 {
        super::super::super::bits::vlan_id(word1) as u32
    }

    /// Multicast hash `i` of SET_MULTICAST's words after word 0 (two per
    /// word, the even one low).
    pub const fn mc_hash(words: &[u32], i: usize) -> u16 {
        let w = words[i / 2];
        if i % 2 == 0 {
            w as u16
        } else {
            (w >> 16) as u16
        }
    }

    /// `hash` placed as multicast hash `i` in its word (see [`mc_hash`]).
    pub const fn mc_hash_bits(hash: u16, i: usize) -> u32 {
        (hash as u32) << (16 * (i % 2))
    }
}

/// Most multicast hashes a SET_MULTICAST carries (both families).
pub const MAX_MC: usize = 30;

/// The ixgbe mailbox API versions API_NEGOTIATE carries in word 1
/// (`enum ixgbe_pfvf_api_rev`, ixgbe_mbx.h): an enumeration, not a
/// version number.
pub mod api {
    /// `ixgbe_mbox_api_10`.
    pub const V1_0: u32 = 0;
    /// `ixgbe_mbox_api_20`: Solaris's; no Linux PF accepts it.
    pub const V2_0: u32 = 1;
    /// `ixgbe_mbox_api_11`.
    pub const V1_1: u32 = 2;
    /// `ixgbe_mbox_api_12`: UPDATE_XCAST_MODE, but PROMISC.
    pub const V1_2: u32 = 3;
    /// `ixgbe_mbox_api_13`: UPDATE_XCAST_MODE PROMISC.
    pub const V1_3: u32 = 4;
    /// `ixgbe_mbox_api_14`.
    pub const V1_4: u32 = 5;
    /// `ixgbe_mbox_api_15` (ESX's PF; Linux's ixgbe goes from 1.4 to 1.6
    /// and refuses it, so a log never carries it).
    pub const V1_5: u32 = 6;
    /// `ixgbe_mbox_api_16`.
    pub const V1_6: u32 = 7;
    /// `ixgbe_mbox_api_17`: the last this code knows.
    pub const V1_7: u32 = 8;

    /// Whether `v` is an API this code knows that Linux's ixgbe PF
    /// accepts (`ixgbe_negotiate_vf_api`, Linux 7.3): 1.0 to 1.4, 1.6 and
    /// 1.7; not 2.0 (Solaris's), not 1.5 (ESX's).
    pub const fn known(v: u32) -> bool {
        v <= V1_7 && v != V2_0 && v != V1_5
    }
}

/// ixgbe UPDATE_XCAST_MODE modes, word 1 (`enum ixgbevf_xcast_modes`).
pub mod xcast {
    /// `IXGBEVF_XCAST_MODE_NONE`.
    pub const NONE: u32 = 0;
    /// `IXGBEVF_XCAST_MODE_MULTI`.
    pub const MULTI: u32 = 1;
    /// `IXGBEVF_XCAST_MODE_ALLMULTI`.
    pub const ALLMULTI: u32 = 2;
    /// `IXGBEVF_XCAST_MODE_PROMISC`: the last.
    pub const PROMISC: u32 = 3;
}

/// igb SET_PROMISC flag (info field): unicast promiscuous
/// (`E1000_VF_SET_PROMISC_UNICAST`). The igb PF does not handle it:
/// `igb_set_vf_promisc` refuses a request with it (-EINVAL, NACK).
pub const IGB_PROMISC_UNICAST: u32 = 1;
/// igb SET_PROMISC flag (info field): multicast promiscuous
/// (`E1000_VF_SET_PROMISC_MULTICAST`), the one flag the igb PF handles.
pub const IGB_PROMISC_MULTICAST: u32 = 2;

/// Smallest SET_LPE frame size the ixgbe PF accepts (`ETH_MIN_MTU`, in
/// `ixgbe_set_vf_lpe`).
pub const IXGBE_MIN_FRAME: u32 = 68;
/// Largest SET_LPE frame size the ixgbe PF accepts
/// (`IXGBE_MAX_JUMBO_FRAME_SIZE`).
pub const IXGBE_MAX_FRAME: u32 = 9728;
/// Largest frame size the igb PF applies (`MAX_JUMBO_FRAME_SIZE`, 0x3F00):
/// `igb_set_vf_rlpml` clamps a larger SET_LPE to it, except one of 2^31 or
/// more, which it takes as a negative `int` and ORs into VMOLR.
pub const IGB_MAX_FRAME: u32 = 0x3f00;

/// Whether `m` is a MAC address the PFs take for the VF or a filter
/// (`is_valid_ether_addr`): neither multicast (I/G bit) nor zero.
pub const fn is_unicast(m: &[u8; 6]) -> bool {
    m[0] & 1 == 0 && !matches!(m, [0, 0, 0, 0, 0, 0])
}
/// Most extra unicast filters (ixgbe MACVLAN) the log carries. The PF's
/// own limit is its free receive-address entries, which all its VFs share
/// (`ixgbe_alloc_vf_macvlans`: 104 on an 82599 with 8 VFs): a filter past
/// these slots is PF state the log does not carry ([`super::Uncarried`]).
pub const MAX_MACVLANS: usize = 16;
/// Words in the mailbox memory.
pub const MBX_WORDS: usize = 16;

/// The MAC address in message words 1 and 2 (SET_MAC_ADDR, MACVLAN, the
/// RESET reply).
pub fn mac_of(w1: u32, w2: u32) -> [u8; 6] {
    let a = w1.to_le_bytes();
    let b = w2.to_le_bytes();
    [a[0], a[1], a[2], a[3], b[0], b[1]]
}

/// Words 1 and 2 of a message carrying MAC address `m`.
pub fn mac_words(m: &[u8; 6]) -> (u32, u32) {
    (
        u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
        u32::from_le_bytes([m[4], m[5], 0, 0]),
    )
}

/// How many words of the PF's reply to a message of type `kind` carry
/// anything (what Linux's VF drivers read: RESET's MAC and multicast
/// filter type, GET_QUEUES' five words, one value after word 0 for the
/// negotiations and modes); every word for a type not listed. The VF side
/// reads no more: each word is an MMIO read, and the replay is inside the
/// migration's downtime.
pub const fn reply_words(kind: u32) -> usize {
    match kind {
        msg::SET_MAC_ADDR
        | msg::SET_MULTICAST
        | msg::SET_VLAN
        | msg::SET_LPE
        | msg::SET_PROMISC_OR_MACVLAN => 1,
        msg::API_NEGOTIATE
        | msg::UPDATE_XCAST_MODE
        | msg::GET_LINK_STATE
        | msg::FEATURES_NEGOTIATE => 2,
        msg::RESET => 4,
        msg::GET_QUEUES => 5,
        _ => MBX_WORDS,
    }
}

/// Whether `reply0` is the PF doing request type `kind`: its type with ACK,
/// or for RESET also NACK, which igb answers when it has no MAC for the VF
/// (the reset happened all the same; SET_MAC_ADDR follows).
pub fn accepted(kind: u32, reply0: u32) -> bool {
    let done = match kind {
        msg::RESET => msg::ACK | msg::NACK,
        _ => msg::ACK,
    };
    msg::kind(reply0) == kind && reply0 & done != 0
}

/// A message a VF sends: `len` words of `words`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The words.
    pub words: [u32; MBX_WORDS],
    /// How many are used.
    pub len: usize,
}

impl Message {
    /// The message of words `w` (at most [`MBX_WORDS`]).
    pub fn new(w: &[u32]) -> Message {
        let mut words = [0; MBX_WORDS];
        copy_into(&mut words[..w.len()], w);
        Message {
            words,
            len: w.len(),
        }
    }

    /// The message type (low 16 bits of word 0).
    pub fn kind(&self) -> u32 {
        msg::kind(self.words[0])
    }

    /// RESET.
    pub fn reset() -> Message {
        Message::new(&[msg::RESET])
    }

    /// SET_MAC_ADDR of `mac`.
    pub fn set_mac(mac: &[u8; 6]) -> Message {
        let (a, b) = mac_words(mac);
        Message::new(&[msg::SET_MAC_ADDR, a, b])
    }

    /// igb's extra unicast filter for `mac` (SET_MAC_ADDR, info ADD).
    pub fn igb_add_mac_filter(mac: &[u8; 6]) -> Message {
        let (a, b) = mac_words(mac);
        Message::new(&[msg::word0(msg::SET_MAC_ADDR, msg::IGB_MAC_FILTER_ADD), a, b])
    }

    /// SET_MULTICAST of `hashes` (the first [`MAX_MC`]).
    pub fn set_multicast(hashes: &[u16]) -> Message {
        let n = hashes.len().min(MAX_MC);
        let mut w = [0u32; 1 + MAX_MC / 2];
        w[0] = msg::word0(msg::SET_MULTICAST, n as u32);
        for (i, h) in hashes[..n].iter().enumerate() {
            w[1 + i / 2] |= msg::mc_hash_bits(*h, i);
        }
        Message::new(&w[..1 + n.div_ceil(2)])
    }

    /// SET_VLAN: add (or remove) VLAN `vid`.
    pub fn set_vlan(vid: u16, op: VlanOp) -> Message {
        let add = match op {
            VlanOp::Add => 1,
            VlanOp::Remove => 0,
        };
        Message::new(&[msg::word0(msg::SET_VLAN, add), u32::from(vid)])
    }
}

/// What a SET_VLAN does.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum VlanOp {
    /// Add the VLAN to the VF's filters.
    Add,
    /// Remove it.
    Remove,
}

/// Bits of the VF's mailbox control register (igb V2PMAILBOX, ixgbe
/// VFMAILBOX: the same layout).
pub mod ctrl {
    /// VF requests the PF's attention (a message is posted).
    pub const REQ: u32 = 1 << 0;
    /// VF acknowledges the PF's message.
    pub const ACK: u32 = 1 << 1;
    /// VF owns the mailbox memory.
    pub const VFU: u32 = 1 << 2;
    /// PF wrote a message (read-to-clear).
    pub const PFSTS: u32 = 1 << 4;
    /// PF acknowledged the VF's message (read-to-clear).
    pub const PFACK: u32 = 1 << 5;
    /// PF reset indication.
    pub const RSTI: u32 = 1 << 6;
    /// PF reset done (read-to-clear).
    pub const RSTD: u32 = 1 << 7;
    /// The read-to-clear bits.
    pub const R2C: u32 = PFSTS | PFACK | RSTD;
}
