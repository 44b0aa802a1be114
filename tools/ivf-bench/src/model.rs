// SPDX-License-Identifier: GPL-2.0

//! A register-level model of an Intel VF's BAR0 (82599 semantics): enable
//! handshakes that complete after a few reads, heads writable only while
//! the queue is disabled, a transmitter that sends one descriptor per head
//! read, read-to-clear EICR and mailbox bits, and counters of every access.
//!
//! Shared by the host tests (`rust/common/tests`) and the figures
//! (`ivf-bench`), which include this file.

#![allow(non_snake_case, dead_code)]

use std::collections::HashMap;

use ivf_common::hal::RegIo;
use ivf_common::regs::{RegMap, DCTL_ENABLE};

/// An 82599 VF as the HAL sees it through BAR0.
/// Register-level model of an Intel VF's BAR0, for a given register map.
pub struct VfModel {
    map: &'static RegMap,
    /// Register values.
    pub regs: HashMap<u32, u32>,
    /// Enable bits in flight: register -> (target value, reads left).
    pending: HashMap<u32, (bool, u32)>,
    /// TX queues whose transmitter is wedged (head never moves).
    /// Bit n: TX queue n is wedged.
    pub stuck_tx: u32,
    /// Register reads.
    pub reads: u32,
    /// Register writes.
    pub writes: u32,
    /// Poll delays.
    pub delays: u32,
    /// Reads of read-to-clear registers the HAL must never read.
    pub forbidden_reads: Vec<u32>,
    /// Head writes while the queue was enabled (ignored, as the 82599 does).
    pub head_writes_while_enabled: Vec<u32>,
    /// Descriptors the modelled transmitter sent.
    pub packets_sent: u32,
    /// Heads take only a write of 0 (the emulated 82599's strict mode):
    /// silicon whose head did not take a load's write.
    pub heads_take_only_zero: bool,
    /// TX queue control registers written with the family's flush bit
    /// (kept set in the register, as a device slow to clear it would).
    pub tx_flushes: Vec<u32>,
}

impl VfModel {
    /// A powered-up VF with every register 0.
    pub fn new(map: &'static RegMap) -> Self {
        VfModel {
            map,
            regs: HashMap::new(),
            pending: HashMap::new(),
            stuck_tx: 0,
            reads: 0,
            writes: 0,
            delays: 0,
            forbidden_reads: Vec::new(),
            head_writes_while_enabled: Vec::new(),
            heads_take_only_zero: false,
            tx_flushes: Vec::new(),
            packets_sent: 0,
        }
    }

    fn queue_of(&self, off: u32, base: u32) -> Option<u32> {
        let m = self.map;
        (off >= base && off < base + m.queue_stride * m.max_queue_pairs)
            .then(|| (off - base) / m.queue_stride)
    }

    fn enabled(&self, dctl: u32) -> bool {
        self.regs.get(&dctl).copied().unwrap_or(0) & DCTL_ENABLE != 0
    }

    fn ring_entries(&self, q: u32) -> u32 {
        let M = self.map;
        (self.regs.get(&M.txq(M.tx.len, q)).copied().unwrap_or(0) / 16).max(1)
    }

    /// Sets a register directly (test setup).
    pub fn set(&mut self, off: u32, v: u32) {
        self.regs.insert(off, v);
    }
}

impl RegIo for VfModel {
    fn read32(&mut self, off: u32) -> u32 {
        self.reads += 1;
        let M = self.map;
        if off == M.eicr || off == M.mbx_ctrl {
            self.forbidden_reads.push(off);
            let v = self.regs.get(&off).copied().unwrap_or(0);
            self.regs.insert(off, 0); // read-to-clear
            return v;
        }
        // An enable handshake completes after a few reads.
        if let Some((target, left)) = self.pending.get(&off).copied() {
            if left == 0 {
                let v = self.regs.get(&off).copied().unwrap_or(0);
                self.regs.insert(
                    off,
                    if target {
                        v | DCTL_ENABLE
                    } else {
                        v & !DCTL_ENABLE
                    },
                );
                self.pending.remove(&off);
            } else {
                self.pending.insert(off, (target, left - 1));
            }
        }
        // The transmitter sends one descriptor per head read.
        if let Some(q) = self.queue_of(off, M.tx.head) {
            if off == M.txq(M.tx.head, q)
                && self.enabled(M.txq(M.tx.dctl, q))
                && self.stuck_tx & (1 << q) == 0
            {
                let head = self.regs.get(&off).copied().unwrap_or(0);
                let tail = self.regs.get(&M.txq(M.tx.tail, q)).copied().unwrap_or(0);
                if head != tail {
                    let n = self.ring_entries(q);
                    self.regs.insert(off, (head + 1) % n);
                    self.packets_sent += 1;
                }
            }
        }
        self.regs.get(&off).copied().unwrap_or(0)
    }

    fn write32(&mut self, off: u32, v: u32) {
        self.writes += 1;
        let M = self.map;
        if let Some(q) = self.queue_of(off, M.tx.dctl) {
            if off == M.txq(M.tx.dctl, q) && M.tx_flush != 0 && v & M.tx_flush != 0 {
                self.tx_flushes.push(off);
            }
        }
        for (dctl, head) in [(M.rx.dctl, M.rx.head), (M.tx.dctl, M.tx.head)] {
            if let Some(q) = self.queue_of(off, head) {
                if off == head + q * M.queue_stride && self.enabled(dctl + q * M.queue_stride) {
                    self.head_writes_while_enabled.push(off);
                    return; // the 82599 ignores it
                }
                if off == head + q * M.queue_stride && self.heads_take_only_zero && v != 0 {
                    return;
                }
            }
            if let Some(q) = self.queue_of(off, dctl) {
                if off == dctl + q * M.queue_stride {
                    // The enable bit follows the write only after 3 reads.
                    let cur = self.regs.get(&off).copied().unwrap_or(0);
                    self.regs
                        .insert(off, (v & !DCTL_ENABLE) | (cur & DCTL_ENABLE));
                    self.pending.insert(off, (v & DCTL_ENABLE != 0, 3));
                    return;
                }
            }
        }
        match off {
            o if o == M.eimc => {
                let m = self.regs.get(&M.eims).copied().unwrap_or(0);
                self.regs.insert(M.eims, m & !v);
            }
            o if o == M.eims => {
                let m = self.regs.get(&M.eims).copied().unwrap_or(0);
                self.regs.insert(M.eims, m | v);
            }
            o if o == M.eics => {
                let c = self.regs.get(&M.eicr).copied().unwrap_or(0);
                self.regs.insert(M.eicr, c | v);
            }
            _ => {
                self.regs.insert(off, v);
            }
        }
    }

    fn delay_us(&mut self, _us: u32) {
        self.delays += 1;
    }
}
