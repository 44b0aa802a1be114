// SPDX-License-Identifier: GPL-2.0

//! The trapped BAR0 pages. Page 0 holds the mailbox in both families, so it
//! is left out of the sparse mmap and every access to it comes through
//! `read`/`write` here. Each access is performed by vfio-pci-core exactly as
//! for any other user (same width, same read-to-clear effects: those bits
//! stay the guest's), and then shown to the mailbox [`Snoop`], which keeps
//! the log of the requests the PF accepted (Documentation/pf-channel.rst).
//!
//! In device-logging mode the RX queue page (igb page 2, ixgbe page 1) is
//! trapped too: its writes go to the dirty tracker (dirty.rs), which reads
//! what a tail write posts before the device sees it.
//!
//! The snoop sees the bytes the user passed or received; a user that
//! rewrites its own buffer between our copy and the core's can desync its
//! own log, and harms only its own VM: the PF still judges every replayed
//! request.

use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::sync::{Mutex, MutexGuard};

use crate::common::bytes::copy_into;
use crate::common::mbx::Snoop;
use crate::common::regs::RegMap;
use crate::dirty;
use crate::vfio::bindings;
use crate::vfio_dev::IvfDevice;

/// BAR0 page size of the trapping (the registers' layout unit).
const PAGE: u64 = 4096;
/// A region's index is the fd offset's top bits (`VFIO_PCI_OFFSET_SHIFT`).
const OFFSET_SHIFT: u32 = bindings::VFIO_PCI_OFFSET_SHIFT;
const BAR0: u32 = bindings::VFIO_PCI_BAR0_REGION_INDEX;

/// The per-device PF channel state, under the device's `pf` mutex.
#[derive(Default)]
pub(crate) struct PfState {
    /// The mailbox watcher and its log.
    pub(crate) snoop: Snoop,
    /// The reset generation the log belongs to.
    pub(crate) gen: u64,
}

/// Locks the PF state, first forgetting a log older than the last reset:
/// a reset wipes the PF's filters for the VF, and with them the log.
pub(crate) fn lock_pf<'a>(
    pf: &'a Mutex<PfState>,
    reset_gen: &AtomicU64,
) -> MutexGuard<'a, PfState> {
    let mut g = pf.lock();
    let now = reset_gen.load(Ordering::Acquire);
    if g.gen != now {
        g.snoop.reset();
        g.gen = now;
    }
    g
}

/// Where an access at `pos` lands: (region index, offset in it).
fn split(pos: i64) -> (u32, u64) {
    let pos = pos as u64;
    (
        (pos >> OFFSET_SHIFT) as u32,
        pos & ((1 << OFFSET_SHIFT) - 1),
    )
}

/// Most bytes of one access the snoop follows: the mailbox memory.
const SNOOP_MAX: usize = 64;

/// Whether the access touches BAR0's mailbox page.
fn on_mailbox_page(ivf: &IvfDevice, pos: i64) -> bool {
    let (index, off) = split(pos);
    index == BAR0 && off / PAGE == u64::from(ivf.regmap().mailbox_page())
}

/// The BAR0 pages kept out of the mmap: the mailbox page, and the RX queue
/// page in device-logging mode.
fn trapped_pages(ivf: &IvfDevice) -> [Option<u64>; 2] {
    let map = ivf.regmap();
    let rx = ivf
        .device_logging()
        .then_some(u64::from(map.rx_tail_page()));
    [Some(u64::from(map.mailbox_page())), rx]
}

/// Whether any trapped page lies in pages `first..first + count` of BAR0.
fn overlaps_trap(ivf: &IvfDevice, first: u64, count: u64) -> bool {
    trapped_pages(ivf)
        .iter()
        .flatten()
        .any(|&p| p >= first && p - first < count)
}

/// Whether the snoop can follow an access of `count` bytes at `pos` word by
/// word (what VF drivers do); any other access taints it.
fn followable(pos: i64, count: usize) -> bool {
    count % 4 == 0 && count <= SNOOP_MAX && split(pos).1 % 4 == 0
}

