// SPDX-License-Identifier: GPL-2.0

//! The dirty tracker: which guest pages a VF may have written by DMA, for a
//! NIC with no logging hardware (Documentation/dirty-tracking.rst).
//!
//! A VF writes guest memory in four ways: RX packet (and header) buffers,
//! RX descriptor write-back, TX descriptor write-back and TX head
//! write-back. Ring pages are known from the queue registers and reported
//! every time. RX buffer addresses are overwritten by the write-back, so
//! they are captured when the guest posts them: the RX tail page is
//! trapped, and [`Tracker::rx_write`] reads the newly posted descriptors
//! before the tail write reaches the device. A buffer stays tracked until
//! the hardware head has passed it; it is then marked in the bitmap, which
//! a report reads and clears. A report taken while a queue is disabled (the
//! device stopped) marks every buffer still posted on it.
//!
//! Whenever the tracker cannot know (a descriptor it cannot read, a tail
//! past the ring, a ring moved under a running queue) it falls back to
//! "every logged page is dirty" until logging stops: sound, never silent.
//!
//! Work is bounded: a trap reads at most one ring of descriptors, a report
//! walks the bitmap of the requested window; memory is one bitmap of at
//! most [`dirty::MAX_BITS`] bits plus [`MAX_SLOTS`] slots per queue, sized when
//! logging starts.

use super::bits::{self, join_u64, Dctl, RxDesc, Srrctl, Tdwbal};
use super::dirty::{self, LoggedRange, RangeError};
use super::hal::RegIo;
use super::regs::RegMap;

/// Queues tracked (the most any family has).
pub use super::regs::MAX_QUEUES;
/// Most descriptors of an RX ring the tracker follows; a bigger ring makes
/// it fall back to "all dirty". The VF drivers' maximum is 4096.
pub const MAX_SLOTS: u32 = 4096;
/// Bytes of one descriptor (both families, RX and TX).
pub const DESC_LEN: u64 = bits::DESC_LEN as u64;
/// Bound on one packet buffer when SRRCTL does not give its size (the
/// PF's RCTL.BSIZE then applies: at most 16 KiB in both families).
const MAX_PKT_BUF: u64 = 16 * 1024;
/// Bound on one header buffer when SRRCTL does not give its size.
const MAX_HDR_BUF: u64 = 63 * 64;
/// Descriptors read from guest memory at a time (one stack buffer).
const READ_BATCH: usize = 32;

/// Reads guest memory by IOVA, as the device sees it (the module: through
/// the VFIO user's container or iommufd IOAS).
pub trait DmaRead {
    /// Fills `buf` from `iova`; false if any part is not readable.
    fn read(&mut self, iova: u64, buf: &mut [u8]) -> bool;
}

/// A posted RX descriptor's buffers, as read at post time.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// Packet buffer IOVA (any value, 0 included, is a buffer).
    pub pkt: Option<u64>,
    /// Header buffer IOVA (split modes only).
    pub hdr: Option<u64>,
}

/// A descriptor ring: base IOVA and descriptor count.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Ring {
    base: u64,
    count: u32,
}

impl Ring {
    fn read(io: &mut impl RegIo, bal: u32, bah: u32, len: u32) -> Ring {
        let lo = io.read32(bal);
        let base = join_u64(lo, io.read32(bah));
        let count = io.read32(len) / DESC_LEN as u32;
        Ring { base, count }
    }

    fn bytes(&self) -> u64 {
        u64::from(self.count) * DESC_LEN
    }
}

/// What the tracker knows of one RX queue.
#[derive(Copy, Clone, Debug, Default)]
struct RxQueue {
    ring: Ring,
    srrctl: u32,
    enabled: bool,
    /// Oldest posted descriptor the hardware head has not passed (as last
    /// seen); slots `head..tail` hold captured buffers.
    head: u32,
    /// One past the last captured descriptor (the tail as forwarded).
    tail: u32,
    /// While stopped, its posted buffers have been marked once: a stopped
    /// queue writes nothing more, so later reports need not repeat them.
    marked_stopped: bool,
}

impl RxQueue {
    /// Whether the tracker can follow this ring.
    fn followable(&self) -> bool {
        self.ring.count > 0 && self.ring.count <= MAX_SLOTS
    }

