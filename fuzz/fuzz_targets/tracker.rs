// SPDX-License-Identifier: GPL-2.0

//! `tracker`: the dirty tracker (`tracker::Tracker`) against an adversarial
//! model VF, with the soundness oracle of rust/common/tests/dirty_tracker.rs
//! made exact: every guest page the model VF writes by DMA after logging
//! starts must be returned by a later report. The last report comes after
//! the driver's quiesce, as after STOP_COPY.
//!
//! The guest may do anything the trap lets through: any descriptor bytes
//! (addresses anywhere, IOVA 0, DD-looking bits, legacy / advanced / split
//! formats), tails and heads anywhere, rings moved, resized and re-enabled,
//! any RX page offset; TX registers directly; the host resets the VF,
//! quiesces and resumes it, and reports any window at any time. The model
//! VF receives on any queue that has a descriptor (data, possibly in
//! flight for a while, then write-back and head advance) and sends on TX
//! (descriptor write-back, head write-back).
//!
//! Excused, as Documentation/dirty-tracking.rst lists them under Limits:
//! a write through a descriptor the guest changed after the tracker read
//! it, and a TX write through a ring that was neither the one sampled at
//! the previous report nor the one at the next. `IVF_FUZZ_EXCUSE` (comma
//! list) looks past known findings (fuzz/artifacts-found/README.md):
//! `dd` and `iova0` excuse writes through a descriptor whose upper word
//! has bit 0 set and to a buffer or head write-back word at IOVA 0 (fixed
//! in 713d746); `empty-window` asks no empty report window and
//! `partial-window` widens windows to whole bitmap pages.
//! `IVF_FUZZ_DEVICE=forged-start` makes the model VF keep a descriptor in
//! flight across ring state the guest forged under a running queue before
//! logging started (a tail moved back onto the head, a ring moved):
//! undefined in the datasheets, and the tracker cannot see it.
//!
//! Also checked: a tainted tracker reports every logged page of the
//! window; spans stay inside the window and the logged ranges; no trap
//! reads more than one ring of descriptors.

#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use ivf_common::dirty::{self, LoggedRange, Range};
use ivf_common::hal::RegIo;
use ivf_common::regs::{RegMap, DCTL_ENABLE, IGB, IXGBE};
use ivf_common::tracker::{DmaRead, Slot, Tracker, MAX_SLOTS};
use libfuzzer_sys::fuzz_target;

#[path = "../../rust/common/tests/support/mod.rs"]
mod support;
use support::io::Shared;

const PAGE: u64 = 4096;
/// Guest memory: IOVA 0 up to here (IOVA 0 is RAM, as in a VM).
const PAGES: u64 = 64;
const MEM: u64 = PAGES * PAGE;
/// BAR0 bytes modelled (every register of both families).
const BAR: usize = 0x4000;
const QUEUES: usize = 8;
/// What an unset SRRCTL size means to the device (the PF's RCTL.BSIZE),
/// within the tracker's bound for it.
const PKT_BUF_DEFAULT: u64 = 16 << 10;
const HDR_BUF_DEFAULT: u64 = 63 << 6;

type T = Tracker<Vec<LoggedRange>, Vec<u64>, Vec<Slot>>;

/// Known suspects a run may be told to look past, and device variants.
struct Knobs {
    /// Excuse writes through a descriptor whose upper word has bit 0 set.
    dd: bool,
    /// Excuse writes to a buffer or head write-back word at IOVA 0.
    iova0: bool,
    /// Ask for no empty report window (whose page the tracker clears).
    empty_window: bool,
    /// Widen report windows to whole bitmap pages (the tracker clears a
    /// page a window only partly covers).
    partial_window: bool,
    /// Before logging starts, the VF keeps a descriptor in flight across a
    /// tail moved back onto the head (and then runs on past the tail) or a
    /// ring moved under the running queue, writing back to the old ring.
    /// The datasheets leave both undefined; the tracker, which trusts the
    /// registers at LOGGING_START, cannot see them.
    forged_start: bool,
}

fn knobs() -> &'static Knobs {
    static K: OnceLock<Knobs> = OnceLock::new();
    K.get_or_init(|| {
        let has = |var: &str, w: &str| {
            std::env::var(var)
                .unwrap_or_default()
                .split(',')
                .any(|x| x.trim() == w)
        };
        Knobs {
            dd: has("IVF_FUZZ_EXCUSE", "dd"),
            iova0: has("IVF_FUZZ_EXCUSE", "iova0"),
            empty_window: has("IVF_FUZZ_EXCUSE", "empty-window"),
            partial_window: has("IVF_FUZZ_EXCUSE", "partial-window"),
            forged_start: has("IVF_FUZZ_DEVICE", "forged-start"),
        }
    })
}

