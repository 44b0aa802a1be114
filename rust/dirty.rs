// SPDX-License-Identifier: GPL-2.0

//! Device DMA logging (`vfio_log_ops`, trampolines in ffi/ops.rs) over the
//! shared tracker (`common::tracker`, Documentation/dirty-tracking.rst).
//!
//! The tracker sees the RX tail page through [`rx_page_write`] (trap.rs
//! routes it here) and reports through [`report`]. Everything that touches
//! the device or guest memory runs under the device's `DevLock`: the vfio
//! dev_set lock, which keeps the device bound and attached, then memory_lock,
//! which keeps BAR0 decoded, except while guest memory is read (see
//! [`followed`]). Lock order: the `dirty` mutex, then dev_set, then
//! memory_lock; nothing takes `dirty` while holding the other two (close
//! and reset only try it, or leave it to the epoch).

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use kernel::alloc::KVVec;
use kernel::prelude::*;
use kernel::time::{Instant, Monotonic};
use kernel::uaccess::{UserPtr, UserSlice};

use crate::common::dirty::{self, LoggedRange, Range, MAX_RANGES};
use crate::common::tracker::{Slot, Stats, Taint, Tracker};
use crate::device::IvfDevice;
use crate::epoch::{Current, FollowsDevice, Since};
use crate::ffi::uapi::RegionPos;
use crate::ffi::vfio_core::{DevLock, Dma};
use crate::log_limit::vf_line;
use crate::mmio::Bar0;
use crate::switches::Switch;
use crate::trap::{followable_words, FOLLOW_MAX};

type VfTracker = Tracker<KVVec<LoggedRange>, KVVec<u64>, KVVec<Slot>>;

/// BAR0 page size (the trapping's unit).
const PAGE: u64 = 4096;

/// The per-device logging state, under the device's `dirty` mutex.
#[derive(Default)]
pub(crate) struct DirtyLog {
    /// The running session's tracker.
    session: Option<KBox<VfTracker>>,
    /// Counters of the last session that ended (a running one's are its
    /// tracker's).
    last: Stats,
    /// Nanoseconds spent in tail traps (capture and forward).
    trap_ns: u64,
}

impl DirtyLog {
    /// Ends any session (log_stop, a new user).
    fn stop(&mut self) {
        if let Some(t) = self.session.take() {
            self.last = t.stats;
        }
    }
}

impl FollowsDevice for DirtyLog {
    /// BAR0, when the caller could lock the device.
    type Ctx<'c> = Option<&'c mut Bar0>;

    /// A new user: logging ended with the old one's open. A reset: the
    /// tracker marks what was posted and follows the queues afresh, or,
    /// without the device to ask, reports everything from now on.
    fn catch_up(&mut self, since: Since, dev: Self::Ctx<'_>) {
        if since.new_user {
            self.stop();
        }
        let Some(t) = self.session.as_mut() else {
            return;
        };
        if since.reset {
            match dev {
                Some(bar) => t.on_reset(bar),
                None => t.give_up(Taint::NoDevice),
            }
        }
    }
}

/// Why a session went "all dirty", once, in the kernel log.
fn note_taint(ivf: &IvfDevice, before: Option<Taint>, t: &VfTracker) {
    if before.is_none() {
        if let Some(why) = t.taint() {
            vf_line!(
                ivf,
                dev_info,
                "dirty tracking: reporting every logged page from now on ({:?})\n",
                why
            );
        }
    }
}

