// SPDX-License-Identifier: GPL-2.0

//! The canonical log of what the PF accepted, how a request changes it,
//! the messages that rebuild it, and its stream encoding (PF_MBX section).

use super::super::bytes::copy_into;
use super::super::ids::Family;
use super::proto::{
    accepted, mac_of, mac_words, msg, Message, VlanOp, MAX_MACVLANS, MAX_MC, MBX_WORDS,
};

/// Length of the encoded log.
pub const ENCODED_LEN: usize = 4 + 8 + 4 + 4 + 4 + 4 + 4 + 2 * MAX_MC + 512 + 4 + 8 * MAX_MACVLANS;

/// The effect of every request the PF accepted since the VF's last RESET.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MbxLog {
    /// Bit 0: a RESET was accepted (the VF is set up with its PF).
    pub flags: u32,
    /// MAC address set by SET_MAC_ADDR (bytes 0..6; bytes 6..8 zero).
    pub mac: Option<[u8; 6]>,
    /// Negotiated ixgbe mailbox API (`ixgbe_mbox_api_*` value).
    pub api: Option<u32>,
    /// Maximum frame size from SET_LPE.
    pub max_frame: Option<u32>,
    /// ixgbe xcast mode, or igb promiscuous flags.
    pub xcast: Option<u32>,
    /// Multicast hashes in force.
    pub mc: [u16; MAX_MC],
    /// How many of `mc` are in force.
    pub mc_count: u8,
    /// VLAN filter bitmap, one bit per VLAN ID.
    pub vlans: [u64; 64],
    /// Extra unicast filters (ixgbe SET_MACVLAN), by index.
    pub macvlans: [Option<[u8; 6]>; MAX_MACVLANS],
    /// Requests refused as malformed or unknown (not logged).
    pub ignored: u32,
}

const FLAG_RESET: u32 = 1;

impl Default for MbxLog {
    fn default() -> Self {
        MbxLog {
            flags: 0,
            mac: None,
            api: None,
            max_frame: None,
            xcast: None,
            mc: [0; MAX_MC],
            mc_count: 0,
            vlans: [0; 64],
            macvlans: [None; MAX_MACVLANS],
            ignored: 0,
        }
    }
}

impl MbxLog {
    /// Whether VLAN `vid` is in the set.
    pub fn has_vlan(&self, vid: u16) -> bool {
        vid < 4096 && self.vlans[vid as usize / 64] & (1 << (vid % 64)) != 0
    }