/// What wrote a page, for the failure message.
#[derive(Copy, Clone, Debug)]
#[allow(dead_code)] // read through Debug only
enum Cause {
    RxBuffer { q: u32, desc: u64, lo: u64, hi: u64 },
    RxHeader { q: u32, desc: u64, lo: u64, hi: u64 },
    RxWriteBack { q: u32, desc: u64 },
    TxWriteBack { q: u32 },
    TxHeadWriteBack { q: u32, at: u64 },
}

/// TX registers the device writes through (bal, bah, len, wbal, wbah).
type TxCfg = [u32; 5];

/// A descriptor the device has fetched and not yet written back.
#[derive(Copy, Clone, Debug)]
struct InFlight {
    /// Its IOVA.
    at: u64,
    /// Its bytes as fetched.
    bytes: [u8; 16],
    lo: u64,
    hi: u64,
}

/// A descriptor as the tracker last read it.
#[derive(Copy, Clone)]
struct Seen {
    bytes: [u8; 16],
    /// Also inside another queue's ring: which one the tracker read it for
    /// is unknown.
    shared: bool,
}

/// The model VF: BAR0, guest memory, and the oracle's books.
struct Vf {
    map: &'static RegMap,
    regs: Vec<u32>,
    mem: Vec<u8>,
    stamp: u8,
    inflight: [Option<InFlight>; QUEUES],
    seen: HashMap<(u32, u64), Seen>,
    /// Logged pages (of 4 KiB) inside guest memory.
    logged: Vec<bool>,
    /// Pages written by DMA and not yet reported, with the first write.
    pending: BTreeMap<u64, (Cause, usize)>,
    /// TX writes since the last report, judged at the next one.
    tx_writes: Vec<(u32, TxCfg, u64, Cause, usize)>,
    /// Step of the input, for the failure message.
    step: usize,
    logging: bool,
}

impl Vf {
    fn reg(&self, off: u32) -> u32 {
        self.regs.get(off as usize / 4).copied().unwrap_or(0)
    }

    fn set(&mut self, off: u32, v: u32) {
        if let Some(r) = self.regs.get_mut(off as usize / 4) {
            *r = v;
        }
    }

    fn queues(&self) -> u32 {
        self.map.max_queue_pairs
    }

    fn rx(&self, reg: u32, q: u32) -> u32 {
        self.reg(self.map.rxq(reg, q))
    }

    fn tx(&self, reg: u32, q: u32) -> u32 {
        self.reg(self.map.txq(reg, q))
    }

    /// RX ring of queue `q` as the device sees it: (base, descriptors).
    fn rx_ring(&self, q: u32) -> (u64, u32) {
        let r = &self.map.rx;
        let base = u64::from(self.rx(r.bal, q)) | u64::from(self.rx(r.bah, q)) << 32;
        (base, self.rx(r.len, q) / 16)
    }

    fn tx_cfg(&self, q: u32) -> TxCfg {
        let t = &self.map.tx;
        [
            self.tx(t.bal, q),
            self.tx(t.bah, q),
            self.tx(t.len, q),
            self.tx(t.wbal, q),
            self.tx(t.wbah, q),
        ]
    }

    fn read_mem(&self, iova: u64, buf: &mut [u8]) -> bool {
        let Some(end) = iova.checked_add(buf.len() as u64) else {
            return false;
        };
        if end > MEM {
            return false;
        }
        buf.copy_from_slice(&self.mem[iova as usize..end as usize]);
        true
    }

    /// A guest CPU write (its pages are the VMM's to learn from KVM).
    fn cpu_write(&mut self, iova: u64, data: &[u8]) {
        // Only the part inside guest memory lands.
        if iova >= MEM {
            return;
        }
        let n = data.len().min((MEM - iova) as usize);
        let at = iova as usize;
        self.mem[at..at + n].copy_from_slice(&data[..n]);
    }

    /// Pages `[iova, iova + len)` touches inside guest memory (the IOMMU
    /// faults the rest).
    fn dma_pages(iova: u64, len: u64) -> impl Iterator<Item = u64> {
        let end = iova.saturating_add(len).min(MEM);
        let (first, last) = (iova / PAGE, end.saturating_sub(1) / PAGE);
        (first..=last).filter(move |_| iova < end)
    }

    /// A DMA write of the device: memory changes, and unless excused the
    /// pages must be reported later.
    fn dma(&mut self, iova: u64, data: &[u8], cause: Cause, excused: bool) {
        self.cpu_write(iova, data);
        if excused || !self.logging {
            return;
        }
        for p in Self::dma_pages(iova, data.len() as u64) {
            if self.logged[p as usize] {
                let step = self.step;
                self.pending.entry(p).or_insert((cause, step));
            }
        }
    }