    fn posted(&self) -> u32 {
        ring_dist(self.head, self.tail, self.ring.count)
    }
}

/// A TX queue's write targets: its ring and its head write-back word.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct TxTargets {
    ring: Ring,
    /// Head write-back address, when TDWBAL enables it (IOVA 0 included).
    head_wb: Option<u64>,
}

/// Counters, for the benchmark and the sysfs `dirty_stats` file.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// RX tail writes seen while logging.
    pub traps: u64,
    /// Descriptors read at post time.
    pub descriptors: u64,
    /// Most descriptors one trap read.
    pub max_descriptors_per_trap: u32,
    /// Reports served (calls of [`Tracker::report`]).
    pub reports: u64,
    /// Times the tracker fell back to "all dirty" (0 or 1 per session).
    pub taints: u64,
}

/// Why the tracker fell back to "all dirty" (for the kernel log).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Taint {
    /// (queue, IOVA): a descriptor could not be read through the IOMMU.
    Unreadable(u32, u64),
    /// (queue, tail): a tail past the ring's end, or one that overtakes
    /// the head.
    BadTail(u32, u32),
    /// (queue, head): the hardware head is outside the posted descriptors.
    BadHead(u32, u32),
    /// (queue, descriptors): a ring larger than [`MAX_SLOTS`] in use.
    Ring(u32, u32),
    /// (queue): ring, head or buffer sizes changed while the queue ran.
    Moved(u32),
    /// (BAR0 offset): an RX page write the tracker cannot follow.
    Access(u32),
    /// The registers could not be read (memory decode off).
    NoDevice,
    /// The VF was reset while the tracker read guest memory (the reads
    /// release the lock that holds resets off), so what it had read of
    /// the device before may be stale.
    Reset,
    /// (queue): a descriptor the device owned looked written back (DD),
    /// at the start of logging or after an unseen queue start.
    WrittenBack(u32),
}

/// Where a capture's descriptors come from, which decides what a
/// written-back one (DD set, address gone) means.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Posting {
    /// Just posted by a trapped tail write (the device has not seen them),
    /// or owned by a running queue when logging starts (one written back
    /// landed before the VMM's first full copy): each is followed by its
    /// first word, DD-looking or not.
    Followed,
    /// Owned by a queue that started without a trapped write (the driver's
    /// own resume): one written back was written unseen, so all dirty.
    Unseen,
}

/// The register an RX page offset names.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum RxReg {
    Tail(u32),
    /// Base, length, head, buffer sizes or enable of a queue.
    Config(u32),
    Other,
}

/// Distance from `from` forward to `to` on a ring of `count`.
fn ring_dist(from: u32, to: u32, count: u32) -> u32 {
    if count == 0 {
        0
    } else if to >= from {
        to - from
    } else {
        count - from + to
    }
}

/// The part of one logged range inside a window: `[lo, hi)`, with the
/// range's first bit and first page.
struct Span {
    lo: u64,
    hi: u64,
    first_bit: u64,
    first_page: u64,
    /// The whole logged range (`lo..hi` is its part inside the window).
    range_lo: u64,
    range_hi: u64,
}

/// One logging session of one VF.
///
/// `R` holds the ranges as [`dirty::check`] left them, `B` the bitmap (at
/// least the words `check` returned) and `S` the slots (see
/// [`Tracker::slots_needed`]); the kernel passes vmalloc'ed vectors, the
/// host tests `Vec`s. The struct itself is small (no arrays of ranges).
pub struct Tracker<R, B, S> {
    map: &'static RegMap,
    ranges: R,
    page_shift: u32,
    bitmap: B,
    slots: S,
    rx: [RxQueue; MAX_QUEUES],
    /// TX targets as last sampled (written pages are reported from both
    /// the previous and the current sample).
    tx: [TxTargets; MAX_QUEUES],
    tainted: Option<Taint>,
    /// Counters.
    pub stats: Stats,
}

