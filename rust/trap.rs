// SPDX-License-Identifier: GPL-2.0

//! The trapped BAR0 page: page 0 holds the mailbox in both families, so it
//! is left out of the sparse mmap and every access to it comes through
//! `read`/`write` here. Each access is performed by vfio-pci-core exactly as
//! for any other user (same width, same read-to-clear effects: those bits
//! stay the guest's), and then shown to the mailbox [`Snoop`], which keeps
//! the log of the requests the PF accepted (Documentation/pf-channel.rst).
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
use crate::vfio::bindings;
use crate::vfio_dev::IvfDevice;

/// The trapped page of BAR0 (both families keep the mailbox in page 0).
pub(crate) const TRAPPED_PAGE_END: u64 = 4096;
/// `VFIO_PCI_OFFSET_SHIFT`: a region's index is the fd offset's top bits.
const OFFSET_SHIFT: u32 = 40;
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

/// Whether the access touches BAR0's trapped page.
fn trapped(pos: i64) -> bool {
    let (index, off) = split(pos);
    index == BAR0 && off < TRAPPED_PAGE_END
}

/// Whether the snoop can follow an access of `count` bytes at `pos` word by
/// word (what VF drivers do); any other access taints it.
fn followable(pos: i64, count: usize) -> bool {
    count.is_multiple_of(4) && count <= SNOOP_MAX && split(pos).1.is_multiple_of(4)
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
    if n > 0 && trapped(pos) && followable(pos, n as usize) {
        let mut data = [0u8; SNOOP_MAX];
        let len = n as usize;
        let mut r = UserSlice::new(UserPtr::from_ptr(buf.cast()), len).reader();
        if r.read_slice(&mut data[..len]).is_ok() {
            // SAFETY: vfio calls this for our device.
            let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
            snoop(ivf, split(pos).1, &data[..len], false);
        }
    }
    n
}

/// `write`: page 0 of BAR0 shown to the snoop, then written by the core.
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
    let mut data = [0u8; SNOOP_MAX];
    let on_page = trapped(pos);
    let seen = on_page && followable(pos, count) && {
        let mut r = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
        r.read_slice(&mut data[..count]).is_ok()
    };
    // SAFETY: the vfio core's own write, with its own arguments.
    let n = unsafe { bindings::vfio_pci_core_write(vdev, buf, count, ppos) };
    if on_page && n > 0 {
        // SAFETY: vfio calls this for our device.
        let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
        if seen && n == count as isize {
            snoop(ivf, split(pos).1, &data[..count], true);
        } else {
            // A write we cannot follow may have changed mailbox memory.
            ivf.pf_state().snoop.taint();
        }
    }
    n
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
    // SAFETY: the core hands us a live VMA for this call.
    let pgoff = unsafe { (*vma).vm_pgoff } as u64;
    let index = (pgoff >> (OFFSET_SHIFT - 12)) as u32;
    let page = pgoff & ((1 << (OFFSET_SHIFT - 12)) - 1);
    if index == BAR0 && page * 4096 < TRAPPED_PAGE_END {
        // The sparse-mmap capability says which parts map: not this one.
        return EINVAL.to_errno();
    }
    // SAFETY: the core's own mmap for everything else.
    unsafe { bindings::vfio_pci_core_mmap(vdev, vma) }
}

/// `get_region_info_caps`: the core's answer, plus for BAR0 a sparse-mmap
/// capability that leaves out the trapped page.
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
    if size <= TRAPPED_PAGE_END {
        // Nothing left to map.
        // SAFETY: as above.
        unsafe { (*info).flags &= !bindings::VFIO_REGION_INFO_FLAG_MMAP };
        return 0;
    }
    // struct vfio_region_info_cap_sparse_mmap with one area.
    let mut cap = [0u8; 32];
    let id = bindings::VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16;
    copy_into(&mut cap[0..2], &id.to_le_bytes());
    copy_into(&mut cap[2..4], &1u16.to_le_bytes()); // version
    copy_into(&mut cap[8..12], &1u32.to_le_bytes()); // nr_areas
    copy_into(&mut cap[16..24], &TRAPPED_PAGE_END.to_le_bytes());
    copy_into(&mut cap[24..32], &(size - TRAPPED_PAGE_END).to_le_bytes());
    // SAFETY: `cap` is a complete capability of the size we pass; the core
    // copies it.
    unsafe { bindings::vfio_info_add_capability(caps, cap.as_mut_ptr().cast(), cap.len()) }
}