    /// `len` bytes of a new stamp (payloads differ every time).
    fn payload(&mut self, len: u64) -> Vec<u8> {
        self.stamp = self.stamp.wrapping_add(1);
        vec![self.stamp; len as usize]
    }

    /// BAR0 write reaching the device (from the tracker, the driver or
    /// the guest's unmapped pages).
    fn write_reg(&mut self, off: u32, v: u32) {
        let m = self.map;
        let old = self.reg(off);
        self.set(off, v);
        let Some(rel) = off.checked_sub(m.rx.bal) else {
            return;
        };
        let q = rel / m.queue_stride;
        if q >= self.queues() || off / 4096 != m.rx_tail_page() {
            return;
        }
        let reg = m.rx.bal + rel % m.queue_stride;
        let qi = q as usize;
        // Before logging, the guest's RX page writes reach the VF untrapped:
        // ring state forged under a running queue then is invisible to the
        // tracker (see `Knobs::forged_start`); this VF drops the descriptor
        // it has in flight instead.
        let forged = !self.logging && !knobs().forged_start;
        if reg == m.rx.dctl && v & DCTL_ENABLE == 0 {
            // Disabled: the queue does no more DMA.
            self.inflight[qi] = None;
        } else if reg == m.rx.head {
            // The device starts over at the new head.
            self.inflight[qi] = None;
        } else if reg == m.rx.tail && v == self.reg(m.rxq(m.rx.head, q)) && forged {
            // The tail moved back onto the head un-posts the descriptor.
            self.inflight[qi] = None;
        } else if [m.rx.bal, m.rx.bah, m.rx.len].contains(&reg) && old != v {
            // What the tracker read of the old ring says nothing of the new.
            self.seen.retain(|k, _| k.0 != q);
            if forged {
                self.inflight[qi] = None;
            }
        }
    }

    /// The device fetches RX queue `q`'s next descriptor (or has it).
    fn rx_fetch(&mut self, q: u32) -> Option<InFlight> {
        let qi = q as usize;
        if let Some(f) = self.inflight[qi] {
            return Some(f);
        }
        let r = &self.map.rx;
        let (base, count) = self.rx_ring(q);
        let (head, tail) = (self.rx(r.head, q), self.rx(r.tail, q));
        let on = self.rx(r.dctl, q) & DCTL_ENABLE != 0;
        if !on || count == 0 || head >= count || tail >= count || head == tail {
            return None;
        }
        let at = base.wrapping_add(u64::from(head) * 16);
        let mut d = [0u8; 16];
        if !self.read_mem(at, &mut d) {
            return None; // IOMMU fault: the device can do nothing
        }
        let f = InFlight {
            at,
            bytes: d,
            lo: u64::from_le_bytes(d[0..8].try_into().unwrap()),
            hi: u64::from_le_bytes(d[8..16].try_into().unwrap()),
        };
        self.inflight[qi] = Some(f);
        Some(f)
    }

    /// The device writes a frame of (about) `len` bytes into RX queue `q`'s
    /// current buffers.
    fn rx_data(&mut self, q: u32, len: u16) -> Option<InFlight> {
        let f = self.rx_fetch(q)?;
        let srrctl = self.rx(self.map.rx.srrctl, q);
        let desctype = (srrctl >> 25) & 7;
        let split = !matches!(desctype, 0 | 1);
        let pkt = u64::from(srrctl & self.map.srrctl.bsize_packet_mask) << 10;
        let hdr = u64::from((srrctl >> 8) & self.map.srrctl.bsize_header_mask) << 6;
        let pkt = if pkt == 0 { PKT_BUF_DEFAULT } else { pkt };
        let hdr = if hdr == 0 { HDR_BUF_DEFAULT } else { hdr };
        // The guest changed the descriptor after the tracker read it (the
        // documented limit): the tracker cannot know this buffer.
        let changed = self
            .seen
            .get(&(q, f.at))
            .is_some_and(|s| s.shared || s.bytes != f.bytes);
        let e = knobs();
        let excused = changed || (e.dd && f.hi & 1 != 0);
        let (lo, hi, desc) = (f.lo, f.hi, f.at);
        let data = self.payload(1 + u64::from(len) % pkt);
        let cause = Cause::RxBuffer { q, desc, lo, hi };
        self.dma(lo, &data, cause, excused || (e.iova0 && lo == 0));
        if split {
            // Bit 0 of the header address is where write-back puts DD.
            let data = self.payload(1 + u64::from(len >> 4) % hdr);
            let cause = Cause::RxHeader { q, desc, lo, hi };
            self.dma(hi & !1, &data, cause, excused || (e.iova0 && hi == 0));
        }
        Some(f)
    }