/// Shows `bytes` (what was read or written at `off`) to the snoop, a
/// 32-bit word at a time, as the VF drivers access the mailbox.
fn snoop(ivf: &IvfDevice, off: u64, bytes: &[u8], write: bool) {
    let map: &RegMap = ivf.regmap();
    let mut pf = ivf.pf_state();
    for (i, w) in bytes.chunks_exact(4).enumerate() {
        let at = off as u32 + 4 * i as u32;
        let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        if write {
            pf.snoop.on_write(map, at, v);
        } else {
            pf.snoop.on_read(map, ivf.family(), at, v);
        }
    }
}

/// `read`: page 0 of BAR0 through the core, then shown to the snoop.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
pub(crate) unsafe extern "C" fn ivf_read(
    vdev: *mut bindings::vfio_device,
    buf: *mut u8,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: `ppos` is the core's position for this call.
    let pos = unsafe { *ppos };
    // SAFETY: the vfio core's own read, with its own arguments.
    let n = unsafe { bindings::vfio_pci_core_read(vdev, buf, count, ppos) };
    // Reads only matter for a reply's first word: a read we cannot follow
    // simply goes unseen (the reply stays pending, nothing is logged).
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    if n > 0 && on_mailbox_page(ivf, pos) && followable(pos, n as usize) {
        let mut data = [0u8; SNOOP_MAX];
        let len = n as usize;
        let mut r = UserSlice::new(UserPtr::from_ptr(buf.cast()), len).reader();
        if r.read_slice(&mut data[..len]).is_ok() {
            snoop(ivf, split(pos).1, &data[..len], false);
        }
    }
    n
}

/// `write`: the RX queue page goes to the dirty tracker (in device-logging
/// mode); the mailbox page is written by the core, then shown to the snoop.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
pub(crate) unsafe extern "C" fn ivf_write(
    vdev: *mut bindings::vfio_device,
    buf: *const u8,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: `ppos` is the core's position for this call.
    let pos = unsafe { *ppos };
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    let mut data = [0u8; SNOOP_MAX];
    let copied = followable(pos, count) && {
        let mut r = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
        r.read_slice(&mut data[..count]).is_ok()
    };
    let (index, off) = split(pos);
    let map = ivf.regmap();
    let rx_page = u64::from(map.rx_tail_page()) * PAGE;
    let mbx_page = u64::from(map.mailbox_page()) * PAGE;
    let end = off.saturating_add(count as u64);
    let on_mbx_page = index == BAR0 && off < mbx_page + PAGE && end > mbx_page;
    if index == BAR0 && ivf.device_logging() && off < rx_page + PAGE && end > rx_page {
        // Only an access wholly inside the page can be followed; any other
        // that touches it taints the tracker (and the core performs it).
        let inside = off >= rx_page && end <= rx_page + PAGE;
        // `then`, not `then_some`: the slice exists only when it was copied
        // (count <= SNOOP_MAX); `then_some` would slice first and panic.
        let seen = (copied && inside).then(|| &data[..count]);
        let n = match dirty::rx_page_write(ivf, off as u32, seen) {
            Ok(n) => {
                // SAFETY: as above; the core advances it the same way.
                unsafe { *ppos += n as i64 };
                n
            }
            // Not the tracker's: the core's write, under the tracker's lock.
            Err(guard) => {
                // SAFETY: the vfio core's own write, with its own arguments.
                let n = unsafe { bindings::vfio_pci_core_write(vdev, buf, count, ppos) };
                drop(guard);
                n
            }
        };
        // A write that also spans the mailbox page (the pages are
        // neighbours on ixgbe) cannot be followed word by word there.
        if on_mbx_page && n > 0 {
            unfollowed_mailbox_write(ivf, off, count);
        }
        return n;
    }
    // SAFETY: the vfio core's own write, with its own arguments.
    let n = unsafe { bindings::vfio_pci_core_write(vdev, buf, count, ppos) };
    if on_mbx_page && n > 0 {
        if copied && n == count as isize {
            snoop(ivf, off, &data[..count], true);
            reset_watch(ivf, off, &data[..count]);
        } else {
            unfollowed_mailbox_write(ivf, off, count);
        }
    }
    n
}