    /// The VLAN IDs in the set, in order.
    pub fn vlan_ids(&self) -> impl Iterator<Item = u16> + '_ {
        (0..4096u16).filter(|v| self.has_vlan(*v))
    }

    /// Records request `req` that the PF answered with `reply0`; returns
    /// whether the log changed. Only an ACK of the same type counts.
    pub fn observe(&mut self, family: Family, req: &[u32; MBX_WORDS], reply0: u32) -> bool {
        let kind = msg::kind(req[0]);
        if !accepted(kind, reply0) {
            return false;
        }
        let info = msg::info(req[0]);
        match kind {
            msg::RESET => {
                // A reset wipes the PF's state for the VF: start over.
                *self = MbxLog {
                    flags: FLAG_RESET,
                    ignored: self.ignored,
                    ..MbxLog::default()
                };
            }
            msg::SET_MAC_ADDR if info == 0 => self.mac = Some(mac_of(req[1], req[2])),
            msg::SET_MULTICAST => {
                let n = info as usize;
                if n > MAX_MC {
                    self.ignored = self.ignored.saturating_add(1);
                    return false;
                }
                for i in 0..n {
                    self.mc[i] = msg::mc_hash(&req[1..], i);
                }
                for h in &mut self.mc[n..] {
                    *h = 0;
                }
                self.mc_count = n as u8;
            }
            msg::SET_VLAN => {
                let vid = msg::vlan_id(req[1]);
                let bit = 1u64 << (vid % 64);
                if info != 0 {
                    self.vlans[vid as usize / 64] |= bit;
                } else {
                    self.vlans[vid as usize / 64] &= !bit;
                }
            }
            msg::SET_LPE => self.max_frame = Some(req[1]),
            msg::SET_PROMISC_OR_MACVLAN => match family {
                Family::Igb => self.xcast = Some(info),
                Family::Ixgbe => {
                    // Index 0 clears every extra filter; n > 0 sets filter n.
                    let i = info as usize;
                    if i == 0 {
                        self.macvlans = [None; MAX_MACVLANS];
                    } else if i <= MAX_MACVLANS {
                        self.macvlans[i - 1] = Some(mac_of(req[1], req[2]));
                    } else {
                        self.ignored = self.ignored.saturating_add(1);
                        return false;
                    }
                }
            },
            msg::API_NEGOTIATE if family == Family::Ixgbe => self.api = Some(req[1]),
            msg::UPDATE_XCAST_MODE if family == Family::Ixgbe => self.xcast = Some(req[1]),
            // Queries change nothing at the PF.
            msg::GET_QUEUES => return false,
            _ => {
                self.ignored = self.ignored.saturating_add(1);
                return false;
            }
        }
        true
    }

    /// The messages that rebuild this state at a PF, in the order VF
    /// drivers send them after a reset: RESET, API_NEGOTIATE, then the rest.
    /// Calls `f` for each; stops at the first error.
    pub fn replay<E>(
        &self,
        family: Family,
        mut f: impl FnMut(&Message) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.flags & FLAG_RESET == 0 {
            return Ok(());
        }
        f(&Message::reset())?;
        if let (Family::Ixgbe, Some(api)) = (family, self.api) {
            f(&Message::new(&[msg::API_NEGOTIATE, api]))?;
        }
        if let Some(m) = &self.mac {
            f(&Message::set_mac(m))?;
        }
        if let Some(v) = self.max_frame {
            f(&Message::new(&[msg::SET_LPE, v]))?;
        }
        if self.mc_count > 0 {
            f(&Message::set_multicast(&self.mc[..self.mc_count as usize]))?;
        }
        for vid in self.vlan_ids() {
            f(&Message::set_vlan(vid, VlanOp::Add))?;
        }
        for (i, m) in self.macvlans.iter().enumerate() {
            if let Some(m) = m {
                let (a, b) = mac_words(m);
                let w0 = msg::word0(msg::SET_PROMISC_OR_MACVLAN, i as u32 + 1);
                f(&Message::new(&[w0, a, b]))?;
            }
        }
        if let Some(x) = self.xcast {
            match family {
                Family::Ixgbe => f(&Message::new(&[msg::UPDATE_XCAST_MODE, x]))?,
                Family::Igb => f(&Message::new(&[msg::word0(msg::SET_PROMISC_OR_MACVLAN, x)]))?,
            }
        }
        Ok(())
    }

    /// The log as bytes (fixed length [`ENCODED_LEN`], little-endian).
    pub fn encode(&self, out: &mut [u8; ENCODED_LEN]) {
        let mut at = 0;
        let mut put = |b: &[u8]| {
            copy_into(&mut out[at..at + b.len()], b);
            at += b.len();
        };
        let present = u32::from(self.mac.is_some())
            | u32::from(self.api.is_some()) << 1
            | u32::from(self.max_frame.is_some()) << 2
            | u32::from(self.xcast.is_some()) << 3;
        put(&(self.flags | present << 8).to_le_bytes());
        let mut m8 = [0u8; 8];
        copy_into(&mut m8[..6], &self.mac.unwrap_or_default());
        put(&m8);
        put(&self.api.unwrap_or(0).to_le_bytes());
        put(&self.max_frame.unwrap_or(0).to_le_bytes());
        put(&self.xcast.unwrap_or(0).to_le_bytes());
        put(&u32::from(self.mc_count).to_le_bytes());
        put(&self.ignored.to_le_bytes());
        for h in &self.mc {
            put(&h.to_le_bytes());
        }
        for v in &self.vlans {
            put(&v.to_le_bytes());
        }
        let mut valid = 0u32;
        for (i, m) in self.macvlans.iter().enumerate() {
            if m.is_some() {
                valid |= 1 << i;
            }
        }
        put(&valid.to_le_bytes());
        for m in &self.macvlans {
            let mut m8 = [0u8; 8];
            copy_into(&mut m8[..6], &m.unwrap_or_default());
            put(&m8);
        }
    }

    /// Decodes [`MbxLog::encode`]'s bytes; `None` if they are not a log.
    pub fn decode(b: &[u8]) -> Option<MbxLog> {
        if b.len() != ENCODED_LEN {
            return None;
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let mac_at = |o: usize| [b[o], b[o + 1], b[o + 2], b[o + 3], b[o + 4], b[o + 5]];
        let head = u32_at(0);
        let present = head >> 8;
        let mc_count = u32_at(24);
        // Unknown flag or presence bits, or an impossible count: not ours.
        if head & !0xfff != 0 || mc_count as usize > MAX_MC {
            return None;
        }
        let mut log = MbxLog {
            flags: head & 0xff,
            mac: (present & 1 != 0).then(|| mac_at(4)),
            api: (present & 2 != 0).then(|| u32_at(12)),
            max_frame: (present & 4 != 0).then(|| u32_at(16)),
            xcast: (present & 8 != 0).then(|| u32_at(20)),
            mc_count: mc_count as u8,
            ignored: u32_at(28),
            ..MbxLog::default()
        };
        let mut at = 32;
        for h in &mut log.mc {
            *h = u16::from_le_bytes([b[at], b[at + 1]]);
            at += 2;
        }
        for v in &mut log.vlans {
            let mut w = [0u8; 8];
            copy_into(&mut w, &b[at..at + 8]);
            *v = u64::from_le_bytes(w);
            at += 8;
        }
        let valid = u32_at(at);
        at += 4;
        for (i, m) in log.macvlans.iter_mut().enumerate() {
            if valid & (1 << i) != 0 {
                *m = Some(mac_at(at));
            }
            at += 8;
        }
        Some(log)
    }
}
