// SPDX-License-Identifier: GPL-2.0

//! The family HAL: quiesce, save, load and resume sequences of a VF, written
//! once over [`RegIo`] so the module runs them on the real BAR and the host
//! tests run them on register models.
//!
//! Sequences (Documentation/migration.rst has the reasoning):
//!
//! - **quiesce** (RUNNING -> RUNNING_P2P): record EIMS, mask every vector
//!   (EIMC); per TX queue that is enabled, wait until head meets tail (every
//!   posted packet sent), then clear the enable bit, with the family's
//!   write-back flush (ixgbe's SWFLSH), and poll it clear; per
//!   RX queue, clear enable and poll. After it returns the VF does no DMA.
//! - **save** (STOP_COPY): read every queue and interrupt register. The
//!   read-to-clear EICR and the mailbox control register are never read;
//!   enables and EIMS come from the quiesce record, since the live ones are
//!   ours.
//! - **load** (RESUMING -> STOP): with queues disabled and vectors masked,
//!   program base, length, SRRCTL, head, tail, head write-back, then read
//!   each head back (a head the device did not take is refused, named);
//!   then IVAR, EITR, EIAC, EIAM. Queues stay disabled until resume.
//! - **resume** (RUNNING_P2P -> RUNNING): per queue recorded enabled, set the
//!   enable bit and poll it set, then write the tail again (posting RX
//!   buffers; TX has head == tail, so nothing is sent twice); EIMS last, then
//!   EICS for every unmasked vector, because pending causes cannot be read
//!   without clearing them: a spurious interrupt costs one empty poll, a lost
//!   one stalls a queue. Vectors that auto-masked themselves by firing just
//!   before the stop (EIAC and EIAM set, EIMS clear) are unmasked and fired
//!   too: the VMM may have lost that MSI.
//!
//! Every poll is bounded by [`POLL_LIMIT`] reads [`POLL_DELAY_US`] apart.

use super::bits::{Dctl, Enable};
use super::errno;
use super::regs::{RegMap, RxQueueRegs, TxQueueRegs};

pub use super::regs::MAX_QUEUES;

/// Most polls of one enable bit or one TX drain.
pub const POLL_LIMIT: u32 = 1000;
/// Delay between two polls, in microseconds (worst case per wait: 10 ms).
pub const POLL_DELAY_US: u32 = 10;
/// Most IVAR registers any family has.
pub const MAX_IVARS: usize = 4;
/// Most MSI-X vectors any family has.
pub const MAX_VECTORS: usize = 3;

/// 32-bit register access to a VF's BAR0, and a delay.
pub trait RegIo {
    /// Reads the register at byte offset `off`.
    fn read32(&mut self, off: u32) -> u32;
    /// Writes the register at byte offset `off`.
    fn write32(&mut self, off: u32, value: u32);
    /// Waits about `us` microseconds (between polls).
    fn delay_us(&mut self, us: u32);
}

/// Why a sequence failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HalError {
    /// A TX queue did not drain within the poll limit.
    TxNotDrained {
        /// The queue.
        queue: u32,
        /// Its head at the last poll.
        head: u32,
        /// Its tail.
        tail: u32,
    },
    /// A queue's enable bit did not reach the wanted value.
    EnableTimeout {
        /// The queue.
        queue: u32,
        /// RX or TX.
        dir: QueueDir,
        /// The value wanted.
        want: Enable,
    },
    /// A queue's head did not take the value the load wrote: the device
    /// would fill or send from the wrong descriptor.
    HeadNotLoaded {
        /// The queue.
        queue: u32,
        /// RX or TX.
        dir: QueueDir,
        /// The value written (the source's head).
        wrote: u32,
        /// The value read back.
        read: u32,
    },
    /// A stream's queue or vector count does not fit this family.
    BadCount {
        /// What was counted.
        what: &'static str,
        /// The count.
        value: u32,
        /// The family's maximum.
        max: u32,
    },
}