/// Runs `f` on the tracker with the device. Guest-memory reads release
/// memory_lock (ffi/vfio_core.rs `Dma`), so a reset may land inside `f`: then
/// what the tracker learnt before it cannot be trusted, and every logged
/// page is dirty from now on.
fn followed(
    ivf: &IvfDevice,
    t: &mut VfTracker,
    d: &mut DevLock<'_>,
    f: impl FnOnce(&mut VfTracker, &mut Bar0, &mut Dma<'_>),
) {
    let stamp = ivf.epoch().now();
    let (bar, mut dma) = d.split();
    f(t, bar, &mut dma);
    if stamp.reset_before(ivf.epoch().now()) {
        t.give_up(Taint::Reset);
    }
}

/// The logging state, current, and the device if it could be locked (lock
/// order: the state's mutex first).
fn lock(ivf: &IvfDevice) -> (Current<'_, DirtyLog>, Option<DevLock<'_>>) {
    let locked = ivf.dirty().lock();
    let mut dev = ivf.core().dev_lock(ivf.dma_access());
    let log = locked.catch_up(ivf.epoch(), dev.as_mut().map(|d| &mut d.bar));
    (log, dev)
}

/// A write to BAR0's RX queue page at `off`, already copied from the user
/// into `data` when `data` is `Some` (an aligned run of 32-bit registers).
/// The tracker performs it and returns the bytes written; or, when there
/// is no session or the access cannot be followed, it returns the locked
/// log and the caller forwards the access through vfio-pci-core while
/// holding it (so a session starting meanwhile sees the result).
pub(crate) fn rx_page_write<'a>(
    ivf: &'a IvfDevice,
    off: u32,
    data: Option<&[u8]>,
) -> core::result::Result<isize, Current<'a, DirtyLog>> {
    let start = Instant::<Monotonic>::now();
    let (mut log, mut dev) = lock(ivf);
    let Some(t) = log.session.as_mut() else {
        drop(dev);
        return Err(log);
    };
    let before = t.taint();
    let (Some(d), Some(bytes)) = (dev.as_mut(), data) else {
        // An access of another shape, or no device to ask: from now on
        // every logged page is dirty. The core still performs the access.
        t.give_up(match dev {
            None => Taint::NoDevice,
            Some(_) => Taint::Access(off),
        });
        note_taint(ivf, before, t);
        drop(dev);
        return Err(log);
    };
    followed(ivf, t, d, |t, bar, dma| {
        for (i, w) in bytes.chunks_exact(4).enumerate() {
            let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            t.rx_write(bar, dma, off + 4 * i as u32, v);
        }
    });
    note_taint(ivf, before, t);
    drop(dev);
    log.trap_ns += start.elapsed().as_nanos().max(0) as u64;
    Ok(bytes.len() as isize)
}

/// A VF reset through CTRL.RST (page 0): the queues are off; the tracker
/// marks what was posted and starts over.
pub(crate) fn vf_reset(ivf: &IvfDevice) {
    let (mut log, mut dev) = lock(ivf);
    if let Some(t) = log.session.as_mut() {
        match dev.as_mut() {
            Some(d) => t.on_reset(&mut d.bar),
            None => t.give_up(Taint::NoDevice),
        }
    }
}

/// A write of `count` bytes at `at` (BAR0, off the mailbox page) that the
/// tracker takes: in device-logging mode, one that touches the RX queue
/// page. `None`: not the tracker's (the core performs it).
pub(crate) fn region_write(
    ivf: &IvfDevice,
    at: RegionPos,
    buf: UserPtr,
    count: usize,
    pos: &mut i64,
) -> Option<isize> {
    let off = at.offset;
    let rx_page = u64::from(ivf.regmap().rx_tail_page()) * PAGE;
    let end = off.saturating_add(count as u64);
    if !(at.in_bar0() && ivf.switch(Switch::DirtyTracking) && off < rx_page + PAGE && end > rx_page)
    {
        return None;
    }
    let mut data = [0u8; FOLLOW_MAX];
    let copied = followable_words(off, count) && {
        let mut r = UserSlice::new(buf, count).reader();
        r.read_slice(&mut data[..count]).is_ok()
    };
    // Only an access wholly inside the page can be followed; any other
    // that touches it taints the tracker (and the core performs it).
    let inside = off >= rx_page && end <= rx_page + PAGE;
    // `then`, not `then_some`: the slice exists only when it was copied
    // (count <= FOLLOW_MAX); `then_some` would slice first and panic.
    let seen = (copied && inside).then(|| &data[..count]);
    Some(match rx_page_write(ivf, off as u32, seen) {
        Ok(n) => {
            // The core advances the position the same way.
            *pos += n as i64;
            n
        }
        // Not the tracker's: the core's write, under the tracker's lock.
        Err(guard) => {
            let n = ivf.core().write(buf, count, pos);
            drop(guard);
            n
        }
    })
}

