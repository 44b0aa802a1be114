// SPDX-License-Identifier: GPL-2.0

//! Device DMA logging (`vfio_log_ops`) over the shared tracker
//! (`common::tracker`, Documentation/dirty-tracking.rst).
//!
//! The tracker sees the RX tail page through [`rx_page_write`] (trap.rs
//! routes it here) and reports through `log_read_and_clear`. Everything
//! that touches the device or guest memory runs under [`DevLock`]: the
//! vfio dev_set lock, which keeps the IOMMU domain attached, then
//! memory_lock, which keeps BAR0 decoded. Lock order: the `dirty` mutex,
//! then dev_set, then memory_lock; nothing takes `dirty` while holding
//! the other two (close and reset only try it, or leave a mark).

use kernel::alloc::KVVec;
use kernel::prelude::*;

use crate::common::dirty::{self, LoggedRange, Range, MAX_RANGES};
use crate::common::tracker::{DmaRead, Slot, Stats, Taint, Tracker};
use crate::mmio::Bar0;
use crate::vfio::{bindings, vfio_device, vfio_pci_core_device};
use crate::vfio_dev::IvfDevice;

type VfTracker = Tracker<KVVec<LoggedRange>, KVVec<u64>, KVVec<Slot>>;

/// One logging session: the tracker and the generations it belongs to.
struct Session {
    tracker: VfTracker,
    /// The device's reset generation the tracker last caught up with.
    reset_gen: u64,
    /// The open of the device the session was started in.
    open_gen: u64,
}

/// The per-device logging state, under `IvfDevice::dirty`.
#[derive(Default)]
pub(crate) struct DirtyLog {
    session: Option<KBox<Session>>,
    /// Counters of the last session that ended (a running one's are its
    /// tracker's).
    last: Stats,
    /// Nanoseconds spent in tail traps (capture and forward).
    trap_ns: u64,
}

impl DirtyLog {
    /// Whether a session of the device's current open runs (one of an
    /// earlier open is dropped).
    fn active(&mut self, ivf: &IvfDevice) -> bool {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.open_gen != ivf.open_gen())
        {
            self.stop();
        }
        self.session.is_some()
    }

    /// Ends any session (log_stop, close).
    pub(crate) fn stop(&mut self) {
        if let Some(s) = self.session.take() {
            self.last = s.tracker.stats;
        }
    }
}

/// The device and its IOMMU domain, locked for the tracker.
struct DevLock {
    core: *mut vfio_pci_core_device,
    bar: Bar0,
}

impl DevLock {
    /// Takes dev_set->lock and memory_lock; `None` if memory decode is off.
    fn take(ivf: &IvfDevice) -> Option<DevLock> {
        let core = ivf.core_ptr();
        // SAFETY: `core` is our open device; released in `drop`.
        if unsafe { bindings::ivf_dev_lock(core) } != 0 {
            return None;
        }
        // SAFETY: with memory_lock held and decode on, barmap[0] is the live
        // mapping of BAR0 (checked non-null by ivf_dev_lock).
        let bar = unsafe {
            let pdev = (*core).pdev;
            let res = &(*pdev).resource[0];
            Bar0::new((*core).barmap[0], (res.end - res.start + 1) as usize)
        };
        Some(DevLock { core, bar })
    }
}

impl Drop for DevLock {
    fn drop(&mut self) {
        // SAFETY: taken in `take`.
        unsafe { bindings::ivf_dev_unlock(self.core) }
    }
}

/// Guest memory through the device's IOMMU domain (under [`DevLock`]).
struct Dma(*mut vfio_pci_core_device);

impl DmaRead for Dma {
    fn read(&mut self, iova: u64, buf: &mut [u8]) -> bool {
        // SAFETY: the caller holds the DevLock of this device; `buf` is
        // writable for its length.
        unsafe { bindings::ivf_dma_read(self.0, iova, buf.as_mut_ptr().cast(), buf.len()) == 0 }
    }
}

/// The session of `ivf`, if one runs for the current open, caught up with
/// resets. A session of an earlier open (its close could not take the
/// lock) is dropped here.
fn session<'a>(
    ivf: &IvfDevice,
    log: &'a mut DirtyLog,
    dev: Option<&mut DevLock>,
) -> Option<&'a mut Session> {
    if !log.active(ivf) {
        return None;
    }
    let s = log.session.as_mut()?;
    let now = ivf.reset_gen();
    if s.reset_gen != now {
        s.restart(dev);
        s.reset_gen = now;
    }
    Some(s)
}