    /// The frame completes: write-back in the queue's format, head moves.
    fn rx_done(&mut self, q: u32, len: u16) {
        let Some(f) = self.rx_data(q, len) else {
            return;
        };
        let r = &self.map.rx;
        let legacy = (self.rx(r.srrctl, q) >> 25) & 7 == 0;
        let mut wb = [0u8; 16];
        if legacy {
            // Address kept; length, then status (DD | EOP) at byte 12.
            wb[0..8].copy_from_slice(&f.lo.to_le_bytes());
            wb[8..10].copy_from_slice(&len.to_le_bytes());
            wb[12] = 0x03;
        } else {
            // RSS hash over the address; status (DD | EOP) at byte 8.
            wb[0..8].copy_from_slice(&0x5a5a_0000_dead_beef_u64.to_le_bytes());
            wb[8] = 0x03;
            wb[12..14].copy_from_slice(&len.to_le_bytes());
        }
        self.dma(f.at, &wb, Cause::RxWriteBack { q, desc: f.at }, false);
        let (_, count) = self.rx_ring(q);
        let head = self.rx(r.head, q);
        self.set(self.map.rxq(r.head, q), (head + 1) % count.max(1));
        self.inflight[q as usize] = None;
        self.seen.remove(&(q, f.at));
    }

    /// TX queue `q` sends one descriptor: DD written back, head moves, head
    /// write-back if enabled.
    fn tx_send(&mut self, q: u32) {
        let t = &self.map.tx;
        let cfg = self.tx_cfg(q);
        let base = u64::from(cfg[0]) | u64::from(cfg[1]) << 32;
        let count = cfg[2] / 16;
        let (head, tail) = (self.tx(t.head, q), self.tx(t.tail, q));
        let on = self.tx(t.dctl, q) & DCTL_ENABLE != 0;
        if !on || count == 0 || head >= count || tail >= count || head == tail {
            return;
        }
        let at = base.wrapping_add(u64::from(head) * 16 + 12);
        self.tx_write(q, cfg, at, &[1, 0, 0, 0], Cause::TxWriteBack { q }, false);
        let head = (head + 1) % count;
        self.set(self.map.txq(t.head, q), head);
        if cfg[3] & 1 != 0 {
            let at = u64::from(cfg[4]) << 32 | u64::from(cfg[3] & !3);
            let excused = knobs().iova0 && at == 0;
            self.tx_write(
                q,
                cfg,
                at,
                &head.to_le_bytes(),
                Cause::TxHeadWriteBack { q, at },
                excused,
            );
        }
    }

    fn tx_write(&mut self, q: u32, cfg: TxCfg, at: u64, b: &[u8], cause: Cause, excused: bool) {
        self.cpu_write(at, b);
        if excused || !self.logging {
            return;
        }
        for p in Self::dma_pages(at, b.len() as u64) {
            if self.logged[p as usize] {
                self.tx_writes.push((q, cfg, p, cause, self.step));
            }
        }
    }

    /// FLR: every register back to 0, nothing in flight.
    fn reset(&mut self) {
        self.regs.fill(0);
        self.inflight = [None; QUEUES];
        self.seen.clear();
    }
}

/// The code under test reaches the model VF through this handle.
type Io = Shared<Vf>;

impl RegIo for Vf {
    fn read32(&mut self, off: u32) -> u32 {
        self.reg(off)
    }

    fn write32(&mut self, off: u32, value: u32) {
        self.write_reg(off, value);
    }

    fn delay_us(&mut self, _us: u32) {}
}

impl DmaRead for Vf {
    /// The tracker reads descriptors: remember what it saw, per queue
    /// whose ring holds the address.
    fn read(&mut self, iova: u64, buf: &mut [u8]) -> bool {
        if !self.read_mem(iova, buf) {
            return false;
        }
        for (k, d) in buf.chunks_exact(16).enumerate() {
            let at = iova + 16 * k as u64;
            let owners: Vec<u32> = (0..self.queues())
                .filter(|&q| {
                    let (base, count) = self.rx_ring(q);
                    at.checked_sub(base)
                        .is_some_and(|o| o % 16 == 0 && o / 16 < u64::from(count))
                })
                .collect();
            for &q in &owners {
                let bytes = d.try_into().unwrap();
                let shared = owners.len() > 1;
                self.seen.insert((q, at), Seen { bytes, shared });
            }
        }
        true
    }
}

/// An address: mostly in guest memory, sometimes just past it, 0, or anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Addr {
    Page { page: u8, off: u16 },
    Zero,
    Raw(u64),
}

impl Addr {
    fn iova(self) -> u64 {
        match self {
            Addr::Page { page, off } => {
                u64::from(page) % (PAGES + 2) * PAGE + u64::from(off) % PAGE
            }
            Addr::Zero => 0,
            Addr::Raw(x) => x,
        }
    }
}

/// The upper quadword of a posted descriptor: header address in split
/// modes, a DD-looking bit 0 (a legacy descriptor's leftover length), ...
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Hi {
    Zero,
    Odd(u16),
    Addr(Addr),
    Raw(u64),
}