impl HalError {
    /// Linux errno (positive) for this failure.
    pub const fn errno(&self) -> i32 {
        match self {
            HalError::TxNotDrained { .. } | HalError::EnableTimeout { .. } => errno::ETIMEDOUT,
            HalError::BadCount { .. } => errno::ERANGE,
            HalError::HeadNotLoaded { .. } => errno::EIO,
        }
    }
}

impl core::fmt::Display for HalError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            HalError::TxNotDrained { queue, head, tail } => write!(
                f,
                "TX queue {queue} did not drain: head {head}, tail {tail}"
            ),
            HalError::EnableTimeout { queue, dir, want } => write!(
                f,
                "{} queue {queue} enable bit did not become {}",
                dir.name(),
                want.bit()
            ),
            HalError::HeadNotLoaded {
                queue,
                dir,
                wrote,
                read,
            } => write!(
                f,
                "{} queue {queue} head did not load: wrote {wrote}, read back {read}",
                dir.name()
            ),
            HalError::BadCount { what, value, max } => {
                write!(f, "{what} is {value}, the family has at most {max}")
            }
        }
    }
}

/// Which of a queue pair.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum QueueDir {
    /// The RX queue.
    Rx,
    /// The TX queue.
    Tx,
}

impl QueueDir {
    /// "RX" or "TX".
    pub const fn name(self) -> &'static str {
        match self {
            QueueDir::Rx => "RX",
            QueueDir::Tx => "TX",
        }
    }
}

pub use super::queue_regs::{RxQueue, TxQueue};

/// Interrupt configuration.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct IrqState {
    /// Unmasked vectors, as the guest had them.
    pub eims: u32,
    /// Auto-clear vectors.
    pub eiac: u32,
    /// Auto-mask vectors.
    pub eiam: u32,
    /// Cause-to-vector maps.
    pub ivar: [u32; MAX_IVARS],
    /// Mailbox cause's vector.
    pub ivar_misc: u32,
    /// Moderation per vector.
    pub eitr: [u32; MAX_VECTORS],
}

/// What quiesce changed, to be undone by resume.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct QuiesceRecord {
    /// EIMS before masking.
    pub eims: u32,
    /// Bit n: RX queue n was enabled.
    pub rx_enabled: u32,
    /// Bit n: TX queue n was enabled.
    pub tx_enabled: u32,
}

/// A VF's saved device state.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceState {
    /// Queue pairs saved.
    pub queue_pairs: u32,
    /// RX queues (first `queue_pairs` valid).
    pub rx: [RxQueue; MAX_QUEUES],
    /// TX queues (first `queue_pairs` valid).
    pub tx: [TxQueue; MAX_QUEUES],
    /// Interrupt configuration.
    pub irq: IrqState,
}

impl DeviceState {
    /// The quiesce record this state resumes to.
    pub fn record(&self) -> QuiesceRecord {
        let mut r = QuiesceRecord {
            eims: self.irq.eims,
            ..QuiesceRecord::default()
        };
        for q in 0..self.queue_pairs as usize {
            if Dctl(self.rx[q].dctl).enabled() {
                r.rx_enabled |= 1 << q;
            }
            if Dctl(self.tx[q].dctl).enabled() {
                r.tx_enabled |= 1 << q;
            }
        }
        r
    }
}

/// Polls the queue control register at `off` until its enable bit is
/// `want`, bounded.
fn poll_enable(io: &mut impl RegIo, off: u32, want: Enable) -> bool {
    for _ in 0..POLL_LIMIT {
        if Dctl(io.read32(off)).enable() == want {
            return true;
        }
        io.delay_us(POLL_DELAY_US);
    }
    Dctl(io.read32(off)).enable() == want
}

/// Sets the enable bit of the queue control register at `off` to `want`
/// and waits until the device agrees.
fn set_enable(
    io: &mut impl RegIo,
    off: u32,
    queue: u32,
    dir: QueueDir,
    want: Enable,
) -> Result<(), HalError> {
    set_enable_with(io, off, queue, dir, want, 0)
}