/// A write on the mailbox page that the snoop cannot follow: it may have
/// changed mailbox memory, or reset the VF.
fn unfollowed_mailbox_write(ivf: &IvfDevice, off: u64, count: usize) {
    ivf.pf_state().snoop.taint();
    let ctrl = u64::from(ivf.regmap().ctrl);
    if off <= ctrl && ctrl < off.saturating_add(count as u64) {
        dirty::vf_reset(ivf);
    }
}

/// CTRL.RST (bit 26, both families) resets the VF's queues: the dirty
/// tracker must know their buffers are no longer the device's.
const CTRL_RST: u32 = 1 << 26;

fn reset_watch(ivf: &IvfDevice, off: u64, bytes: &[u8]) {
    let ctrl = u64::from(ivf.regmap().ctrl);
    for (i, w) in bytes.chunks_exact(4).enumerate() {
        let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        if off + 4 * i as u64 == ctrl && v & CTRL_RST != 0 {
            dirty::vf_reset(ivf);
        }
    }
}

/// `ioctl`: vfio-pci-core's, except that an ioeventfd may not write a
/// trapped page: the core would write the register itself, past the
/// mailbox snoop and the dirty tracker (an RDT posted unseen).
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
pub(crate) unsafe extern "C" fn ivf_ioctl(
    vdev: *mut bindings::vfio_device,
    cmd: kernel::ffi::c_uint,
    arg: kernel::ffi::c_ulong,
) -> kernel::ffi::c_long {
    if cmd == bindings::ivf_uapi_IVF_VFIO_DEVICE_IOEVENTFD {
        // SAFETY: vfio calls this for our device.
        let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
        if let Err(e) = check_ioeventfd(ivf, arg) {
            return e.to_errno() as kernel::ffi::c_long;
        }
    }
    // SAFETY: the vfio core's own ioctl, with its own arguments.
    unsafe { bindings::vfio_pci_core_ioctl(vdev, cmd, arg) }
}

/// Refuses (EPERM) a `VFIO_DEVICE_IOEVENTFD` whose write lands on a trapped
/// page; anything else, malformed included, is the core's to judge.
fn check_ioeventfd(ivf: &IvfDevice, arg: kernel::ffi::c_ulong) -> Result {
    // struct vfio_device_ioeventfd: argsz, flags, offset, data, fd.
    let mut raw = [0u8; 16];
    let mut r = UserSlice::new(UserPtr::from_addr(arg), raw.len()).reader();
    if r.read_slice(&mut raw).is_err() {
        return Ok(());
    }
    let flags = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
    let mut offset = [0u8; 8];
    copy_into(&mut offset, &raw[8..16]);
    let (index, off) = split(u64::from_le_bytes(offset) as i64);
    let size: u64 = match flags & bindings::VFIO_DEVICE_IOEVENTFD_SIZE_MASK {
        bindings::VFIO_DEVICE_IOEVENTFD_8 => 1,
        bindings::VFIO_DEVICE_IOEVENTFD_16 => 2,
        bindings::VFIO_DEVICE_IOEVENTFD_32 => 4,
        bindings::VFIO_DEVICE_IOEVENTFD_64 => 8,
        _ => return Ok(()),
    };
    let (first, last) = (off / PAGE, off.saturating_add(size - 1) / PAGE);
    if index == BAR0 && overlaps_trap(ivf, first, last - first + 1) {
        dev_info!(
            ivf.dev(),
            "ioeventfd at BAR0 {:#x} refused: page {} is trapped (mailbox or RX queues)\n",
            off,
            first
        );
        return Err(EPERM);
    }
    Ok(())
}