impl Session {
    /// The VF was reset: the tracker marks what was posted and follows the
    /// queues afresh, or, without the device to ask, reports everything.
    fn restart(&mut self, dev: Option<&mut DevLock>) {
        match dev {
            Some(d) => self.tracker.on_reset(&mut d.bar),
            None => self.tracker.give_up(Taint::NoDevice),
        }
    }
}

/// Why a session went "all dirty", once, in the kernel log.
fn note_taint(ivf: &IvfDevice, before: Option<Taint>, t: &VfTracker) {
    if before.is_none() {
        if let Some(why) = t.taint() {
            dev_info!(
                ivf.dev(),
                "dirty tracking: reporting every logged page from now on ({:?})\n",
                why
            );
        }
    }
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
) -> core::result::Result<isize, kernel::sync::MutexGuard<'a, DirtyLog>> {
    let mut log = ivf.dirty_log();
    if !log.active(ivf) {
        return Err(log);
    }
    let start = bindings_now();
    let mut dev = DevLock::take(ivf);
    let Some(s) = session(ivf, &mut log, dev.as_mut()) else {
        drop(dev);
        return Err(log);
    };
    let before = s.tracker.taint();
    let (Some(d), Some(bytes)) = (dev.as_mut(), data) else {
        // An access of another shape, or no device to ask: from now on
        // every logged page is dirty. The core still performs the access.
        s.tracker.give_up(match dev {
            None => Taint::NoDevice,
            Some(_) => Taint::Access(off),
        });
        note_taint(ivf, before, &s.tracker);
        drop(dev);
        return Err(log);
    };
    let mut dma = Dma(d.core);
    for (i, w) in bytes.chunks_exact(4).enumerate() {
        let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        s.tracker
            .rx_write(&mut d.bar, &mut dma, off + 4 * i as u32, v);
    }
    note_taint(ivf, before, &s.tracker);
    drop(dev);
    log.trap_ns += bindings_now().saturating_sub(start);
    Ok(bytes.len() as isize)
}

/// A VF reset through CTRL.RST (page 0): the queues are off; the tracker
/// marks what was posted and starts over.
pub(crate) fn vf_reset(ivf: &IvfDevice) {
    let mut log = ivf.dirty_log();
    let mut dev = DevLock::take(ivf);
    if let Some(s) = session(ivf, &mut log, dev.as_mut()) {
        s.restart(dev.as_mut());
    }
}

fn bindings_now() -> u64 {
    // SAFETY: ktime_get_ns, callable anywhere.
    unsafe { bindings::ivf_now_ns() }
}