/// [`set_enable`], with `extra` bits in the write (a flush).
fn set_enable_with(
    io: &mut impl RegIo,
    off: u32,
    queue: u32,
    dir: QueueDir,
    want: Enable,
    extra: u32,
) -> Result<(), HalError> {
    let v = Dctl(io.read32(off));
    io.write32(off, v.with_enable(want).0 | extra);
    if poll_enable(io, off, want) {
        Ok(())
    } else {
        Err(HalError::EnableTimeout { queue, dir, want })
    }
}

/// Stops all DMA and interrupts of the VF; see the module docs.
pub fn quiesce(io: &mut impl RegIo, map: &RegMap) -> Result<QuiesceRecord, HalError> {
    let mut rec = QuiesceRecord {
        eims: io.read32(map.eims) & map.vector_mask(),
        ..QuiesceRecord::default()
    };
    io.write32(map.eimc, map.vector_mask());
    for q in 0..map.max_queue_pairs {
        let dctl = map.txq(map.tx.dctl, q);
        if !Dctl(io.read32(dctl)).enabled() {
            continue;
        }
        rec.tx_enabled |= 1 << q;
        let (h, t) = (map.txq(map.tx.head, q), map.txq(map.tx.tail, q));
        let mut drained = false;
        for _ in 0..POLL_LIMIT {
            if io.read32(h) == io.read32(t) {
                drained = true;
                break;
            }
            io.delay_us(POLL_DELAY_US);
        }
        if !drained {
            let (head, tail) = (io.read32(h), io.read32(t));
            if head != tail {
                return Err(HalError::TxNotDrained {
                    queue: q,
                    head,
                    tail,
                });
            }
        }
        // With the family's flush: descriptors sent but not yet written
        // back (WTHRESH batching) reach guest memory before the save.
        set_enable_with(io, dctl, q, QueueDir::Tx, Enable::Off, map.tx_flush)?;
    }
    for q in 0..map.max_queue_pairs {
        let dctl = map.rxq(map.rx.dctl, q);
        if !Dctl(io.read32(dctl)).enabled() {
            continue;
        }
        rec.rx_enabled |= 1 << q;
        set_enable(io, dctl, q, QueueDir::Rx, Enable::Off)?;
    }
    Ok(rec)
}

/// Reads the state of a quiesced VF; `rec` supplies enables and EIMS.
pub fn save(io: &mut impl RegIo, map: &RegMap, rec: &QuiesceRecord) -> DeviceState {
    let mut s = DeviceState {
        queue_pairs: map.max_queue_pairs,
        ..DeviceState::default()
    };
    for q in 0..map.max_queue_pairs {
        let i = q as usize;
        let (r, t) = (&map.rx, &map.tx);
        let enable = |mask: u32| Enable::from_bool(mask & (1 << q) != 0);
        let (rx_en, tx_en) = (enable(rec.rx_enabled), enable(rec.tx_enabled));
        let mut rx = RxQueue::from_words(r.offsets().map(|o| io.read32(map.rxq(o, q))));
        rx.dctl = Dctl(rx.dctl).with_enable(rx_en).0;
        let mut tx = TxQueue::from_words(t.offsets().map(|o| io.read32(map.txq(o, q))));
        // A flush bit the device has not cleared yet is no state.
        tx.dctl = Dctl(tx.dctl & !map.tx_flush).with_enable(tx_en).0;
        s.rx[i] = rx;
        s.tx[i] = tx;
    }
    s.irq.eims = rec.eims;
    s.irq.eiac = io.read32(map.eiac);
    s.irq.eiam = io.read32(map.eiam);
    for i in 0..map.ivar_count {
        s.irq.ivar[i as usize] = io.read32(map.ivar0 + 4 * i);
    }
    s.irq.ivar_misc = io.read32(map.ivar_misc);
    for v in 0..map.vectors {
        s.irq.eitr[v as usize] = io.read32(map.eitr + 4 * v);
    }
    s
}

/// Checks that `s` fits `map` before any register is written.
pub fn validate(s: &DeviceState, map: &RegMap) -> Result<(), HalError> {
    if s.queue_pairs > map.max_queue_pairs {
        return Err(HalError::BadCount {
            what: "queue pairs",
            value: s.queue_pairs,
            max: map.max_queue_pairs,
        });
    }
    Ok(())
}

