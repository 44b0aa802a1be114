// SPDX-License-Identifier: GPL-2.0

//! The announce of a migrated guest on the destination's wire, with no
//! guest help: RARP frames (what QEMU sends for its emulated NICs, which
//! need only the MAC) whose source is each MAC the guest owns, so that every
//! switch between the hosts learns the guest's new port at once.
//!
//! Whose MACs: only what the PF, not the guest, says the VF may use (a
//! host that announces speaks for the guest on its own port, where no spoof
//! check looks at it). The primary MAC is the one the PF reports for the VF
//! ([`port_settings`]), never the log's; extra filters and VLANs are the
//! log's, whose every entry is a request the PF accepted, as the driver read
//! the PF's verdict from the device. An administrator's link state
//! "disable", or a PF whose settings cannot be read, silences the announce.
//!
//! Which frames: each MAC (the primary, then the extra unicast filters),
//! sent once
//! untagged and once in each VLAN of the guest's filter; or, when the
//! administrator set a port VLAN (the NIC tags the VF's traffic itself and
//! the guest has no VLANs of its own), once in the port VLAN only. At most
//! [`MAX_FRAMES`] a round, primary MAC first: what does not fit is counted
//! as dropped, never sent. When: [`ROUNDS`] rounds, the first at once, then
//! after [`FIRST_GAP_MS`], each gap [`GAP_STEP_MS`] longer than the last
//! (QEMU's announce defaults).

use super::admin::AdminConfig;
use super::ids::Family;
use super::mbx::{MbxLog, MAX_MACVLANS};

/// Frames in one round, at most (the C sender's array).
pub const MAX_FRAMES: usize = 32;
/// Bytes of a frame, at most (a tagged RARP frame is 64).
pub const FRAME_MAX: usize = 64;
/// Rounds of an announce.
pub const ROUNDS: u32 = 5;
/// Gap between the first two rounds.
pub const FIRST_GAP_MS: u32 = 50;
/// How much longer each next gap is.
pub const GAP_STEP_MS: u32 = 100;

/// RARP's EtherType.
pub const ETHERTYPE_RARP: u16 = 0x8035;
/// 802.1Q's EtherType.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Length of an untagged RARP frame (the Ethernet minimum, without FCS).
pub const RARP_LEN: usize = 60;

/// One frame, ready for the wire.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The bytes; `len` of them are the frame.
    pub bytes: [u8; FRAME_MAX],
    /// Its length.
    pub len: usize,
}

impl Frame {
    /// The frame's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The RARP "reverse request" QEMU sends for `mac`, in 802.1Q VLAN `tci`
/// (priority and ID) when given: broadcast, from `mac`, asking for `mac`.
pub fn rarp(mac: [u8; 6], tci: Option<u16>) -> Frame {
    let mut b = [0u8; FRAME_MAX];
    b[..6].copy_from_slice(&[0xff; 6]);
    b[6..12].copy_from_slice(&mac);
    let mut at = 12;
    if let Some(tci) = tci {
        b[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        b[14..16].copy_from_slice(&tci.to_be_bytes());
        at = 16;
    }
    b[at..at + 2].copy_from_slice(&ETHERTYPE_RARP.to_be_bytes());
    let arp = at + 2;
    // Ethernet (1), IPv4 (0x0800), 6-byte and 4-byte addresses, opcode 3.
    b[arp..arp + 8].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 3]);
    b[arp + 8..arp + 14].copy_from_slice(&mac);
    b[arp + 18..arp + 24].copy_from_slice(&mac);
    Frame {
        bytes: b,
        len: RARP_LEN + (at - 12),
    }
}

/// What the PF says of the VF that changes the frames.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSettings {
    /// The VF's MAC as the PF reports it, where it is the guest's (zero:
    /// none to announce).
    pub mac: [u8; 6],
    /// The port VLAN ID (0: none).
    pub vlan: u16,
    /// Its priority.
    pub qos: u8,
}

/// One frame of an announce: the MAC it is from and its VLAN tag.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The source MAC (and the MAC asked for).
    pub mac: [u8; 6],
    /// The 802.1Q tag (priority and ID), or none.
    pub tci: Option<u16>,
}

impl Entry {
    /// The frame on the wire.
    pub fn frame(&self) -> Frame {
        rarp(self.mac, self.tci)
    }
}

