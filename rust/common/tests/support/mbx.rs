// SPDX-License-Identifier: GPL-2.0

//! The PF side of one VF's mailbox registers, as every PF model here holds
//! them: the control register's PF bits (PFSTS and PFACK, read to clear;
//! VFU, the VF's claim) and the message words. A model answers what
//! [`Mailbox::write`] says the VF posted.

#![allow(dead_code)]

use ivf_common::mbx::{ctrl, MBX_WORDS};
use ivf_common::regs::RegMap;

/// One VF's mailbox registers, PF side.
#[derive(Clone, Debug)]
pub struct Mailbox {
    /// Where the registers are.
    pub map: &'static RegMap,
    /// The message words.
    pub mem: [u32; MBX_WORDS],
    /// The control register's bits.
    pub ctrl: u32,
}

impl Mailbox {
    /// Empty, nothing posted, for the registers of `map`.
    pub fn new(map: &'static RegMap) -> Mailbox {
        Mailbox {
            map,
            mem: [0; MBX_WORDS],
            ctrl: 0,
        }
    }

    /// The word index of `off`, when it is one of the message words.
    fn word(&self, off: u32) -> Option<usize> {
        let m = self.map;
        (off >= m.mbx_mem && off < m.mbx_mem + 4 * MBX_WORDS as u32)
            .then(|| ((off - m.mbx_mem) / 4) as usize)
    }

    /// The VF reads `off`: a mailbox register's value (the control
    /// register's read-to-clear bits clear), or `None` for another one.
    pub fn read(&mut self, off: u32) -> Option<u32> {
        if off == self.map.mbx_ctrl {
            let v = self.ctrl;
            self.ctrl &= !ctrl::R2C;
            Some(v)
        } else {
            self.word(off).map(|i| self.mem[i])
        }
    }

    /// The VF writes `value` at `off`: true when it posted a request
    /// (REQ), which the model now reads from `mem` and answers.
    pub fn write(&mut self, off: u32, value: u32) -> bool {
        if off == self.map.mbx_ctrl {
            if value & ctrl::VFU != 0 {
                self.ctrl |= ctrl::VFU;
            }
            if value & (ctrl::REQ | ctrl::ACK) != 0 {
                self.ctrl &= !ctrl::VFU;
            }
            return value & ctrl::REQ != 0;
        }
        if let Some(i) = self.word(off) {
            self.mem[i] = value;
        }
        false
    }

    /// The PF read the request: PFACK.
    pub fn ack(&mut self) {
        self.ctrl |= ctrl::PFACK;
    }

    /// The PF's answer: the words, and PFSTS.
    pub fn reply(&mut self, words: [u32; MBX_WORDS]) {
        self.mem = words;
        self.ctrl |= ctrl::PFSTS;
    }
}