/// `log_start` over `nnodes` ranges, which `copy` writes as iova/length
/// pairs into a slice and counts; returns the page size chosen.
pub(crate) fn start(
    ivf: &IvfDevice,
    nnodes: u32,
    copy: impl FnOnce(&mut [u64]) -> usize,
    page_size: u64,
) -> Result<u64> {
    if nnodes == 0 || nnodes as usize > MAX_RANGES {
        return Err(EINVAL);
    }
    let n = nnodes as usize;
    let mut pairs = KVVec::from_elem(0u64, 2 * n, GFP_KERNEL)?;
    let got = copy(&mut pairs).min(n);
    let mut ranges = KVVec::with_capacity(got, GFP_KERNEL)?;
    for p in pairs.chunks_exact(2).take(got) {
        let range = Range {
            iova: p[0],
            len: p[1],
        };
        ranges.push(
            LoggedRange {
                range,
                first_bit: 0,
            },
            GFP_KERNEL,
        )?;
    }
    let (chosen, words) = dirty::check(&mut ranges, page_size).map_err(|e| {
        vf_line!(ivf, dev_info, "dirty tracking refused: {:?}\n", e);
        EINVAL
    })?;
    let bitmap = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
    let slots = KVVec::from_elem(
        Slot::default(),
        VfTracker::slots_needed(ivf.regmap()),
        GFP_KERNEL,
    )?;
    let (mut log, dev) = lock(ivf);
    if log.session.is_some() {
        // One session at a time (uAPI: no second start before a stop).
        return Err(EBUSY);
    }
    let mut dev = dev.ok_or(EIO)?;
    let stamp = ivf.epoch().now();
    let (bar, mut dma) = dev.split();
    let mut tracker = VfTracker::start(ivf.regmap(), ranges, chosen, bitmap, slots, bar, &mut dma)
        .map_err(|e| {
            vf_line!(ivf, dev_info, "dirty tracking refused: {:?}\n", e);
            EINVAL
        })?;
    if stamp.reset_before(ivf.epoch().now()) {
        tracker.give_up(Taint::Reset);
    }
    drop(dev);
    if let Some(v) = tracker.rx_view(0) {
        dev_dbg!(
            ivf.dev(),
            "dirty tracking: {} ranges, page {:#x}; rx0 ring {:#x} x{} srrctl {:#x} on {} posted {}..{}\n",
            got,
            chosen,
            v.ring,
            v.descriptors,
            v.srrctl,
            v.enabled,
            v.head,
            v.tail
        );
    }
    note_taint(ivf, None, &tracker);
    log.trap_ns = 0;
    log.session = Some(KBox::new(tracker, GFP_KERNEL)?);
    Ok(chosen)
}

/// `log_stop`: ends the session; stopping without one is fine.
pub(crate) fn stop(ivf: &IvfDevice) {
    let (mut log, dev) = lock(ivf);
    drop(dev);
    log.stop();
}

/// `log_read_and_clear`: one window `iova..iova + length` of a report;
/// `set` marks a dirty span in the user's bitmap.
pub(crate) fn report(
    ivf: &IvfDevice,
    iova: u64,
    length: u64,
    set: &mut impl FnMut(u64, u64),
) -> Result {
    let (mut log, mut dev) = lock(ivf);
    let Some(t) = log.session.as_mut() else {
        // uAPI: reporting without logging is an error.
        return Err(EINVAL);
    };
    let before = t.taint();
    match dev.as_mut() {
        Some(d) => followed(ivf, t, d, |t, bar, dma| t.sync(bar, dma)),
        None => t.give_up(Taint::NoDevice),
    }
    // Setting bits may pin the next part of the user's bitmap (mmap_lock):
    // not under memory_lock, which page faults on BAR mmaps take.
    drop(dev);
    t.emit(iova, length, set);
    note_taint(ivf, before, t);
    Ok(())
}

/// The counters sysfs shows.
pub(crate) struct DirtyStats {
    /// The tracker's counters (the running session's, or the last one's).
    pub(crate) stats: Stats,
    /// Nanoseconds spent in tail traps.
    pub(crate) trap_ns: u64,
    /// A session of the current user runs.
    pub(crate) logging: bool,
}

/// The counters, without catching up: a read must not change the tracker.
/// `None` when the log stays busy (a user can hold it across a write whose
/// copy from user memory it stalls): sysfs then says EBUSY rather than
/// leaving its reader asleep behind that user.
pub(crate) fn stats(ivf: &IvfDevice) -> Option<DirtyStats> {
    let mut locked = ivf.dirty().try_lock();
    for _ in 0..100 {
        if locked.is_some() {
            break;
        }
        kernel::time::delay::fsleep(kernel::time::Delta::from_millis(1));
        locked = ivf.dirty().try_lock();
    }
    let locked = locked?;
    let (log, since) = locked.peek(ivf.epoch());
    Some(DirtyStats {
        stats: log.session.as_ref().map_or(log.last, |t| t.stats),
        trap_ns: log.trap_ns,
        logging: log.session.is_some() && !since.new_user,
    })
}
