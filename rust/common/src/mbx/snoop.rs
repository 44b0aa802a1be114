// SPDX-License-Identifier: GPL-2.0

//! The trap's view of a VF's mailbox traffic: requests the VF posts, the
//! PF's replies it reads, and the log they build.

use super::super::ids::Family;
use super::super::regs::RegMap;
use super::log::MbxLog;
use super::proto::{ctrl, msg, MBX_WORDS};

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
            self.pending = (first != UNKNOWN_WORD && !msg::is_reply(first)).then_some(self.shadow);
        }
    }

    /// The VF read `value` at BAR0 offset `off`.
    pub fn on_read(&mut self, map: &RegMap, family: Family, off: u32, value: u32) {
        if off != map.mbx_mem {
            return;
        }
        if let Some(req) = self.pending {
            // The reply to our request carries its type and ACK or NACK.
            if msg::kind(value) == msg::kind(req[0]) && msg::is_reply(value) {
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