/// `mmap`: BAR0's trapped page is never mapped; the rest is the core's.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
pub(crate) unsafe extern "C" fn ivf_mmap(
    vdev: *mut bindings::vfio_device,
    vma: *mut bindings::vm_area_struct,
) -> kernel::ffi::c_int {
    // SAFETY: the core hands us a live VMA for this call; its start and end
    // are the active members of their unions.
    let (pgoff, start, end) = unsafe {
        let span = &(*vma).__bindgen_anon_1.__bindgen_anon_1;
        ((*vma).vm_pgoff as u64, span.vm_start, span.vm_end)
    };
    let index = (pgoff >> (OFFSET_SHIFT - 12)) as u32;
    let page = pgoff & ((1 << (OFFSET_SHIFT - 12)) - 1);
    let pages = ((end - start) as u64).div_ceil(PAGE);
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    if index == BAR0 && overlaps_trap(ivf, page, pages) {
        // The sparse-mmap capability says which parts map: not this one.
        return EINVAL.to_errno();
    }
    // SAFETY: the core's own mmap for everything else.
    unsafe { bindings::vfio_pci_core_mmap(vdev, vma) }
}

/// `get_region_info_caps`: the core's answer, plus for BAR0 a sparse-mmap
/// capability that leaves out the trapped pages.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
pub(crate) unsafe extern "C" fn ivf_get_region_info_caps(
    vdev: *mut bindings::vfio_device,
    info: *mut bindings::vfio_region_info,
    caps: *mut bindings::vfio_info_cap,
) -> kernel::ffi::c_int {
    // SAFETY: the core's own answer first.
    let ret = unsafe { bindings::vfio_pci_ioctl_get_region_info(vdev, info, caps) };
    // SAFETY: `info` is the core's, filled in above.
    let (index, flags, size) = unsafe { ((*info).index, (*info).flags, (*info).size) };
    if ret != 0 || index != BAR0 || flags & bindings::VFIO_REGION_INFO_FLAG_MMAP == 0 {
        return ret;
    }
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    // The mappable areas: BAR0 less the trapped pages (at most 3 areas).
    let mut areas = [(0u64, 0u64); 3];
    let mut nr = 0;
    let mut from = 0u64;
    // Two entries: ordered by hand (see dirty::sort_by_iova for why not sort).
    let mut traps = trapped_pages(ivf);
    if traps[0] > traps[1] {
        traps.swap(0, 1);
    }
    for p in Iterator::chain(traps.iter().flatten().map(|p| p * PAGE), [size]) {
        if p > from && nr < areas.len() {
            areas[nr] = (from, p.min(size) - from);
            nr += 1;
        }
        from = from.max(p.saturating_add(PAGE));
        if from >= size {
            break;
        }
    }
    if nr == 0 {
        // Nothing left to map.
        // SAFETY: as above.
        unsafe { (*info).flags &= !bindings::VFIO_REGION_INFO_FLAG_MMAP };
        return 0;
    }
    // struct vfio_region_info_cap_sparse_mmap: header, nr_areas, then
    // (offset, size) pairs.
    let mut cap = [0u8; 16 + 16 * 3];
    let id = bindings::VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16;
    copy_into(&mut cap[0..2], &id.to_le_bytes());
    copy_into(&mut cap[2..4], &1u16.to_le_bytes()); // version
    copy_into(&mut cap[8..12], &(nr as u32).to_le_bytes());
    for (i, (o, l)) in areas.iter().take(nr).enumerate() {
        copy_into(&mut cap[16 + 16 * i..24 + 16 * i], &o.to_le_bytes());
        copy_into(&mut cap[24 + 16 * i..32 + 16 * i], &l.to_le_bytes());
    }
    let len = 16 + 16 * nr;
    // SAFETY: `cap` holds a complete capability of `len` bytes; the core
    // copies it.
    unsafe { bindings::vfio_info_add_capability(caps, cap.as_mut_ptr().cast(), len) }
}
