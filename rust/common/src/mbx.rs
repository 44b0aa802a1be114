// SPDX-License-Identifier: GPL-2.0

//! The VF's own requests to its PF, as the PF-side state channel keeps them:
//! a canonical, bounded log of what the PF accepted, built by watching the
//! VF's mailbox, carried in the stream, and replayed on the destination
//! through the destination VF's own mailbox, so that the PF driver itself
//! re-applies every filter (Documentation/pf-channel.rst).
//!
//! Canonical means that the log holds the *effect* of the requests, not the
//! requests: the latest MAC, the current multicast set, the VLAN set, and so
//! on. Its size is fixed whatever the guest sends, so a flood of requests
//! costs nothing, and malformed requests (which the PF NACKs) are never
//! logged: only a request the PF answered with ACK changes the log.

use super::bytes::copy_into;
use super::hal::RegIo;
use super::ids::Family;
use super::regs::RegMap;

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
    /// igb: promiscuous flags; ixgbe: an extra unicast filter (MACVLAN).
    pub const SET_PROMISC_OR_MACVLAN: u32 = 0x06;
    /// ixgbe: mailbox API version negotiation.
    pub const API_NEGOTIATE: u32 = 0x08;
    /// ixgbe: queue configuration query (read-only, not logged).
    pub const GET_QUEUES: u32 = 0x09;
    /// ixgbe: unicast/multicast/promiscuous reception mode.
    pub const UPDATE_XCAST_MODE: u32 = 0x0c;
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
}

/// Most multicast hashes a SET_MULTICAST carries (both families).
pub const MAX_MC: usize = 30;
/// Most extra unicast filters (ixgbe MACVLAN) kept.
pub const MAX_MACVLANS: usize = 16;
/// Words in the mailbox memory.
pub const MBX_WORDS: usize = 16;
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

fn mac_of(w1: u32, w2: u32) -> [u8; 6] {
    let a = w1.to_le_bytes();
    let b = w2.to_le_bytes();
    [a[0], a[1], a[2], a[3], b[0], b[1]]
}

fn mac_words(m: &[u8; 6]) -> (u32, u32) {
    (
        u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
        u32::from_le_bytes([m[4], m[5], 0, 0]),
    )
}

/// Whether `reply0` is the PF doing request type `kind`: its type with ACK,
/// or for RESET also NACK, which igb answers when it has no MAC for the VF
/// (the reset happened all the same; SET_MAC_ADDR follows).
pub fn accepted(kind: u32, reply0: u32) -> bool {
    let done = match kind {
        msg::RESET => msg::ACK | msg::NACK,
        _ => msg::ACK,
    };
    reply0 & msg::TYPE_MASK == kind && reply0 & done != 0
}

/// A message to send on replay: `len` words of `words`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The words.
    pub words: [u32; MBX_WORDS],
    /// How many are used.
    pub len: usize,
}

impl Message {
    fn new(w: &[u32]) -> Message {
        let mut words = [0; MBX_WORDS];
        copy_into(&mut words[..w.len()], w);
        Message {
            words,
            len: w.len(),
        }
    }