/// Programs a stopped VF with `s`, leaving queues disabled and vectors masked.
pub fn load(io: &mut impl RegIo, map: &RegMap, s: &DeviceState) -> Result<(), HalError> {
    validate(s, map)?;
    io.write32(map.eimc, map.vector_mask());
    for q in 0..s.queue_pairs {
        let i = q as usize;
        let (r, t) = (&map.rx, &map.tx);
        let (rx, tx) = (&s.rx[i], &s.tx[i]);
        set_enable(io, map.rxq(r.dctl, q), q, QueueDir::Rx, Enable::Off)?;
        set_enable(io, map.txq(t.dctl, q), q, QueueDir::Tx, Enable::Off)?;
        // The enables go in disabled: the resume turns the queues on.
        let rx = RxQueue {
            dctl: Dctl(rx.dctl).with_enable(Enable::Off).0,
            ..*rx
        };
        let tx = TxQueue {
            dctl: Dctl(tx.dctl).with_enable(Enable::Off).0,
            ..*tx
        };
        let (offs, words) = (r.offsets(), rx.words());
        for k in RxQueueRegs::LOAD_ORDER {
            io.write32(map.rxq(offs[k], q), words[k]);
        }
        let (offs, words) = (t.offsets(), tx.words());
        for k in TxQueueRegs::LOAD_ORDER {
            io.write32(map.txq(offs[k], q), words[k]);
        }
        // A head the device did not take (some silicon ignores a head
        // write, or takes it only at some moment) would have it fill or
        // send from the wrong descriptor: refuse, naming it, while the
        // queues are still off.
        for (dir, off, wrote) in [
            (QueueDir::Rx, map.rxq(r.head, q), rx.head),
            (QueueDir::Tx, map.txq(t.head, q), tx.head),
        ] {
            let read = io.read32(off);
            if read != wrote {
                return Err(HalError::HeadNotLoaded {
                    queue: q,
                    dir,
                    wrote,
                    read,
                });
            }
        }
    }
    for i in 0..map.ivar_count {
        io.write32(map.ivar0 + 4 * i, s.irq.ivar[i as usize]);
    }
    io.write32(map.ivar_misc, s.irq.ivar_misc);
    for v in 0..map.vectors {
        io.write32(map.eitr + 4 * v, s.irq.eitr[v as usize]);
    }
    io.write32(map.eiac, s.irq.eiac);
    io.write32(map.eiam, s.irq.eiam);
    Ok(())
}

/// Restarts a quiesced (or loaded) VF as `rec` says; see the module docs.
pub fn resume(io: &mut impl RegIo, map: &RegMap, rec: &QuiesceRecord) -> Result<(), HalError> {
    for q in 0..map.max_queue_pairs {
        if rec.rx_enabled & (1 << q) != 0 {
            set_enable(io, map.rxq(map.rx.dctl, q), q, QueueDir::Rx, Enable::On)?;
            let tail = map.rxq(map.rx.tail, q);
            let v = io.read32(tail);
            io.write32(tail, v);
        }
        if rec.tx_enabled & (1 << q) != 0 {
            set_enable(io, map.txq(map.tx.dctl, q), q, QueueDir::Tx, Enable::On)?;
            let tail = map.txq(map.tx.tail, q);
            let v = io.read32(tail);
            io.write32(tail, v);
        }
    }
    // A vector set to auto-clear and auto-mask (EIAC and EIAM) that was
    // masked at quiesce masked itself when it last fired, and that MSI may
    // never reach the guest: QEMU reads the interrupt eventfd after it has
    // saved the vCPUs, so a message in flight at the stop is lost, and the
    // guest, which unmasks the vector in its handler, waits forever. A
    // driver that masks a vector on purpose clears EIAC (igbvf, ixgbevf),
    // so those stay masked.
    let auto = io.read32(map.eiac) & io.read32(map.eiam);
    let unmask = (rec.eims | auto) & map.vector_mask();
    io.write32(map.eims, unmask);
    if unmask != 0 {
        io.write32(map.eics, unmask);
    }
    Ok(())
}