/// `log_start`.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices, with its checked
/// interval tree of `nnodes` ranges.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_log_start(
    vdev: *mut vfio_device,
    ranges: *mut bindings::rb_root_cached,
    nnodes: u32,
    page_size: *mut u64,
) -> kernel::ffi::c_int {
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    // SAFETY: `page_size` is the core's in/out value.
    let asked = unsafe { *page_size };
    // SAFETY: `ranges` is the core's tree of `nnodes` nodes.
    match unsafe { start(ivf, ranges, nnodes, asked) } {
        Ok(chosen) => {
            // SAFETY: as above.
            unsafe { *page_size = chosen };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `root` must be the vfio core's range tree of `nnodes` nodes.
unsafe fn start(
    ivf: &IvfDevice,
    root: *mut bindings::rb_root_cached,
    nnodes: u32,
    page_size: u64,
) -> Result<u64> {
    if nnodes == 0 || nnodes as usize > MAX_RANGES {
        return Err(EINVAL);
    }
    let n = nnodes as usize;
    let mut pairs = KVVec::from_elem(0u64, 2 * n, GFP_KERNEL)?;
    // SAFETY: `pairs` holds 2 * nnodes values; `root` is the core's tree.
    let got = unsafe { bindings::ivf_log_ranges(root, pairs.as_mut_ptr(), nnodes) } as usize;
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
    let (chosen, words) = dirty::check(&mut ranges, page_size).map_err(|_| EINVAL)?;
    let bitmap = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
    let slots = KVVec::from_elem(
        Slot::default(),
        VfTracker::slots_needed(ivf.regmap()),
        GFP_KERNEL,
    )?;
    let mut log = ivf.dirty_log();
    if log.active(ivf) {
        // One session at a time (uAPI: no second start before a stop).
        return Err(EBUSY);
    }
    let mut dev = DevLock::take(ivf).ok_or(EIO)?;
    let mut dma = Dma(dev.core);
    let tracker = VfTracker::start(
        ivf.regmap(),
        ranges,
        chosen,
        bitmap,
        slots,
        &mut dev.bar,
        &mut dma,
    )
    .map_err(|_| EINVAL)?;
    drop(dev);
    if let Some((base, count, srrctl, on, head, tail)) = tracker.rx_view(0) {
        dev_dbg!(
            ivf.dev(),
            "dirty tracking: {} ranges, page {:#x}; rx0 ring {:#x} x{} srrctl {:#x} on {} posted {}..{}\n",
            got,
            chosen,
            base,
            count,
            srrctl,
            on,
            head,
            tail
        );
    }
    note_taint(ivf, None, &tracker);
    log.trap_ns = 0;
    log.session = Some(KBox::new(
        Session {
            tracker,
            reset_gen: ivf.reset_gen(),
            open_gen: ivf.open_gen(),
        },
        GFP_KERNEL,
    )?);
    Ok(chosen)
}

/// `log_stop`: ends the session; stopping without one is fine.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_log_stop(vdev: *mut vfio_device) -> kernel::ffi::c_int {
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    ivf.dirty_log().stop();
    0
}

/// `log_read_and_clear`: one window of a report.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices, with the report's
/// bitmap iterator.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_log_read_and_clear(
    vdev: *mut vfio_device,
    iova: kernel::ffi::c_ulong,
    length: kernel::ffi::c_ulong,
    dirty: *mut bindings::iova_bitmap,
) -> kernel::ffi::c_int {
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    let mut log = ivf.dirty_log();
    let mut dev = DevLock::take(ivf);
    let Some(s) = session(ivf, &mut log, dev.as_mut()) else {
        // uAPI: reporting without logging is an error.
        return EINVAL.to_errno();
    };
    let before = s.tracker.taint();
    let mut set = |i: u64, l: u64| {
        // SAFETY: `dirty` is the core's iterator for this window; the
        // tracker clips every span to the window.
        unsafe { bindings::ivf_log_set(dirty, i as usize, l as usize) }
    };
    match dev.as_mut() {
        Some(d) => {
            let mut dma = Dma(d.core);
            s.tracker.sync(&mut d.bar, &mut dma);
        }
        None => s.tracker.give_up(Taint::NoDevice),
    }
    // Setting bits may pin the next part of the user's bitmap (mmap_lock):
    // not under memory_lock, which page faults on BAR mmaps take.
    drop(dev);
    s.tracker.emit(iova as u64, length as u64, &mut set);
    note_taint(ivf, before, &s.tracker);
    0
}

/// The log ops of a device in device-logging mode.
pub(crate) static IVF_LOG_OPS: bindings::vfio_log_ops = bindings::vfio_log_ops {
    log_start: Some(ivf_log_start),
    log_stop: Some(ivf_log_stop),
    log_read_and_clear: Some(ivf_log_read_and_clear),
};

/// sysfs `dirty_tracking` read: whether the device logs DMA itself.
///
/// # Safety
///
/// `pdev` is bound to this driver (the attribute exists only then).
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_dirty_mode_get(pdev: *mut bindings::pci_dev) -> bool {
    // SAFETY: bound, so the driver data is our device.
    let ivf = unsafe { &*IvfDevice::from_pdev(pdev) };
    ivf.device_logging()
}

/// sysfs `dirty_tracking` write, with no user holding the device (the shim
/// checks under dev_set->lock).
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_dirty_mode_set(pdev: *mut bindings::pci_dev, on: bool) {
    // SAFETY: as above.
    let ivf = unsafe { &*IvfDevice::from_pdev(pdev) };
    ivf.set_device_logging(on);
}

/// sysfs `dirty_stats`.
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`]; `out` is the shim's.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_dirty_stats_get(
    pdev: *mut bindings::pci_dev,
    out: *mut bindings::ivf_dirty_stats,
) {
    // SAFETY: as above.
    let ivf = unsafe { &*IvfDevice::from_pdev(pdev) };
    let log = ivf.dirty_log();
    let st = log.session.as_ref().map_or(log.last, |s| s.tracker.stats);
    let logging = log
        .session
        .as_ref()
        .is_some_and(|s| s.open_gen == ivf.open_gen());
    // SAFETY: `out` is the shim's stack variable.
    unsafe {
        *out = bindings::ivf_dirty_stats {
            traps: st.traps,
            descriptors: st.descriptors,
            max_descriptors_per_trap: u64::from(st.max_descriptors_per_trap),
            trap_ns: log.trap_ns,
            reports: st.reports,
            taints: st.taints,
            logging: u64::from(logging),
        };
    }
}

/// The default mode of newly bound devices (module parameter).
pub(crate) fn default_device_logging() -> bool {
    // SAFETY: a pure query of the kernel's configuration.
    let supported = unsafe { bindings::ivf_device_logging_supported() };
    crate::module_parameters::device_dirty_tracking.value() && supported
}