impl<R, B, S> Tracker<R, B, S>
where
    R: core::ops::Deref<Target = [LoggedRange]>,
    B: core::ops::DerefMut<Target = [u64]>,
    S: core::ops::DerefMut<Target = [Slot]>,
{
    /// Slots the caller must provide for `map`.
    pub fn slots_needed(map: &RegMap) -> usize {
        (map.max_queue_pairs as usize).min(MAX_QUEUES) * MAX_SLOTS as usize
    }

    /// Starts a session over `ranges`, checked by [`dirty::check`] for
    /// `page_size` (the size it returned), and captures what is already
    /// posted. Fails if the storage is too small or the ranges unchecked.
    pub fn start(
        map: &'static RegMap,
        ranges: R,
        page_size: u64,
        bitmap: B,
        slots: S,
        io: &mut impl RegIo,
        dma: &mut impl DmaRead,
    ) -> Result<Self, RangeError> {
        let bits = ranges.last().map_or(0, |r| {
            r.first_bit + dirty::pages_spanned(&r.range, page_size.trailing_zeros())
        });
        if !page_size.is_power_of_two()
            || (bitmap.len() as u64) < bits.div_ceil(64)
            || slots.len() < Self::slots_needed(map)
        {
            return Err(RangeError::Storage);
        }
        let mut t = Tracker {
            map,
            ranges,
            page_shift: page_size.trailing_zeros(),
            bitmap,
            slots,
            rx: [RxQueue::default(); MAX_QUEUES],
            tx: [TxTargets::default(); MAX_QUEUES],
            tainted: None,
            stats: Stats::default(),
        };
        t.bitmap.fill(0);
        for q in 0..t.queues() {
            t.sync_rx(io, q);
            // Descriptors between the head and the tail of a running queue
            // are the device's; one already written back (DD) landed before
            // logging began. A stopped queue's are read when it starts.
            if t.rx[q as usize].enabled {
                let hw_tail = io.read32(t.map.rxq(t.map.rx.tail, q));
                t.capture(dma, q, hw_tail, Posting::Followed);
            }
            t.tx[q as usize] = t.read_tx(io, q);
        }
        Ok(t)
    }

    /// The page size of the bitmap (may exceed the one asked for).
    pub fn page_size(&self) -> u64 {
        1 << self.page_shift
    }

    /// What the tracker follows on RX queue `q`, for the kernel's debug log.
    pub fn rx_view(&self, q: u32) -> Option<RxView> {
        let r = self.rx.get(q as usize)?;
        Some(RxView {
            ring: r.ring.base,
            descriptors: r.ring.count,
            srrctl: r.srrctl,
            enabled: r.enabled,
            head: r.head,
            tail: r.tail,
        })
    }

    /// Why the tracker reports everything, if it does.
    pub fn taint(&self) -> Option<Taint> {
        self.tainted
    }

    fn queues(&self) -> u32 {
        self.map.max_queue_pairs.min(MAX_QUEUES as u32)
    }

    fn set_taint(&mut self, why: Taint) {
        if self.tainted.is_none() {
            self.tainted = Some(why);
            self.stats.taints += 1;
        }
    }

    /// What a write at `off` of the RX page addresses.
    fn classify(&self, off: u32) -> RxReg {
        let r = &self.map.rx;
        let Some(rel) = off.checked_sub(r.bal) else {
            return RxReg::Other;
        };
        let q = rel / self.map.queue_stride;
        if q >= self.queues() {
            return RxReg::Other;
        }
        let reg = r.bal + rel % self.map.queue_stride;
        if reg == r.tail {
            RxReg::Tail(q)
        } else if [r.bal, r.bah, r.len, r.head, r.dctl, r.srrctl].contains(&reg) {
            RxReg::Config(q)
        } else {
            RxReg::Other
        }
    }

    /// A 32-bit write of `value` at BAR0 offset `off` on the trapped RX
    /// page, which the tracker performs on the device itself (through
    /// `io`): after capturing what a tail write posts, so the device never
    /// sees a buffer the tracker has not recorded, or before re-reading a
    /// queue whose configuration the write changes.
    pub fn rx_write(&mut self, io: &mut impl RegIo, dma: &mut impl DmaRead, off: u32, value: u32) {
        match self.classify(off) {
            RxReg::Tail(q) => {
                self.stats.traps += 1;
                self.complete(io, q);
                self.capture(dma, q, value, Posting::Followed);
                io.write32(off, value);
            }
            RxReg::Config(q) => {
                // The queue may have been enabled by the driver's own resume:
                // ask the device, not the last sample.
                let was_enabled = Dctl(io.read32(self.map.rxq(self.map.rx.dctl, q))).enabled();
                self.complete(io, q);
                io.write32(off, value);
                self.resync(io, dma, q, was_enabled);
            }
            RxReg::Other => io.write32(off, value),
        }
    }

    /// Falls back to "every logged page is dirty" for the rest of the
    /// session: an RX page write it cannot follow, registers it cannot read.
    pub fn give_up(&mut self, why: Taint) {
        self.set_taint(why);
    }

    /// The device was reset (FLR): its queues are off, nothing posted
    /// before can be written any more. Marks what may have been, starts over.
    pub fn on_reset(&mut self, io: &mut impl RegIo) {
        for q in 0..self.queues() {
            self.spill(q);
            self.mark_ring(self.rx[q as usize].ring);
            let q_rx = &mut self.rx[q as usize];
            *q_rx = RxQueue::default();
            self.sync_rx(io, q);
        }
    }

    /// Reads queue `q`'s configuration; the posted span restarts at the
    /// hardware head.
    fn sync_rx(&mut self, io: &mut impl RegIo, q: u32) {
        let m = self.map;
        let r = &m.rx;
        let ring = Ring::read(io, m.rxq(r.bal, q), m.rxq(r.bah, q), m.rxq(r.len, q));
        let srrctl = io.read32(m.rxq(r.srrctl, q));
        let enabled = Dctl(io.read32(m.rxq(r.dctl, q))).enabled();
        let head = io.read32(m.rxq(r.head, q));
        let head = if head < ring.count { head } else { 0 };
        self.rx[q as usize] = RxQueue {
            ring,
            srrctl,
            enabled,
            head,
            tail: head,
            marked_stopped: false,
        };
    }

    /// Queue `q`'s configuration may have changed (by a trapped write, or
    /// by the driver itself). Unchanged: nothing to do. Changed while the
    /// queue ran: the device may still use what it cached, so all dirty.
    /// Changed while stopped: what was posted may have been written; mark
    /// it, mark the old ring, and follow the new configuration.
    fn resync(&mut self, io: &mut impl RegIo, dma: &mut impl DmaRead, q: u32, was_enabled: bool) {
        let old = self.rx[q as usize];
        let m = self.map;
        let hw_tail = io.read32(m.rxq(m.rx.tail, q));
        self.sync_rx(io, q);
        let new = self.rx[q as usize];
        let same = old.ring == new.ring && old.srrctl == new.srrctl;
        if same && old.head == new.head {
            // Only the enable bit (or nothing) changed: keep following.
            self.rx[q as usize] = RxQueue {
                enabled: new.enabled,
                ..old
            };
        } else {
            if was_enabled && old.posted() > 0 {
                self.set_taint(Taint::Moved(q));
            }
            self.rx[q as usize] = old;
            self.spill(q);
            self.mark_ring(old.ring);
            self.rx[q as usize] = new;
        }
        // A running queue owns what lies between the head and the tail
        // (posted while stopped, or before the ring was set up).
        if new.enabled {
            self.capture(dma, q, hw_tail, Posting::Followed);
        }
    }

    /// Marks every buffer still posted on queue `q` and forgets them.
    fn spill(&mut self, q: u32) {
        let rx = self.rx[q as usize];
        if !rx.followable() {
            return;
        }
        self.mark_slots(q, rx.head, rx.posted());
        self.rx[q as usize].head = rx.tail;
    }

    /// Buffers the hardware head has passed are complete: mark them.
    fn complete(&mut self, io: &mut impl RegIo, q: u32) {
        let rx = self.rx[q as usize];
        if !rx.followable() {
            return;
        }
        let hw_head = io.read32(self.map.rxq(self.map.rx.head, q));
        let done = ring_dist(rx.head, hw_head, rx.ring.count);
        if hw_head >= rx.ring.count || done > rx.posted() {
            // The device passed buffers the tracker never saw posted.
            self.set_taint(Taint::BadHead(q, hw_head));
            self.spill(q);
            let head = if hw_head < rx.ring.count { hw_head } else { 0 };
            self.rx[q as usize].head = head;
            self.rx[q as usize].tail = head;
            return;
        }
        self.mark_slots(q, rx.head, done);
        self.rx[q as usize].head = hw_head;
    }

    /// Records the buffers of descriptors `tail..new_tail` of queue `q`.
    fn capture(&mut self, dma: &mut impl DmaRead, q: u32, new_tail: u32, how: Posting) {
        let rx = self.rx[q as usize];
        if rx.ring.count == 0 {
            // No ring: a tail write without one posts nothing the device
            // can use; the ring's setup resyncs.
            return;
        }
        if !rx.followable() {
            self.set_taint(Taint::Ring(q, rx.ring.count));
            return;
        }
        let add = ring_dist(rx.tail, new_tail, rx.ring.count);
        if new_tail >= rx.ring.count || rx.posted() + add >= rx.ring.count {
            self.set_taint(Taint::BadTail(q, new_tail));
            // Follow what the device will believe, as far as it makes sense.
            let t = if new_tail < rx.ring.count {
                new_tail
            } else {
                rx.tail
            };
            self.rx[q as usize].tail = t;
            self.rx[q as usize].head = t;
            return;
        }
        self.read_slots(dma, q, add, how);
        self.stats.descriptors += u64::from(add);
        self.stats.max_descriptors_per_trap = self.stats.max_descriptors_per_trap.max(add);
    }

    /// Reads `count` descriptors from the tail of queue `q` into its slots.
    fn read_slots(&mut self, dma: &mut impl DmaRead, q: u32, count: u32, how: Posting) {
        let rx = self.rx[q as usize];
        let split = self.header_split(rx.srrctl);
        let mut buf = [0u8; READ_BATCH * DESC_LEN as usize];
        let mut i = rx.tail;
        let mut left = count;
        while left > 0 {
            // Contiguous up to the ring's end and the batch size.
            let n = left.min(rx.ring.count - i).min(READ_BATCH as u32);
            let iova = rx.ring.base.wrapping_add(u64::from(i) * DESC_LEN);
            let bytes = &mut buf[..(n as usize) * DESC_LEN as usize];
            if !dma.read(iova, bytes) {
                self.set_taint(Taint::Unreadable(q, iova));
                break;
            }
            for (k, d) in bytes.chunks_exact(DESC_LEN as usize).enumerate() {
                let desc = RxDesc::from_bytes(d);
                // A descriptor the device owns that looks written back (DD):
                // the device wrote it back, or the guest forged the bit on a
                // buffer the device will still fill. Its first word is kept
                // as the buffer either way: forged, it is the address the
                // device will fill, and is followed. Written back at the
                // start, the write landed before this read, inside the start
                // call, so before the VMM's first full copy: no mark needed
                // (a spurious one at most). After an unseen queue start it
                // may have landed after a copy, its address gone: all dirty.
                // (A taint at the start too, as before, made one frame that
                // arrived during the start call report every page for the
                // whole session: QEMU's migration then never converged.)
                if how == Posting::Unseen && desc.done(Srrctl(rx.srrctl).desc_type()) {
                    self.set_taint(Taint::WrittenBack(q));
                }
                let slot = Slot {
                    pkt: Some(desc.pkt_addr()),
                    hdr: split.then_some(desc.hdr_addr()),
                };
                let idx = q as usize * MAX_SLOTS as usize + (i as usize + k);
                if let Some(s) = self.slots.get_mut(idx) {
                    *s = slot;
                }
            }
            i = (i + n) % rx.ring.count;
            left -= n;
        }
        self.rx[q as usize].tail = (rx.tail + count) % rx.ring.count;
    }

    /// Whether SRRCTL's descriptor type uses a header buffer (anything but
    /// legacy and advanced one-buffer).
    fn header_split(&self, srrctl: u32) -> bool {
        Srrctl(srrctl).desc_type().has_header_buffer()
    }

    /// (packet, header) buffer bounds of queue `q`'s descriptors.
    fn buffer_sizes(&self, srrctl: u32) -> (u64, u64) {
        let pkt = Srrctl(srrctl).bsize_packet(self.map.srrctl);
        let hdr = Srrctl(srrctl).bsize_header(self.map.srrctl);
        let pkt = if pkt == 0 { MAX_PKT_BUF } else { pkt };
        let hdr = if hdr == 0 { MAX_HDR_BUF } else { hdr };
        (pkt, hdr)
    }

    /// Marks the buffers of `count` slots of queue `q` from `from`.
    fn mark_slots(&mut self, q: u32, from: u32, count: u32) {
        let rx = self.rx[q as usize];
        let (pkt_len, hdr_len) = self.buffer_sizes(rx.srrctl);
        for k in 0..count {
            let i = (from + k) % rx.ring.count;
            let idx = q as usize * MAX_SLOTS as usize + i as usize;
            let Some(&s) = self.slots.get(idx) else {
                continue;
            };
            if let Some(pkt) = s.pkt {
                self.mark(pkt, pkt_len);
            }
            if let Some(hdr) = s.hdr {
                self.mark(hdr, hdr_len);
            }
        }
    }

    fn mark_ring(&mut self, ring: Ring) {
        if ring.count > 0 {
            self.mark(ring.base, ring.bytes());
        }
    }

    /// Index of the first logged range ending after `iova` (ranges are
    /// sorted and disjoint).
    fn first_range_ending_after(&self, iova: u64) -> usize {
        self.ranges
            .partition_point(|r| r.range.iova + r.range.len <= iova)
    }

    /// The part of logged range `i` inside `[start, end)`, if range `i`
    /// exists and begins before `end` (callers walk up from
    /// [`Self::first_range_ending_after`] until `None`).
    fn span(&self, i: usize, start: u64, end: u64) -> Option<Span> {
        let LoggedRange {
            range: r,
            first_bit,
        } = *self.ranges.get(i)?;
        if r.iova >= end {
            return None;
        }
        Some(Span {
            lo: start.max(r.iova),
            hi: end.min(r.iova + r.len),
            first_bit,
            first_page: r.iova >> self.page_shift,
            range_lo: r.iova,
            range_hi: r.iova + r.len,
        })
    }

    /// Marks the logged pages a DMA write of `len` bytes at `iova` touches.
    pub fn mark(&mut self, iova: u64, len: u64) {
        let Some(end) = iova.checked_add(len) else {
            return;
        };
        if len == 0 {
            return;
        }
        let shift = self.page_shift;
        let mut i = self.first_range_ending_after(iova);
        while let Some(sp) = self.span(i, iova, end) {
            i += 1;
            for page in (sp.lo >> shift)..=((sp.hi - 1) >> shift) {
                let bit = sp.first_bit + (page - sp.first_page);
                if let Some(w) = self.bitmap.get_mut((bit / 64) as usize) {
                    *w |= 1 << (bit % 64);
                }
            }
        }
    }

    /// The TX queue's write targets, from its registers.
    fn read_tx(&self, io: &mut impl RegIo, q: u32) -> TxTargets {
        let m = self.map;
        let t = &m.tx;
        let ring = Ring::read(io, m.txq(t.bal, q), m.txq(t.bah, q), m.txq(t.len, q));
        let wbal = Tdwbal(io.read32(m.txq(t.wbal, q)));
        let wbah = io.read32(m.txq(t.wbah, q));
        let head_wb = wbal.head_wb(wbah);
        TxTargets { ring, head_wb }
    }

    fn mark_tx(&mut self, t: TxTargets) {
        self.mark_ring(t.ring);
        if let Some(head_wb) = t.head_wb {
            self.mark(head_wb, 4);
        }
    }

    /// Serves one report window: brings the log up to date with the
    /// device, then calls `set(iova, len)` for each dirty span inside
    /// `[iova, iova + len)` and clears it. Spans are clipped to the window
    /// and the logged ranges; a tainted tracker reports every logged page.
    pub fn report(
        &mut self,
        io: &mut impl RegIo,
        dma: &mut impl DmaRead,
        iova: u64,
        len: u64,
        mut set: impl FnMut(u64, u64),
    ) {
        self.sync(io, dma);
        self.emit(iova, len, &mut set);
    }

    /// The device part of [`Self::report`]: brings the log up to date with
    /// the device (completions, configuration the driver changed itself,
    /// stopped queues' buffers, ring pages). Tainted, it has nothing to do.
    pub fn sync(&mut self, io: &mut impl RegIo, dma: &mut impl DmaRead) {
        if self.tainted.is_none() {
            self.refresh(io, dma);
        }
    }

    /// The report part of [`Self::report`]: the bitmap (or everything, if
    /// tainted) inside the window, cleared as it goes.
    ///
    /// A page's bit is cleared only when the window covers all of the page
    /// (within its logged range): a window that covers part of it reports
    /// that part and keeps the bit for the rest, and an empty window
    /// reports and clears nothing.
    pub fn emit(&mut self, iova: u64, len: u64, set: &mut impl FnMut(u64, u64)) {
        self.stats.reports += 1;
        let Some(win_end) = iova.checked_add(len) else {
            return;
        };
        if len == 0 {
            return;
        }
        let shift = self.page_shift;
        let mut i = self.first_range_ending_after(iova);
        while let Some(Span {
            lo,
            hi,
            first_bit,
            first_page,
            range_lo,
            range_hi,
        }) = self.span(i, iova, win_end)
        {
            i += 1;
            if self.tainted.is_some() {
                set(lo, hi - lo);
                continue;
            }
            let mut page = lo >> shift;
            let last = (hi - 1) >> shift;
            while page <= last {
                let bit = first_bit + (page - first_page);
                let w = (bit / 64) as usize;
                let word = self.bitmap.get(w).copied().unwrap_or(0);
                if word == 0 && bit % 64 == 0 && last - page >= 63 {
                    page += 64; // a clean word: skip it whole
                    continue;
                }
                let mask = 1u64 << (bit % 64);
                if word & mask != 0 {
                    let page_lo = (page << shift).max(range_lo);
                    let page_hi = (page << shift).saturating_add(1 << shift).min(range_hi);
                    let (s, e) = (page_lo.max(lo), page_hi.min(hi));
                    set(s, e - s);
                    if (s, e) == (page_lo, page_hi) {
                        if let Some(x) = self.bitmap.get_mut(w) {
                            *x &= !mask;
                        }
                    }
                }
                page += 1;
            }
        }
    }

    /// Before a report: completions, configuration the driver changed
    /// itself (restore, quiesce), stopped queues' buffers, ring pages.
    fn refresh(&mut self, io: &mut impl RegIo, dma: &mut impl DmaRead) {
        for q in 0..self.queues() {
            let old = self.rx[q as usize];
            let m = self.map;
            let ring = Ring::read(
                io,
                m.rxq(m.rx.bal, q),
                m.rxq(m.rx.bah, q),
                m.rxq(m.rx.len, q),
            );
            let srrctl = io.read32(m.rxq(m.rx.srrctl, q));
            let enabled = Dctl(io.read32(m.rxq(m.rx.dctl, q))).enabled();
            if ring != old.ring || srrctl != old.srrctl {
                self.resync(io, dma, q, old.enabled && enabled);
            } else {
                self.rx[q as usize].enabled = enabled;
                if enabled && !old.enabled {
                    // Started by the driver's own resume, not a trapped
                    // write: the device owns what lies up to its tail.
                    let hw_tail = io.read32(m.rxq(m.rx.tail, q));
                    self.capture(dma, q, hw_tail, Posting::Unseen);
                }
                self.complete(io, q);
            }
            let rx = self.rx[q as usize];
            if rx.enabled {
                self.rx[q as usize].marked_stopped = false;
            } else if !rx.marked_stopped {
                // Stopped: whatever is posted may have been written, and
                // nothing more will be while it stays stopped. The buffers
                // stay tracked: a restarted queue goes on with them.
                self.mark_slots(q, rx.head, rx.posted());
                self.rx[q as usize].marked_stopped = true;
            }
            self.mark_ring(rx.ring);
            let now = self.read_tx(io, q);
            let before = self.tx[q as usize];
            self.mark_tx(now);
            if before != now {
                self.mark_tx(before);
            }
            self.tx[q as usize] = now;
        }
    }
}

/// What the tracker follows on one RX queue ([`VfTracker::rx_view`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RxView {
    /// The ring's IOVA.
    pub ring: u64,
    /// Its descriptors.
    pub descriptors: u32,
    /// SRRCTL as followed.
    pub srrctl: u32,
    /// Whether the queue is enabled.
    pub enabled: bool,
    /// The device's next descriptor.
    pub head: u32,
    /// One past the last posted.
    pub tail: u32,
}