    /// The message type (low 16 bits of word 0).
    pub fn kind(&self) -> u32 {
        self.words[0] & msg::TYPE_MASK
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
        let kind = req[0] & msg::TYPE_MASK;
        if !accepted(kind, reply0) {
            return false;
        }
        let info = (req[0] >> msg::INFO_SHIFT) & 0xff;
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
                    let w = req[1 + i / 2];
                    self.mc[i] = if i % 2 == 0 {
                        w as u16
                    } else {
                        (w >> 16) as u16
                    };
                }
                for h in &mut self.mc[n..] {
                    *h = 0;
                }
                self.mc_count = n as u8;
            }
            msg::SET_VLAN => {
                let vid = req[1] & 0xfff;
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
        f(&Message::new(&[msg::RESET]))?;
        if let (Family::Ixgbe, Some(api)) = (family, self.api) {
            f(&Message::new(&[msg::API_NEGOTIATE, api]))?;
        }
        if let Some(m) = &self.mac {
            let (a, b) = mac_words(m);
            f(&Message::new(&[msg::SET_MAC_ADDR, a, b]))?;
        }
        if let Some(v) = self.max_frame {
            f(&Message::new(&[msg::SET_LPE, v]))?;
        }
        if self.mc_count > 0 {
            let n = self.mc_count as usize;
            let mut w = [0u32; 1 + MAX_MC / 2];
            w[0] = msg::SET_MULTICAST | (n as u32) << msg::INFO_SHIFT;
            for (i, h) in self.mc[..n].iter().enumerate() {
                w[1 + i / 2] |= u32::from(*h) << (16 * (i % 2));
            }
            f(&Message::new(&w[..1 + n.div_ceil(2)]))?;
        }
        for vid in self.vlan_ids() {
            f(&Message::new(&[
                msg::SET_VLAN | 1 << msg::INFO_SHIFT,
                u32::from(vid),
            ]))?;
        }
        for (i, m) in self.macvlans.iter().enumerate() {
            if let Some(m) = m {
                let (a, b) = mac_words(m);
                let info = (i as u32 + 1) << msg::INFO_SHIFT;
                f(&Message::new(&[msg::SET_PROMISC_OR_MACVLAN | info, a, b]))?;
            }
        }
        if let Some(x) = self.xcast {
            match family {
                Family::Ixgbe => f(&Message::new(&[msg::UPDATE_XCAST_MODE, x]))?,
                Family::Igb => f(&Message::new(&[
                    msg::SET_PROMISC_OR_MACVLAN | x << msg::INFO_SHIFT
                ]))?,
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

/// Most polls while waiting for the PF, and the delay between them: 1 s.
pub const MBX_POLLS: u32 = 10_000;
/// Delay between mailbox polls, in microseconds.
pub const MBX_POLL_US: u32 = 100;

/// Why a mailbox exchange failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MbxError {
    /// The PF did not do `what` within [`MBX_POLLS`] polls.
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// The message type.
        kind: u32,
    },
    /// The PF answered `reply` to a message of type `kind`.
    Refused {
        /// The message type.
        kind: u32,
        /// Word 0 of the reply.
        reply: u32,
    },
}

impl MbxError {
    /// Linux errno (positive).
    pub const fn errno(&self) -> i32 {
        match self {
            MbxError::Timeout { .. } => 110, // ETIMEDOUT
            MbxError::Refused { .. } => 121, // EREMOTEIO
        }
    }
}

impl core::fmt::Display for MbxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            MbxError::Timeout { what, kind } => {
                write!(f, "PF did not {what} (message {kind:#x})")
            }
            MbxError::Refused { kind, reply } => {
                write!(f, "PF refused message {kind:#x} (reply {reply:#010x})")
            }
        }
    }
}

/// The VF side of the mailbox over [`RegIo`]: what a VF driver does, used
/// to replay a log on a destination whose guest is stopped.
pub struct VfMailbox<'a, IO: RegIo> {
    io: &'a mut IO,
    map: &'a RegMap,
    shadow: u32,
    /// Register polls made, for the figures.
    pub polls: u32,
}

impl<'a, IO: RegIo> VfMailbox<'a, IO> {
    /// The mailbox of the VF behind `io`.
    pub fn new(io: &'a mut IO, map: &'a RegMap) -> Self {
        VfMailbox {
            io,
            map,
            shadow: 0,
            polls: 0,
        }
    }

    fn read_ctrl(&mut self) -> u32 {
        let v = self.io.read32(self.map.mbx_ctrl) | self.shadow;
        self.shadow |= v & ctrl::R2C;
        v
    }

    fn take(&mut self, bit: u32) -> bool {
        let set = self.read_ctrl() & bit != 0;
        self.shadow &= !bit;
        set
    }