impl Hi {
    fn value(self) -> u64 {
        match self {
            Hi::Zero => 0,
            Hi::Odd(x) => u64::from(x) | 1,
            Hi::Addr(a) => a.iova(),
            Hi::Raw(x) => x,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum RxReg {
    Bal,
    Bah,
    Len,
    Head,
    Tail,
    Dctl,
    Srrctl,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum TxReg {
    Bal,
    Bah,
    Len,
    Head,
    Tail,
    Dctl,
    Wbal,
    Wbah,
}

/// A register value: `raw`, or shaped for the register.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Val {
    raw: bool,
    v: u32,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Window {
    All,
    Pages { first: u8, n: u8 },
    Raw { iova: u64, len: u64 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    // The guest, through the trapped RX page.
    RxWrite {
        q: u8,
        reg: RxReg,
        val: Val,
    },
    RxPage {
        off: u16,
        v: u32,
    },
    /// A queue set up as a driver does: disable, ring, head, tail, SRRCTL, enable.
    SetupRx {
        q: u8,
        ring_page: u8,
        count: u8,
        srrctl: u8,
        bsize: u8,
    },
    /// Tail moved forward by `n` (wrapping), as a driver posts.
    Post {
        q: u8,
        n: u8,
    },
    // The guest's CPU.
    Desc {
        q: u8,
        idx: u8,
        lo: Addr,
        hi: Hi,
    },
    /// `n` descriptors from `from`, buffers half a page apart from `page`.
    Fill {
        q: u8,
        from: u8,
        n: u8,
        page: u8,
        hi: Hi,
    },
    CpuWrite {
        at: Addr,
        len: u8,
        byte: u8,
    },
    // The guest, TX registers (not trapped).
    TxWrite {
        q: u8,
        reg: TxReg,
        val: Val,
    },
    SetupTx {
        q: u8,
        ring_page: u8,
        count: u8,
        wb: Option<Addr>,
    },
    // The device.
    RxData {
        q: u8,
        len: u16,
    },
    RxDone {
        q: u8,
        len: u16,
    },
    RxBurst {
        q: u8,
        n: u8,
        len: u16,
    },
    TxSend {
        q: u8,
        n: u8,
    },
    // The host.
    Quiesce,
    Resume,
    Reset,
    Report(Window),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Ranges {
    Whole,
    Halves,
    Sparse,
    Huge,
}

#[derive(Arbitrary, Debug)]
struct Input {
    ixgbe: bool,
    ranges: Ranges,
    /// Bitmap page: 4 KiB << (page % 3).
    page: u8,
    /// Before logging starts (queues already running, buffers posted).
    pre: Vec<Op>,
    ops: Vec<Op>,
}

fn ranges(sel: Ranges) -> Vec<Range> {
    let pages = |a: u64, b: u64| Range {
        iova: a * PAGE,
        len: (b - a) * PAGE,
    };
    match sel {
        Ranges::Whole => vec![pages(0, PAGES)],
        Ranges::Halves => vec![pages(0, 16), pages(32, PAGES)],
        Ranges::Sparse => (0..PAGES / 8).map(|i| pages(8 * i, 8 * i + 4)).collect(),
        // Far more than the guest has: a bigger bitmap, pages never written.
        Ranges::Huge => vec![Range {
            iova: 0,
            len: 1 << 30,
        }],
    }
}

struct Harness {
    map: &'static RegMap,
    io: Io,
    tracker: Option<T>,
    ranges: Vec<Range>,
    /// A reset not yet caught up with (the kernel does at the next trap or report).
    reset_pending: bool,
    /// TX configuration at the tracker's last sample.
    tx_sampled: [TxCfg; QUEUES],
    /// RX queues enabled at the last quiesce (the HAL's record).
    quiesced: Option<u32>,
}

impl Harness {
    fn vf(&self) -> std::cell::RefMut<'_, Vf> {
        self.io.0.borrow_mut()
    }

    fn q(&self, q: u8) -> u32 {
        u32::from(q) % self.map.max_queue_pairs
    }

    fn catch_up(&mut self) {
        if self.reset_pending {
            self.reset_pending = false;
            let mut io = self.io.clone();
            if let Some(t) = &mut self.tracker {
                t.on_reset(&mut io);
            }
        }
    }

    /// A guest write on the RX page: through the tracker once logging runs.
    fn rx_page_write(&mut self, off: u32, v: u32) {
        self.catch_up();
        let (mut io, mut dma) = (self.io.clone(), self.io.clone());
        match &mut self.tracker {
            Some(t) => {
                t.rx_write(&mut io, &mut dma, off, v);
                assert!(t.stats.max_descriptors_per_trap < MAX_SLOTS);
            }
            None => io.write32(off, v),
        }
    }

    fn rx_value(&self, reg: RxReg, val: Val) -> u32 {
        let v = val.v;
        if val.raw {
            return v;
        }
        match reg {
            // 16-byte aligned, in (or just past) guest memory.
            RxReg::Bal => (v % (PAGES as u32 + 2)) * PAGE as u32 + (v >> 16 & 0xff0),
            RxReg::Bah => 0,
            RxReg::Len => (v % 65) * 16,
            RxReg::Head | RxReg::Tail => v % 65,
            RxReg::Dctl => {
                if v & 1 != 0 {
                    DCTL_ENABLE
                } else {
                    0
                }
            }
            RxReg::Srrctl => srrctl(v as u8, (v >> 8) as u8),
        }
    }

    fn rx_off(&self, reg: RxReg, q: u32) -> u32 {
        let r = &self.map.rx;
        let o = match reg {
            RxReg::Bal => r.bal,
            RxReg::Bah => r.bah,
            RxReg::Len => r.len,
            RxReg::Head => r.head,
            RxReg::Tail => r.tail,
            RxReg::Dctl => r.dctl,
            RxReg::Srrctl => r.srrctl,
        };
        self.map.rxq(o, q)
    }

    fn tx_write(&mut self, q: u32, reg: TxReg, val: Val) {
        let t = &self.map.tx;
        let v = val.v;
        let (off, shaped) = match reg {
            TxReg::Bal => (
                t.bal,
                (v % (PAGES as u32 + 2)) * PAGE as u32 + (v >> 16 & 0xff0),
            ),
            TxReg::Bah => (t.bah, 0),
            TxReg::Len => (t.len, (v % 65) * 16),
            TxReg::Head => (t.head, v % 65),
            TxReg::Tail => (t.tail, v % 65),
            TxReg::Dctl => (t.dctl, if v & 1 != 0 { DCTL_ENABLE } else { 0 }),
            TxReg::Wbal => (
                t.wbal,
                ((v % (PAGES as u32 + 1)) * PAGE as u32 + (v >> 20 & 0xffc)) | v & 1,
            ),
            TxReg::Wbah => (t.wbah, 0),
        };
        let value = if val.raw { v } else { shaped };
        self.vf().write_reg(self.map.txq(off, q), value);
    }

    fn report(&mut self, w: Window) {
        self.catch_up();
        // TX writes since the last report: covered if through the ring
        // sampled then or the one sampled now.
        {
            let io = self.io.clone();
            let mut vf = io.0.borrow_mut();
            let writes = std::mem::take(&mut vf.tx_writes);
            for (q, cfg, page, cause, step) in writes {
                if cfg == self.tx_sampled[q as usize] || cfg == vf.tx_cfg(q) {
                    vf.pending.entry(page).or_insert((cause, step));
                }
            }
            for q in 0..vf.queues() {
                self.tx_sampled[q as usize] = vf.tx_cfg(q);
            }
        }
        let Some(t) = &mut self.tracker else {
            return;
        };
        let (iova, len) = match w {
            Window::All => (0, u64::MAX - 1),
            Window::Pages { first, n } => (u64::from(first) * PAGE, u64::from(n) * PAGE),
            Window::Raw { iova, len } => (iova, len),
        };
        if len == 0 && knobs().empty_window {
            return;
        }
        let (iova, len) = match (knobs().partial_window, iova.checked_add(len)) {
            (true, Some(end)) => {
                let ps = t.page_size();
                let lo = iova & !(ps - 1);
                let hi = end.checked_next_multiple_of(ps).unwrap_or(u64::MAX);
                (lo, hi - lo)
            }
            _ => (iova, len),
        };
        let (mut io, mut dma) = (self.io.clone(), self.io.clone());
        let mut spans = Vec::new();
        t.report(&mut io, &mut dma, iova, len, |i, l| spans.push((i, l)));
        let tainted = t.taint().is_some();
        let win_end = iova.checked_add(len);
        let mut vf = self.io.0.borrow_mut();
        let mut got = vec![false; PAGES as usize];
        for &(i, l) in &spans {
            // (A tainted tracker answers an empty window with one empty
            // span; the vfio core never asks for one.)
            assert!(l > 0 || len == 0, "empty span");
            let end = i.checked_add(l).expect("span wraps");
            assert!(
                i >= iova && win_end.is_some_and(|e| end <= e),
                "span {i:#x}+{l:#x} outside window {iova:#x}+{len:#x}"
            );
            assert!(
                self.ranges
                    .iter()
                    .any(|r| i >= r.iova && end <= r.iova + r.len),
                "span {i:#x}+{l:#x} outside the logged ranges"
            );
            for p in Vf::dma_pages(i, l) {
                vf.pending.remove(&p);
                got[p as usize] = true;
            }
        }
        if let (true, Some(e)) = (tainted, win_end) {
            for p in 0..PAGES {
                let inside = p * PAGE >= iova && (p + 1) * PAGE <= e;
                if inside && vf.logged[p as usize] {
                    assert!(got[p as usize], "tainted, but logged page {p} not reported");
                }
            }
        }
    }

    fn op(&mut self, op: Op) {
        let m = self.map;
        match op {
            Op::RxWrite { q, reg, val } => {
                let q = self.q(q);
                let v = self.rx_value(reg, val);
                self.rx_page_write(self.rx_off(reg, q), v);
            }
            Op::RxPage { off, v } => {
                let base = m.rx_tail_page() * 4096;
                self.rx_page_write(base + (u32::from(off) & 0xffc), v);
            }
            Op::SetupRx {
                q,
                ring_page,
                count,
                srrctl: st,
                bsize,
            } => {
                let q = self.q(q);
                let r = &m.rx;
                let base = u64::from(ring_page) % PAGES * PAGE;
                let count = u32::from(count) % 64 + 1;
                for (reg, v) in [
                    (r.dctl, 0),
                    (r.bal, base as u32),
                    (r.bah, 0),
                    (r.len, count * 16),
                    (r.head, 0),
                    (r.tail, 0),
                    (r.srrctl, srrctl(st, bsize)),
                    (r.dctl, DCTL_ENABLE),
                ] {
                    self.rx_page_write(m.rxq(reg, q), v);
                }
            }
            Op::Post { q, n } => {
                let q = self.q(q);
                let (tail, count) = {
                    let vf = self.vf();
                    (vf.rx(m.rx.tail, q), vf.rx_ring(q).1.max(1))
                };
                let t = ((u64::from(tail) + u64::from(n)) % u64::from(count)) as u32;
                self.rx_page_write(m.rxq(m.rx.tail, q), t);
            }
            Op::Desc { q, idx, lo, hi } => {
                let q = self.q(q);
                let mut vf = self.vf();
                let (base, count) = vf.rx_ring(q);
                let i = u64::from(idx) % u64::from(count.max(1));
                let mut d = [0u8; 16];
                d[0..8].copy_from_slice(&lo.iova().to_le_bytes());
                d[8..16].copy_from_slice(&hi.value().to_le_bytes());
                vf.cpu_write(base.wrapping_add(16 * i), &d);
            }
            Op::Fill {
                q,
                from,
                n,
                page,
                hi,
            } => {
                let q = self.q(q);
                let mut vf = self.vf();
                let (base, count) = vf.rx_ring(q);
                let count = u64::from(count.max(1));
                for k in 0..u64::from(n % 65) {
                    let i = (u64::from(from) + k) % count;
                    let buf = (u64::from(page) * PAGE + k * PAGE / 2) % MEM;
                    let mut d = [0u8; 16];
                    d[0..8].copy_from_slice(&buf.to_le_bytes());
                    d[8..16].copy_from_slice(&hi.value().to_le_bytes());
                    vf.cpu_write(base.wrapping_add(16 * i), &d);
                }
            }
            Op::CpuWrite { at, len, byte } => {
                self.vf()
                    .cpu_write(at.iova(), &vec![byte; usize::from(len)]);
            }
            Op::TxWrite { q, reg, val } => {
                let q = self.q(q);
                self.tx_write(q, reg, val);
            }
            Op::SetupTx {
                q,
                ring_page,
                count,
                wb,
            } => {
                let q = self.q(q);
                let t = &m.tx;
                let base = u64::from(ring_page) % PAGES * PAGE;
                let count = u32::from(count) % 64 + 1;
                let wbal = wb.map_or(0, |a| (a.iova() as u32 & !3) | 1);
                let wbah = wb.map_or(0, |a| (a.iova() >> 32) as u32);
                let mut vf = self.vf();
                for (reg, v) in [
                    (t.dctl, 0),
                    (t.bal, base as u32),
                    (t.bah, 0),
                    (t.len, count * 16),
                    (t.head, 0),
                    (t.tail, 0),
                    (t.wbal, wbal),
                    (t.wbah, wbah),
                    (t.dctl, DCTL_ENABLE),
                ] {
                    vf.write_reg(m.txq(reg, q), v);
                }
            }
            Op::RxData { q, len } => {
                let q = self.q(q);
                self.vf().rx_data(q, len);
            }
            Op::RxDone { q, len } => {
                let q = self.q(q);
                self.vf().rx_done(q, len);
            }
            Op::RxBurst { q, n, len } => {
                let q = self.q(q);
                for _ in 0..n % 65 {
                    self.vf().rx_done(q, len);
                }
            }
            Op::TxSend { q, n } => {
                let q = self.q(q);
                let mut vf = self.vf();
                for _ in 0..n % 65 {
                    vf.tx_send(q);
                }
            }
            Op::Quiesce => self.quiesce(),
            Op::Resume => {
                // The HAL's resume: each queue recorded enabled is enabled
                // again and its tail rewritten, by the driver (not trapped).
                if let Some(mask) = self.quiesced.take() {
                    let mut vf = self.vf();
                    for q in (0..m.max_queue_pairs).filter(|q| mask & 1 << q != 0) {
                        let d = vf.rx(m.rx.dctl, q);
                        vf.write_reg(m.rxq(m.rx.dctl, q), d | DCTL_ENABLE);
                        let tail = vf.rx(m.rx.tail, q);
                        vf.write_reg(m.rxq(m.rx.tail, q), tail);
                        let d = vf.tx(m.tx.dctl, q);
                        vf.write_reg(m.txq(m.tx.dctl, q), d | DCTL_ENABLE);
                    }
                }
            }
            Op::Reset => {
                self.vf().reset();
                self.quiesced = None;
                self.reset_pending = self.tracker.is_some();
            }
            Op::Report(w) => self.report(w),
        }
    }

    /// The HAL's quiesce: every queue disabled by the driver (not trapped).
    fn quiesce(&mut self) {
        let m = self.map;
        let mut vf = self.vf();
        let mut mask = 0;
        for q in 0..m.max_queue_pairs {
            let d = vf.rx(m.rx.dctl, q);
            if d & DCTL_ENABLE != 0 {
                mask |= 1 << q;
            }
            vf.write_reg(m.rxq(m.rx.dctl, q), d & !DCTL_ENABLE);
            let d = vf.tx(m.tx.dctl, q);
            vf.write_reg(m.txq(m.tx.dctl, q), d & !DCTL_ENABLE);
        }
        drop(vf);
        self.quiesced.get_or_insert(mask);
    }
}

/// SRRCTL from a descriptor type (3 bits) and buffer sizes.
fn srrctl(desctype: u8, bsize: u8) -> u32 {
    (u32::from(desctype) & 7) << 25 | u32::from(bsize & 0x1f) | u32::from(bsize >> 5) << 8
}

fuzz_target!(|input: Input| {
    let map: &'static RegMap = if input.ixgbe { &IXGBE } else { &IGB };
    let ranges = ranges(input.ranges);
    let page_size = PAGE << (input.page % 3);
    let mut logged: Vec<LoggedRange> = ranges
        .iter()
        .map(|&range| LoggedRange {
            range,
            first_bit: 0,
        })
        .collect();
    let Ok((page_size, words)) = dirty::check(&mut logged, page_size) else {
        return;
    };
    let in_logged = |p: u64| {
        ranges
            .iter()
            .any(|r| p * PAGE >= r.iova && p * PAGE < r.iova + r.len)
    };
    let vf = Vf {
        map,
        regs: vec![0; BAR / 4],
        mem: vec![0; MEM as usize],
        stamp: 0,
        inflight: [None; QUEUES],
        seen: HashMap::new(),
        logged: (0..PAGES).map(in_logged).collect(),
        pending: BTreeMap::new(),
        tx_writes: Vec::new(),
        step: 0,
        logging: false,
    };
    let mut h = Harness {
        map,
        io: Shared::new(vf),
        tracker: None,
        ranges: ranges.clone(),
        reset_pending: false,
        tx_sampled: [[0; 5]; QUEUES],
        quiesced: None,
    };
    for op in input.pre.iter().take(256) {
        h.op(*op);
    }
    // LOGGING_START: from here every DMA write counts.
    let (mut io, mut dma) = (h.io.clone(), h.io.clone());
    let t = T::start(
        map,
        logged,
        page_size,
        vec![0; words],
        vec![Slot::default(); T::slots_needed(map)],
        &mut io,
        &mut dma,
    )
    .expect("checked ranges and enough storage");
    h.tracker = Some(t);
    {
        let io = h.io.clone();
        let mut vf = io.0.borrow_mut();
        vf.logging = true;
        for q in 0..map.max_queue_pairs {
            h.tx_sampled[q as usize] = vf.tx_cfg(q);
        }
    }
    for (i, op) in input.ops.iter().take(512).enumerate() {
        h.vf().step = i + 1;
        h.op(*op);
    }
    // STOP_COPY: the driver quiesces, the VMM takes the last report.
    h.vf().step = usize::MAX;
    h.quiesce();
    h.report(Window::All);
    let vf = h.io.0.borrow();
    if let Some((page, (cause, step))) = vf.pending.iter().next() {
        panic!(
            "soundness: page {page} (IOVA {:#x}) written by the VF at step {step} \
             ({cause:?}) is in no report; taint {:?}; {} pages missed in all",
            page * PAGE,
            h.tracker.as_ref().and_then(|t| t.taint()),
            vf.pending.len()
        );
    }
});
