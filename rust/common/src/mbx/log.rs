// SPDX-License-Identifier: GPL-2.0

//! The canonical log of what the PF accepted, how a request changes it,
//! the messages that rebuild it, and its stream encoding (PF_MBX section).

use super::super::bytes::copy_into;
use super::super::ids::Family;
use super::super::stream::StreamError;
use super::proto::{
    accepted, api, is_unicast, mac_of, mac_words, msg, xcast, Message, VlanOp, IGB_MAX_FRAME,
    IGB_PROMISC_MULTICAST, IXGBE_MAX_FRAME, IXGBE_MIN_FRAME, MAX_MACVLANS, MAX_MC, MBX_WORDS,
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
/// Every flag bit: only RESET is defined.
const FLAGS_KNOWN: u32 = FLAG_RESET;
/// Presence bits (head bits 8..11): mac, api, max_frame, xcast.
const PRESENT_KNOWN: u32 = 0xf;
/// The macvlan valid mask's bits: one per slot.
const MACVLANS_VALID: u32 = (1 << MAX_MACVLANS) - 1;

// What a replay puts in word 0's info field (a multicast count, a MACVLAN
// slot + 1, igb's promiscuous flags) stays within its 8 bits, below CTS,
// NACK and ACK.
const _: () = assert!(
    MAX_MC as u32 <= msg::INFO_MASK
        && MAX_MACVLANS as u32 <= msg::INFO_MASK
        && IGB_PROMISC_MULTICAST <= msg::INFO_MASK
);

/// A refusal naming the field and both values.
const fn bad(field: &'static str, value: u64, expected: u64) -> StreamError {
    StreamError::Malformed {
        field,
        value,
        expected,
    }
}

/// A MAC address as one number, most significant byte first (its hex
/// reads as the address).
fn mac_value(m: &[u8; 6]) -> u64 {
    m.iter().fold(0, |v, b| v << 8 | u64::from(*b))
}

/// A MAC address the PF takes (`is_valid_ether_addr`), or the refusal
/// naming `group` (the I/G bit set: multicast) or `zero`.
fn check_unicast(m: &[u8; 6], group: &'static str, zero: &'static str) -> Result<(), StreamError> {
    if m[0] & 1 != 0 {
        return Err(bad(group, 1, 0));
    }
    if !is_unicast(m) {
        return Err(bad(zero, 0, 1));
    }
    Ok(())
}

/// Whether the PF of `family` could have accepted SET_LPE of `v` (ixgbe:
/// `ixgbe_set_vf_lpe`'s range), or, for igb, applied it as it stands
/// (`igb_set_vf_rlpml` clamps what is above [`IGB_MAX_FRAME`]).
fn max_frame_error(family: Family, v: u32) -> Option<StreamError> {
    match family {
        Family::Ixgbe if v < IXGBE_MIN_FRAME => Some(bad(
            "PF_MBX max_frame (minimum)",
            u64::from(v),
            u64::from(IXGBE_MIN_FRAME),
        )),
        Family::Ixgbe if v > IXGBE_MAX_FRAME => Some(bad(
            "PF_MBX max_frame",
            u64::from(v),
            u64::from(IXGBE_MAX_FRAME),
        )),
        Family::Igb if v > IGB_MAX_FRAME => Some(bad(
            "PF_MBX max_frame",
            u64::from(v),
            u64::from(IGB_MAX_FRAME),
        )),
        _ => None,
    }
}

/// Whether `v` is an xcast mode (ixgbe: `IXGBEVF_XCAST_MODE_*`, word 1)
/// or promiscuous flags (igb: the flags its PF handles, word 0's info)
/// the PF of `family` could have accepted.
fn xcast_error(family: Family, v: u32) -> Option<StreamError> {
    let max = match family {
        Family::Ixgbe if v > xcast::PROMISC => xcast::PROMISC,
        Family::Igb if v & !IGB_PROMISC_MULTICAST != 0 => IGB_PROMISC_MULTICAST,
        _ => return None,
    };
    Some(bad("PF_MBX xcast", u64::from(v), u64::from(max)))
}

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
            msg::SET_MAC_ADDR if info == 0 => {
                // The PFs refuse any other address; a log keeps only what
                // a destination PF would take again.
                let m = mac_of(req[1], req[2]);
                if !is_unicast(&m) {
                    self.ignored = self.ignored.saturating_add(1);
                    return false;
                }
                self.mac = Some(m);
            }
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
            msg::SET_LPE => {
                // igb applies a larger size as its maximum; ixgbe refuses
                // one out of its range (an older ixgbe took a smaller one:
                // not logged, as a destination PF would refuse it).
                let v = match family {
                    Family::Igb => req[1].min(IGB_MAX_FRAME),
                    Family::Ixgbe => req[1],
                };
                if max_frame_error(family, v).is_some() {
                    self.ignored = self.ignored.saturating_add(1);
                    return false;
                }
                self.max_frame = Some(v);
            }
            msg::SET_PROMISC_OR_MACVLAN => match family {
                Family::Igb => {
                    if xcast_error(family, info).is_some() {
                        self.ignored = self.ignored.saturating_add(1);
                        return false;
                    }
                    self.xcast = Some(info);
                }
                Family::Ixgbe => {
                    // Index 0 clears every extra filter; n > 0 sets filter n.
                    let i = info as usize;
                    let m = mac_of(req[1], req[2]);
                    if i == 0 {
                        self.macvlans = [None; MAX_MACVLANS];
                    } else if i <= MAX_MACVLANS && is_unicast(&m) {
                        self.macvlans[i - 1] = Some(m);
                    } else {
                        self.ignored = self.ignored.saturating_add(1);
                        return false;
                    }
                }
            },
            msg::API_NEGOTIATE if family == Family::Ixgbe => {
                if !api::known(req[1]) {
                    self.ignored = self.ignored.saturating_add(1);
                    return false;
                }
                self.api = Some(req[1]);
            }
            msg::UPDATE_XCAST_MODE if family == Family::Ixgbe => {
                if xcast_error(family, req[1]).is_some() {
                    self.ignored = self.ignored.saturating_add(1);
                    return false;
                }
                self.xcast = Some(req[1]);
            }
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
        put(&self.macvlans_valid().to_le_bytes());
        for m in &self.macvlans {
            let mut m8 = [0u8; 8];
            copy_into(&mut m8[..6], &m.unwrap_or_default());
            put(&m8);
        }
    }

    /// Whether every field is within what the PF of `family` could have
    /// accepted, so that [`MbxLog::replay`] sends only valid requests
    /// (word 0's info field within its 8 bits: no ACK, NACK or CTS) that
    /// a Linux PF takes. The ranges and their sources are in
    /// Documentation/stream-format.rst (PF_MBX); [`MbxLog::observe`] never
    /// builds a log outside them.
    pub fn check(&self, family: Family) -> Result<(), StreamError> {
        if self.flags & !FLAGS_KNOWN != 0 {
            return Err(bad(
                "PF_MBX flags",
                u64::from(self.flags),
                u64::from(FLAGS_KNOWN),
            ));
        }
        if let Some(m) = &self.mac {
            check_unicast(m, "PF_MBX mac I/G bit", "PF_MBX mac nonzero")?;
        }
        match (family, self.api) {
            (Family::Igb, Some(_)) => return Err(bad("PF_MBX api presence (igb)", 1, 0)),
            (Family::Ixgbe, Some(v)) if !api::known(v) => {
                return Err(bad("PF_MBX api", u64::from(v), u64::from(api::V1_7)));
            }
            _ => {}
        }
        if let Some(e) = self.max_frame.and_then(|v| max_frame_error(family, v)) {
            return Err(e);
        }
        if let Some(e) = self.xcast.and_then(|v| xcast_error(family, v)) {
            return Err(e);
        }
        let n = self.mc_count as usize;
        if n > MAX_MC {
            return Err(bad("PF_MBX mc_count", n as u64, MAX_MC as u64));
        }
        if let Some(h) = self.mc[n..].iter().find(|h| **h != 0) {
            return Err(bad("PF_MBX mc hash past mc_count", u64::from(*h), 0));
        }
        // `vlans`: every bit is a VLAN ID, 0 to 4095, which SET_VLAN
        // carries in 12 bits of word 1; nothing to refuse.
        for m in self.macvlans.iter().flatten() {
            if family == Family::Igb {
                return Err(bad(
                    "PF_MBX macvlan valid mask (igb)",
                    u64::from(self.macvlans_valid()),
                    0,
                ));
            }
            check_unicast(m, "PF_MBX macvlan I/G bit", "PF_MBX macvlan nonzero")?;
        }
        Ok(())
    }

    fn macvlans_valid(&self) -> u32 {
        let mut valid = 0u32;
        for (i, m) in self.macvlans.iter().enumerate() {
            if m.is_some() {
                valid |= 1 << i;
            }
        }
        valid
    }

    /// Decodes [`MbxLog::encode`]'s bytes, written by a source VF of
    /// `family`: the layout's own rules (length, known flag and presence
    /// bits, zero reserved bytes and slots of absent values), then
    /// [`MbxLog::check`]. A refusal names the field and both values.
    pub fn decode(family: Family, b: &[u8]) -> Result<MbxLog, StreamError> {
        if b.len() != ENCODED_LEN {
            return Err(bad("PF_MBX section", b.len() as u64, ENCODED_LEN as u64));
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let mac_at = |o: usize| [b[o], b[o + 1], b[o + 2], b[o + 3], b[o + 4], b[o + 5]];
        // A MAC slot: 6 bytes and 2 reserved (zero); all zero when absent.
        let mac_slot = |o: usize, present: bool, reserved: &'static str, absent: &'static str| {
            let pad = u16::from_le_bytes([b[o + 6], b[o + 7]]);
            if pad != 0 {
                return Err(bad(reserved, u64::from(pad), 0));
            }
            let m = mac_at(o);
            match present {
                true => Ok(Some(m)),
                false if m == [0; 6] => Ok(None),
                false => Err(bad(absent, mac_value(&m), 0)),
            }
        };
        // A u32 slot of an optional value: zero when absent.
        let value = |o: usize, present: bool, absent: &'static str| {
            let v = u32_at(o);
            match present {
                true => Ok(Some(v)),
                false if v == 0 => Ok(None),
                false => Err(bad(absent, u64::from(v), 0)),
            }
        };
        let head = u32_at(0);
        let present = head >> 8;
        if present & !PRESENT_KNOWN != 0 {
            return Err(bad(
                "PF_MBX presence bits",
                u64::from(present),
                u64::from(PRESENT_KNOWN),
            ));
        }
        let mc_count = u32_at(24);
        if mc_count as usize > MAX_MC {
            return Err(bad("PF_MBX mc_count", u64::from(mc_count), MAX_MC as u64));
        }
        let mut log = MbxLog {
            flags: head & 0xff,
            mac: mac_slot(
                4,
                present & 1 != 0,
                "PF_MBX mac bytes 6..8",
                "PF_MBX mac (absent)",
            )?,
            api: value(12, present & 2 != 0, "PF_MBX api (absent)")?,
            max_frame: value(16, present & 4 != 0, "PF_MBX max_frame (absent)")?,
            xcast: value(20, present & 8 != 0, "PF_MBX xcast (absent)")?,
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
        if valid & !MACVLANS_VALID != 0 {
            return Err(bad(
                "PF_MBX macvlan valid mask",
                u64::from(valid),
                u64::from(MACVLANS_VALID),
            ));
        }
        at += 4;
        for (i, m) in log.macvlans.iter_mut().enumerate() {
            *m = mac_slot(
                at,
                valid & (1 << i) != 0,
                "PF_MBX macvlan bytes 6..8",
                "PF_MBX macvlan (absent)",
            )?;
            at += 8;
        }
        log.check(family)?;
        Ok(log)
    }
}
