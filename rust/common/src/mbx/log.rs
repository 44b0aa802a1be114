// SPDX-License-Identifier: GPL-2.0

//! The canonical log of what the PF accepted, how a request changes it,
//! the messages that rebuild it, and its stream encoding (PF_MBX section).

use super::super::bytes::copy_into;
use super::super::errno;
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
    /// Bit 0: a RESET was accepted (the VF is set up with its PF). Bits
    /// 1..3 and 16..31: PF-side state the log does not carry
    /// ([`MbxLog::uncarried`]); a source refuses to save such a log, and a
    /// destination refuses to load it.
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
    /// Requests the PF accepted and the log does not carry, since the
    /// snoop started (a statistic; a RESET keeps it; not replayed).
    pub ignored: u32,
}

const FLAG_RESET: u32 = 1;
/// ixgbe: an IPsec SA was offloaded to the PF (IPSEC_ADD accepted) since
/// the last RESET, which clears the VF's SAs (`ixgbe_ipsec_vf_clear`).
const FLAG_IPSEC: u32 = 1 << 1;
/// igb: extra unicast MAC filters were added (SET_MAC_ADDR ADD accepted)
/// since the last CLR; igb keeps them across the VF's RESET.
const FLAG_IGB_MAC_FILTERS: u32 = 1 << 2;
/// Another accepted request the log does not carry; its type in
/// [`UNCARRIED_KIND_SHIFT`]..
const FLAG_UNCARRIED: u32 = 1 << 3;
/// Where the type of the last uncarried request goes (bits 16..31; head
/// bits 16..31 of the encoding).
const UNCARRIED_KIND_SHIFT: u32 = 16;
/// The flag bits of the head's bits 0..7.
const FLAGS_KNOWN: u32 = FLAG_RESET | FLAG_IPSEC | FLAG_IGB_MAC_FILTERS | FLAG_UNCARRIED;
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

/// PF-side state that a VF's accepted requests left there and the log does
/// not carry: a migration must stop rather than lose it. The kernel refuses
/// to save such a log, naming it; [`MbxLog::decode`] refuses it too.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Uncarried {
    /// ixgbe: IPsec SAs a trusted VF offloaded (IPSEC_ADD), until its RESET.
    IpsecSa,
    /// igb: extra unicast MAC filters (SET_MAC_ADDR with ADD), until a CLR.
    IgbMacFilters,
    /// Another request the PF accepted and the log cannot carry: a type it
    /// does not know, or a value past what it holds (a 17th MACVLAN, an
    /// igb multicast count over 30, an API no Linux PF takes).
    Request {
        /// The message type.
        kind: u16,
    },
}

impl Uncarried {
    /// The errno a save refused for it returns: the stream cannot carry
    /// the VF's configuration.
    pub const fn errno(&self) -> i32 {
        errno::EOPNOTSUPP
    }

    /// The PF_MBX field a decoder names when it meets it.
    pub const fn field(&self) -> &'static str {
        match self {
            Uncarried::IpsecSa => "PF_MBX flags: IPsec SAs at the PF (IPSEC_ADD), not carried",
            Uncarried::IgbMacFilters => {
                "PF_MBX flags: igb MAC filters at the PF (SET_MAC_ADDR ADD), not carried"
            }
            Uncarried::Request { .. } => "PF_MBX flags: an accepted request, not carried",
        }
    }
}