    fn wait(&mut self, bit: u32, what: &'static str, kind: u32) -> Result<(), MbxError> {
        for _ in 0..MBX_POLLS {
            self.polls += 1;
            if self.take(bit) {
                return Ok(());
            }
            self.io.delay_us(MBX_POLL_US);
        }
        Err(MbxError::Timeout { what, kind })
    }

    fn lock(&mut self, kind: u32) -> Result<(), MbxError> {
        for _ in 0..MBX_POLLS {
            self.io.write32(self.map.mbx_ctrl, ctrl::VFU);
            if self.read_ctrl() & ctrl::VFU != 0 {
                return Ok(());
            }
            self.io.delay_us(MBX_POLL_US);
        }
        Err(MbxError::Timeout {
            what: "release the mailbox",
            kind,
        })
    }

    /// Sends `m`, waits for the reply and acknowledges it; returns the
    /// reply's words when the PF did the request ([`accepted`]).
    pub fn exchange(&mut self, m: &Message) -> Result<[u32; MBX_WORDS], MbxError> {
        let kind = m.kind();
        self.lock(kind)?;
        // Stale acknowledgements from before are not ours.
        self.take(ctrl::PFACK);
        self.take(ctrl::PFSTS);
        for (i, w) in m.words[..m.len].iter().enumerate() {
            self.io.write32(self.map.mbx_mem + 4 * i as u32, *w);
        }
        self.io.write32(self.map.mbx_ctrl, ctrl::REQ);
        self.wait(ctrl::PFACK, "acknowledge", kind)?;
        self.wait(ctrl::PFSTS, "reply", kind)?;
        self.lock(kind)?;
        let mut reply = [0u32; MBX_WORDS];
        for (i, w) in reply.iter_mut().enumerate() {
            *w = self.io.read32(self.map.mbx_mem + 4 * i as u32);
        }
        self.io.write32(self.map.mbx_ctrl, ctrl::ACK);
        if !accepted(kind, reply[0]) {
            return Err(MbxError::Refused {
                kind,
                reply: reply[0],
            });
        }
        Ok(reply)
    }
}

/// Replays `log` through the VF's mailbox; returns the log the PF accepted
/// (equal to `log` on success) and the messages sent.
pub fn replay_log(
    io: &mut impl RegIo,
    map: &RegMap,
    family: Family,
    log: &MbxLog,
) -> Result<(MbxLog, u32), MbxError> {
    let mut mbx = VfMailbox::new(io, map);
    let mut accepted = MbxLog::default();
    let mut sent = 0;
    log.replay(family, |m| {
        let reply = mbx.exchange(m)?;
        let mut req = [0u32; MBX_WORDS];
        copy_into(&mut req, &m.words[..m.len]);
        accepted.observe(family, &req, reply[0]);
        sent += 1;
        Ok(())
    })?;
    Ok((accepted, sent))
}

/// A mailbox word the snoop could not see (no message type is all ones).
const UNKNOWN_WORD: u32 = u32::MAX;

/// Watches a VF's mailbox traffic (as a trap sees it) and keeps the log.
#[derive(Clone, Debug, Default)]
pub struct Snoop {
    /// What the VF last wrote to each mailbox memory word.
    shadow: [u32; MBX_WORDS],
    /// The request posted (REQ) whose reply the VF has not read yet.
    pending: Option<[u32; MBX_WORDS]>,
    /// The accepted requests.
    pub log: MbxLog,
}

impl Snoop {
    /// The VF wrote `value` at BAR0 offset `off`.
    ///
    /// Only the PF can make a reply: a VF that writes the mailbox memory
    /// while its request is pending abandons it (what it reads back may be
    /// its own words, ACK included), and a request that already carries ACK
    /// or NACK is one the PF ignores. Neither is logged.
    pub fn on_write(&mut self, map: &RegMap, off: u32, value: u32) {
        if off >= map.mbx_mem && off < map.mbx_mem + 4 * MBX_WORDS as u32 && off % 4 == 0 {
            self.shadow[((off - map.mbx_mem) / 4) as usize] = value;
            self.pending = None;
        } else if off == map.mbx_ctrl && value & ctrl::REQ != 0 {
            // A message whose first word is unknown cannot be logged.
            let first = self.shadow[0];
            self.pending = (first != UNKNOWN_WORD && first & (msg::ACK | msg::NACK) == 0)
                .then_some(self.shadow);
        }
    }

