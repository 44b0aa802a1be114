// SPDX-License-Identifier: GPL-2.0

//! The VF side of the mailbox over [`RegIo`], as a VF driver runs it:
//! lock with VFU, write the memory, REQ; wait PFACK, then PFSTS; read the
//! reply, ACK. Read-to-clear bits are kept in a shadow, as igbvf does.

use super::super::errno;
use super::super::hal::RegIo;
use super::super::regs::RegMap;
use super::proto::{accepted, ctrl, msg, reply_words, Message, MBX_WORDS};

/// How long a wait for the PF lasts at most, in microseconds: 1 s.
pub const MBX_TIMEOUT_US: u32 = 1_000_000;
/// The longest delay between two mailbox polls, in microseconds.
pub const MBX_POLL_US: u32 = 100;

/// The delays of one wait for the PF. A PF answers in its interrupt
/// handler, often within microseconds of the request: the delays start at
/// 1 us and double up to [`MBX_POLL_US`], so a quick answer costs a few
/// microseconds of polling (a replay is in the downtime) instead of a
/// 100 us sleep, and a slow PF is polled no more often than every
/// [`MBX_POLL_US`]. The wait ends after [`MBX_TIMEOUT_US`].
#[derive(Copy, Clone, Debug)]
pub struct Backoff {
    waited: u32,
    next: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { waited: 0, next: 1 }
    }
}

impl Iterator for Backoff {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.waited >= MBX_TIMEOUT_US {
            return None;
        }
        let d = self.next;
        self.waited += d;
        self.next = (d * 2).min(MBX_POLL_US);
        Some(d)
    }
}

/// Why a mailbox exchange failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MbxError {
    /// The PF did not do `what` within [`MBX_TIMEOUT_US`].
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
            MbxError::Timeout { .. } => errno::ETIMEDOUT,
            MbxError::Refused { .. } => errno::EREMOTEIO,
        }
    }
}

impl core::fmt::Display for MbxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            MbxError::Timeout { what, kind } => {
                write!(f, "PF did not {what} (message {kind:#x})")
            }
            MbxError::Refused { kind, reply } => write!(
                f,
                "PF refused {} (message {kind:#x}, reply {reply:#010x})",
                msg::name(kind)
            ),
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
        let mut delays = Backoff::default();
        loop {
            self.polls += 1;
            if self.take(bit) {
                return Ok(());
            }
            let Some(d) = delays.next() else {
                return Err(MbxError::Timeout { what, kind });
            };
            self.io.delay_us(d);
        }
    }

    fn lock(&mut self, kind: u32) -> Result<(), MbxError> {
        let mut delays = Backoff::default();
        loop {
            self.io.write32(self.map.mbx_ctrl, ctrl::VFU);
            if self.read_ctrl() & ctrl::VFU != 0 {
                return Ok(());
            }
            let Some(d) = delays.next() else {
                return Err(MbxError::Timeout {
                    what: "release the mailbox",
                    kind,
                });
            };
            self.io.delay_us(d);
        }
    }

    /// After CTRL.RST: waits while the PF's reset indications (RSTI, RSTD)
    /// are up, as igbvf does before it sends RESET.
    pub fn wait_reset_done(&mut self) -> Result<(), MbxError> {
        let mut delays = Backoff::default();
        loop {
            self.polls += 1;
            if !self.take(ctrl::RSTI | ctrl::RSTD) {
                return Ok(());
            }
            let Some(d) = delays.next() else {
                return Err(MbxError::Timeout {
                    what: "finish the VF reset",
                    kind: msg::RESET,
                });
            };
            self.io.delay_us(d);
        }
    }

    /// Sends `m`, waits for the reply and acknowledges it; returns the
    /// reply's words when the PF did the request ([`accepted`]): the
    /// [`reply_words`] of its type, the rest 0.
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
        // The words past what the PF's answer carries stay 0 (unread).
        let mut reply = [0u32; MBX_WORDS];
        for (i, w) in reply.iter_mut().take(reply_words(kind)).enumerate() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_starts_at_a_microsecond_and_ends_after_the_timeout() {
        extern crate std;
        let d: std::vec::Vec<u32> = Backoff::default().collect();
        assert_eq!(&d[..8], &[1, 2, 4, 8, 16, 32, 64, 100]);
        assert!(d[7..].iter().all(|&x| x == MBX_POLL_US));
        let total: u32 = d.iter().sum();
        assert!(
            (MBX_TIMEOUT_US..MBX_TIMEOUT_US + MBX_POLL_US).contains(&total),
            "{total}"
        );
    }
}