/// An announce's frames, compact (built one at a time by [`Entry::frame`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The frames, `count` of them in use.
    pub entries: [Entry; MAX_FRAMES],
    /// How many.
    pub count: usize,
    /// Frames that did not fit a round (never sent).
    pub dropped: usize,
    /// How many distinct MACs are announced.
    pub macs: usize,
}

impl Plan {
    /// The frames in use.
    pub fn entries(&self) -> &[Entry] {
        &self.entries[..self.count]
    }

    fn push(&mut self, mac: [u8; 6], tci: Option<u16>) {
        if self.count < MAX_FRAMES {
            self.entries[self.count] = Entry { mac, tci };
            self.count += 1;
        } else {
            self.dropped += 1;
        }
    }
}

fn usable(mac: &[u8; 6]) -> bool {
    // Unicast and not zero: a multicast source is invalid on the wire.
    *mac != [0; 6] && mac[0] & 1 == 0
}

/// The frames that announce the guest whose filters are `log` on a VF with
/// the administrator's `port` settings.
pub fn plan(log: &MbxLog, port: &PortSettings) -> Plan {
    let mut p = Plan {
        entries: [Entry::default(); MAX_FRAMES],
        count: 0,
        dropped: 0,
        macs: 0,
    };
    let mut seen = [[0u8; 6]; 1 + MAX_MACVLANS];
    // The PF's word, never the log's: a request the log holds may have
    // been refused since, and a crafted stream's may never have been made.
    let primary = Some(port.mac).filter(usable);
    for mac in primary
        .into_iter()
        .chain(log.macvlans.iter().flatten().copied())
    {
        if !usable(&mac) || seen[..p.macs].contains(&mac) {
            continue;
        }
        seen[p.macs] = mac;
        p.macs += 1;
        if port.vlan != 0 {
            let tci = (u16::from(port.qos & 7) << 13) | (port.vlan & 0xfff);
            p.push(mac, Some(tci));
            continue;
        }
        p.push(mac, None);
        for vid in log.vlan_ids().filter(|&v| v != 0) {
            p.push(mac, Some(vid));
        }
    }
    p
}

/// The gap before round `n` (0-based; round 0 goes at once).
pub const fn gap_before(n: u32) -> u32 {
    if n == 0 {
        0
    } else {
        FIRST_GAP_MS + (n - 1) * GAP_STEP_MS
    }
}

/// Why a guest that arrived is not announced.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Silence {
    /// The PF reports no settings for the VF (its driver has none, or is
    /// between SR-IOV disable and enable): nothing is known to be the VF's.
    NoPfView,
    /// The administrator set the VF's link state to "disable".
    LinkDisabled,
}

impl core::fmt::Display for Silence {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Silence::NoPfView => "the PF reports no settings for the VF",
            Silence::LinkDisabled => "the administrator set the VF's link state to disable",
        })
    }
}

/// What the announce of a guest that arrived may say: its settings, or why
/// it is silent.
pub type Arrival = Result<PortSettings, Silence>;

/// `ndo_set_vf_link_state`'s "disable" (`IFLA_VF_LINK_STATE_DISABLE`).
pub const LINK_STATE_DISABLE: u8 = 2;

/// What the announce of a guest on a VF of `family` may say, from what the
/// PF reports for the VF (`pf`, `None` when it reports nothing) and the
/// guest's accepted requests (`log`, built from the PF's own verdicts).
///
/// Fails closed: no PF view, or a link the administrator disabled, is
/// silence. The MAC the PF reports is announced on igb, whose PF forgets a
/// MAC the VF set at each reset unless the administrator set it; ixgbe keeps
/// the MAC a VF last set across resets (`vf_mac_addresses`), which may be an
/// earlier tenant's, so there it is announced only when this guest's own
/// accepted request set it.
pub fn port_settings(family: Family, pf: Option<&AdminConfig>, log: &MbxLog) -> Arrival {
    let c = pf.ok_or(Silence::NoPfView)?;
    if c.link_state == LINK_STATE_DISABLE {
        return Err(Silence::LinkDisabled);
    }
    let mac = match family {
        Family::Igb => c.mac,
        Family::Ixgbe if log.mac == Some(c.mac) => c.mac,
        Family::Ixgbe => [0; 6],
    };
    Ok(PortSettings {
        mac,
        vlan: c.vlan,
        qos: c.qos,
    })
}