impl core::fmt::Display for Uncarried {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Uncarried::IpsecSa => write!(
                f,
                "the VF offloaded IPsec SAs to its PF (IPSEC_ADD); the stream does not carry them"
            ),
            Uncarried::IgbMacFilters => write!(
                f,
                "the VF added extra unicast MAC filters at its PF (SET_MAC_ADDR ADD); \
                 the stream does not carry them"
            ),
            Uncarried::Request { kind } => write!(
                f,
                "the PF accepted mailbox request {kind:#x} ({}) in a form the stream does not carry",
                msg::name(u32::from(kind))
            ),
        }
    }
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
    /// The PF-side state the log does not carry, if any: what a save must
    /// refuse, naming it (IPsec first, then igb's filters, then the last
    /// other request).
    pub fn uncarried(&self) -> Option<Uncarried> {
        if self.flags & FLAG_IPSEC != 0 {
            Some(Uncarried::IpsecSa)
        } else if self.flags & FLAG_IGB_MAC_FILTERS != 0 {
            Some(Uncarried::IgbMacFilters)
        } else if self.flags & FLAG_UNCARRIED != 0 {
            Some(Uncarried::Request {
                kind: (self.flags >> UNCARRIED_KIND_SHIFT) as u16,
            })
        } else {
            None
        }
    }

    /// An accepted request of type `kind` the log does not carry.
    fn not_carried(&mut self, kind: u32) -> bool {
        self.flags =
            (self.flags & 0xffff) | FLAG_UNCARRIED | (kind & 0xffff) << UNCARRIED_KIND_SHIFT;
        self.ignored = self.ignored.saturating_add(1);
        false
    }

    /// Whether VLAN `vid` is in the set.
    pub fn has_vlan(&self, vid: u16) -> bool {
        vid < 4096 && self.vlans[vid as usize / 64] & (1 << (vid % 64)) != 0
    }

    /// The VLAN IDs in the set, in order.
    pub fn vlan_ids(&self) -> impl Iterator<Item = u16> + '_ {
        (0..4096u16).filter(|v| self.has_vlan(*v))
    }

    /// Records request `req` that the PF answered with `reply0`; returns
    /// whether the log carries a new effect. An ACK of the same type
    /// counts; a refusal changes nothing, but for ixgbe's MACVLAN index 1,
    /// whose clear comes before the PF looks for room. An accepted request
    /// the log cannot carry is recorded as such ([`MbxLog::uncarried`]),
    /// never dropped.
    pub fn observe(&mut self, family: Family, req: &[u32; MBX_WORDS], reply0: u32) -> bool {
        let kind = msg::kind(req[0]);
        let info = msg::info(req[0]);
        if !accepted(kind, reply0) {
            return self.refused(family, req, reply0);
        }
        match kind {
            msg::RESET => {
                // A reset wipes the PF's state for the VF: start over. igb
                // keeps the VF's extra MAC filters (igb_vf_reset).
                let keep = match family {
                    Family::Igb => self.flags & FLAG_IGB_MAC_FILTERS,
                    Family::Ixgbe => 0,
                };
                *self = MbxLog {
                    flags: FLAG_RESET | keep,
                    ignored: self.ignored,
                    ..MbxLog::default()
                };
            }
            // ixgbe_set_vf_mac_addr does not look at the info field;
            // igb's info 0 is the MAC, CLR and ADD its extra filters.
            msg::SET_MAC_ADDR if info == 0 || family == Family::Ixgbe => {
                // The PFs refuse any other address (is_valid_ether_addr).
                let m = mac_of(req[1], req[2]);
                if !is_unicast(&m) {
                    return self.not_carried(kind);
                }
                self.mac = Some(m);
            }
            msg::SET_MAC_ADDR if info == msg::IGB_MAC_FILTER_CLEAR => {
                self.flags &= !FLAG_IGB_MAC_FILTERS;
                return false;
            }
            msg::SET_MAC_ADDR if info == msg::IGB_MAC_FILTER_ADD => {
                self.flags |= FLAG_IGB_MAC_FILTERS;
                self.ignored = self.ignored.saturating_add(1);
                return false;
            }
            msg::SET_MULTICAST => {
                // ixgbe_set_vf_multicasts takes the first 30; igb keeps a
                // larger count and puts the VF in multicast promiscuous
                // mode (igb_restore_vf_multicasts), which no log holds.
                let n = match family {
                    Family::Ixgbe => (info as usize).min(MAX_MC),
                    Family::Igb if info as usize > MAX_MC => return self.not_carried(kind),
                    Family::Igb => info as usize,
                };
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
                // one out of its range (an older ixgbe took a smaller one,
                // which a destination PF would refuse).
                let v = match family {
                    Family::Igb => req[1].min(IGB_MAX_FRAME),
                    Family::Ixgbe => req[1],
                };
                if max_frame_error(family, v).is_some() {
                    return self.not_carried(kind);
                }
                self.max_frame = Some(v);
            }
            msg::SET_PROMISC_OR_MACVLAN => match family {
                Family::Igb => {
                    if xcast_error(family, info).is_some() {
                        return self.not_carried(kind);
                    }
                    self.xcast = Some(info);
                }
                Family::Ixgbe => return self.macvlan(info as usize, mac_of(req[1], req[2])),
            },
            msg::API_NEGOTIATE if family == Family::Ixgbe => {
                if !api::known(req[1]) {
                    return self.not_carried(kind);
                }
                self.api = Some(req[1]);
            }
            msg::UPDATE_XCAST_MODE if family == Family::Ixgbe => {
                if xcast_error(family, req[1]).is_some() {
                    return self.not_carried(kind);
                }
                self.xcast = Some(req[1]);
            }
            // Queries leave nothing at the PF.
            k if family == Family::Ixgbe && msg::ixgbe_query(k) => return false,
            // ixgbe_ipsec_vf_add_sa: an SA in the PF's tables, until the
            // VF's RESET. A delete does not tell whether any is left (the
            // PF ACKs the delete of an unused entry): the flag stays.
            msg::IPSEC_ADD if family == Family::Ixgbe => {
                self.flags |= FLAG_IPSEC;
                self.ignored = self.ignored.saturating_add(1);
                return false;
            }
            msg::IPSEC_DEL if family == Family::Ixgbe => return false,
            _ => return self.not_carried(kind),
        }
        true
    }

    /// A request the PF refused: nothing changed, but for ixgbe's MACVLAN
    /// index 1 with a valid address answered by the handler (CTS):
    /// `ixgbe_set_vf_macvlan` cleared the VF's filters before it found no
    /// room. (An administrator's MAC on an untrusted VF is refused before
    /// the clear, and the PF keeps the filters; but a destination with
    /// the same settings refuses them as well, so the log holds none.)
    fn refused(&mut self, family: Family, req: &[u32; MBX_WORDS], reply0: u32) -> bool {
        let kind = msg::kind(req[0]);
        if family == Family::Ixgbe
            && kind == msg::SET_PROMISC_OR_MACVLAN
            && msg::info(req[0]) == 1
            && msg::kind(reply0) == kind
            && msg::is_nack(reply0)
            && reply0 & msg::CTS != 0
            && is_unicast(&mac_of(req[1], req[2]))
            && self.macvlans.iter().any(|m| m.is_some())
        {
            self.macvlans = [None; MAX_MACVLANS];
            return true;
        }
        false
    }

    /// ixgbe's MACVLAN `index` of `m`, accepted (`ixgbe_set_vf_macvlan`):
    /// index 0 or 1 clears every filter of the VF first (ixgbevf sends its
    /// whole list again from 1, or 0 when it is empty); 1 and more add
    /// one. The PF keeps no index: a filter goes to slot `index - 1`, or
    /// the first free slot when that one is taken (a driver that sends an
    /// index twice); past the slots, the filter is not carried.
    fn macvlan(&mut self, index: usize, m: [u8; 6]) -> bool {
        let kind = msg::SET_PROMISC_OR_MACVLAN;
        if index > 0 && !is_unicast(&m) {
            return self.not_carried(kind);
        }
        if index <= 1 {
            self.macvlans = [None; MAX_MACVLANS];
        }
        if index == 0 {
            return true;
        }
        let slot = match self.macvlans.get(index - 1) {
            Some(None) => Some(index - 1),
            _ => self.macvlans.iter().position(|s| s.is_none()),
        };
        match slot {
            Some(i) => {
                self.macvlans[i] = Some(m);
                true
            }
            None => self.not_carried(kind),
        }
    }

    /// The messages that rebuild this state at a PF, in the order the VF
    /// drivers send them after a reset: RESET, API_NEGOTIATE, MAC, LPE,
    /// VLANs, then the receive mode. ixgbe's is `ixgbevf_set_rx_mode`'s:
    /// xcast mode, multicast, unicast (MACVLANs from index 1): the PF's
    /// UPDATE_XCAST_MODE NONE clears VMOLR.ROMPE that SET_MULTICAST sets,
    /// so the order decides. igb's: multicast, then the promiscuous flags
    /// (`igb_set_vf_promisc` and `igb_set_vf_multicasts` end in the same
    /// VMOLR either way; igbvf sends no SET_PROMISC). Calls `f` for each;
    /// stops at the first error.
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
        for vid in self.vlan_ids() {
            f(&Message::set_vlan(vid, VlanOp::Add))?;
        }
        match family {
            Family::Ixgbe => {
                if let Some(x) = self.xcast {
                    f(&Message::new(&[msg::UPDATE_XCAST_MODE, x]))?;
                }
                if self.mc_count > 0 {
                    f(&Message::set_multicast(&self.mc[..self.mc_count as usize]))?;
                }
                for (i, m) in self.macvlans.iter().enumerate() {
                    if let Some(m) = m {
                        let (a, b) = mac_words(m);
                        let w0 = msg::word0(msg::SET_PROMISC_OR_MACVLAN, i as u32 + 1);
                        f(&Message::new(&[w0, a, b]))?;
                    }
                }
            }
            Family::Igb => {
                if self.mc_count > 0 {
                    f(&Message::set_multicast(&self.mc[..self.mc_count as usize]))?;
                }
                if let Some(x) = self.xcast {
                    f(&Message::new(&[msg::word0(msg::SET_PROMISC_OR_MACVLAN, x)]))?;
                }
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
        let kind_bits = self.flags >> UNCARRIED_KIND_SHIFT;
        if self.flags & 0xffff & !FLAGS_KNOWN != 0
            || (kind_bits != 0 && self.flags & FLAG_UNCARRIED == 0)
        {
            return Err(bad(
                "PF_MBX flags",
                u64::from(self.flags),
                u64::from(FLAG_RESET),
            ));
        }
        // State the source's PF holds and the log does not: a source
        // refuses to save it; a destination refuses it here, naming it.
        if let Some(u) = self.uncarried() {
            let value = match u {
                Uncarried::Request { kind } => u64::from(kind),
                _ => u64::from(self.flags & 0xff),
            };
            return Err(bad(u.field(), value, 0));
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
        // Head bits 16..31 hold the type of an uncarried request, with its
        // flag only (which check refuses, naming it).
        let (flags, present) = match head & FLAG_UNCARRIED {
            0 => (head & 0xff, head >> 8),
            _ => (head & 0xffff_00ff, (head >> 8) & 0xff),
        };
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
            flags,
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