    /// The VF read `value` at BAR0 offset `off`.
    pub fn on_read(&mut self, map: &RegMap, family: Family, off: u32, value: u32) {
        if off != map.mbx_mem {
            return;
        }
        if let Some(req) = self.pending {
            // The reply to our request carries its type and ACK or NACK.
            if value & msg::TYPE_MASK == req[0] & msg::TYPE_MASK
                && value & (msg::ACK | msg::NACK) != 0
            {
                self.log.observe(family, &req, value);
                self.pending = None;
            }
        }
    }

    /// The VF wrote the mailbox page in a way the snoop cannot follow word
    /// by word (a long or unaligned access): what it remembered of the
    /// mailbox memory is unknown now, so the next request is not logged
    /// unless its words are written again.
    pub fn taint(&mut self) {
        self.shadow = [UNKNOWN_WORD; MBX_WORDS];
        self.pending = None;
    }

    /// Whether a request is in flight (posted, reply not read).
    pub fn in_flight(&self) -> bool {
        self.pending.is_some()
    }

    /// Forgets everything: the VF was reset, and so were its PF filters.
    pub fn reset(&mut self) {
        *self = Snoop::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(w: &[u32]) -> [u32; MBX_WORDS] {
        let mut r = [0; MBX_WORDS];
        r[..w.len()].copy_from_slice(w);
        r
    }

    #[test]
    fn a_reply_the_vf_wrote_itself_is_not_logged() {
        let map = &crate::regs::IGB;
        let set = [msg::SET_MAC_ADDR, 0x4433_2211, 0x6655];
        let mut s = Snoop::default();
        for (i, w) in set.iter().enumerate() {
            s.on_write(map, map.mbx_mem + 4 * i as u32, *w);
        }
        s.on_write(map, map.mbx_ctrl, ctrl::REQ);
        // The VF forges the PF's ACK in the buffer, then reads it back.
        s.on_write(map, map.mbx_mem, msg::SET_MAC_ADDR | msg::ACK);
        s.on_read(map, Family::Igb, map.mbx_mem, msg::SET_MAC_ADDR | msg::ACK);
        assert_eq!(s.log.mac, None, "a self-written ACK was logged");
        // A request that carries ACK itself, read back before the PF answers.
        s.on_write(map, map.mbx_mem, msg::SET_MAC_ADDR | msg::ACK);
        s.on_write(map, map.mbx_ctrl, ctrl::REQ);
        assert!(!s.in_flight(), "the PF ignores a request with ACK set");
        s.on_read(map, Family::Igb, map.mbx_mem, msg::SET_MAC_ADDR | msg::ACK);
        assert_eq!(s.log.mac, None);
        // The honest exchange is logged.
        s.on_write(map, map.mbx_mem, msg::SET_MAC_ADDR);
        s.on_write(map, map.mbx_ctrl, ctrl::REQ);
        s.on_read(map, Family::Igb, map.mbx_mem, msg::SET_MAC_ADDR | msg::ACK);
        assert_eq!(s.log.mac, Some([0x11, 0x22, 0x33, 0x44, 0x55, 0x66]));
    }

    #[test]
    fn only_acked_requests_count() {
        let mut l = MbxLog::default();
        assert!(l.observe(Family::Igb, &req(&[msg::RESET]), msg::RESET | msg::ACK));
        let set = req(&[msg::SET_MAC_ADDR, 0x4433_2211, 0x6655]);
        assert!(!l.observe(Family::Igb, &set, msg::SET_MAC_ADDR | msg::NACK));
        assert_eq!(l.mac, None);
        assert!(
            !l.observe(Family::Igb, &set, msg::RESET | msg::ACK),
            "reply of another type"
        );
        assert!(l.observe(Family::Igb, &set, msg::SET_MAC_ADDR | msg::ACK | msg::CTS));
        assert_eq!(l.mac, Some([0x11, 0x22, 0x33, 0x44, 0x55, 0x66]));
    }

    #[test]
    fn reset_starts_over_and_floods_stay_bounded() {
        let mut l = MbxLog::default();
        l.observe(Family::Igb, &req(&[msg::RESET]), msg::RESET | msg::ACK);
        for vid in 0..4096 {
            l.observe(
                Family::Igb,
                &req(&[msg::SET_VLAN | 1 << 16, vid]),
                msg::SET_VLAN | msg::ACK,
            );
        }
        assert_eq!(l.vlan_ids().count(), 4096);
        l.observe(
            Family::Igb,
            &req(&[msg::SET_VLAN, 7]),
            msg::SET_VLAN | msg::ACK,
        );
        assert!(!l.has_vlan(7));
        // An oversized multicast count is ignored, not truncated.
        assert!(!l.observe(
            Family::Igb,
            &req(&[msg::SET_MULTICAST | 31 << 16]),
            msg::SET_MULTICAST | msg::ACK
        ));
        assert_eq!(l.ignored, 1);
        l.observe(Family::Igb, &req(&[msg::RESET]), msg::RESET | msg::ACK);
        assert_eq!(l.vlan_ids().count(), 0);
        assert_eq!(
            l.ignored, 1,
            "the count of ignored requests survives a reset"
        );
    }

    #[test]
    fn replay_order_and_round_trip() {
        let mut l = MbxLog::default();
        let f = Family::Ixgbe;
        l.observe(f, &req(&[msg::RESET]), msg::RESET | msg::ACK);
        l.observe(
            f,
            &req(&[msg::API_NEGOTIATE, 5]),
            msg::API_NEGOTIATE | msg::ACK,
        );
        l.observe(
            f,
            &req(&[msg::SET_MAC_ADDR, 0x0403_0201, 0x0605]),
            msg::SET_MAC_ADDR | msg::ACK,
        );
        l.observe(
            f,
            &req(&[msg::SET_MULTICAST | 3 << 16, 0x0002_0001, 0x0003]),
            msg::SET_MULTICAST | msg::ACK,
        );
        l.observe(
            f,
            &req(&[msg::SET_VLAN | 1 << 16, 100]),
            msg::SET_VLAN | msg::ACK,
        );
        l.observe(
            f,
            &req(&[msg::UPDATE_XCAST_MODE, 2]),
            msg::UPDATE_XCAST_MODE | msg::ACK,
        );
        l.observe(
            f,
            &req(&[msg::SET_PROMISC_OR_MACVLAN | 2 << 16, 0x0a0b0c0d, 0x0e0f]),
            msg::SET_PROMISC_OR_MACVLAN | msg::ACK,
        );
        let mut kinds = [0u32; 8];
        let mut n = 0;
        let mut replayed = MbxLog::default();
        l.replay(f, |m| {
            kinds[n] = m.kind();
            n += 1;
            let mut r = [0; MBX_WORDS];
            r[..m.len].copy_from_slice(&m.words[..m.len]);
            replayed.observe(f, &r, m.kind() | msg::ACK);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(
            &kinds[..n],
            [
                msg::RESET,
                msg::API_NEGOTIATE,
                msg::SET_MAC_ADDR,
                msg::SET_MULTICAST,
                msg::SET_VLAN,
                msg::SET_PROMISC_OR_MACVLAN,
                msg::UPDATE_XCAST_MODE
            ]
        );
        assert_eq!(replayed, l, "replaying the log rebuilds the same log");
        let mut buf = [0u8; ENCODED_LEN];
        l.encode(&mut buf);
        assert_eq!(MbxLog::decode(&buf), Some(l));
        assert_eq!(MbxLog::decode(&buf[1..]), None);
    }
}
