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

use crate::common::bits::Ctrl;
use crate::common::mbx::Snoop;
use crate::common::regs::RegMap;
use crate::device::IvfDevice;
use crate::dirty;
use crate::epoch::{FollowsDevice, Since};
use crate::ffi::uapi::RegionPos;

/// BAR0 page size of the trapping (the registers' layout unit).
const PAGE: u64 = 4096;

/// Most areas [`mappable_areas`] makes: BAR0 less two trapped pages.
pub(crate) const MAX_AREAS: usize = 3;

/// The per-device PF channel state, under the device's `pf` mutex.
#[derive(Default)]
pub(crate) struct PfState {
    /// The mailbox watcher and its log.
    pub(crate) snoop: Snoop,
    /// An ioeventfd was refused this open (said once).
    pub(crate) ioeventfd_refused: bool,
}

impl FollowsDevice for PfState {
    type Ctx<'c> = ();

    /// A reset wipes the PF's filters for the VF, and with them the log;
    /// a new user starts with an empty one (one user's MAC and VLANs never
    /// travel in the next's stream, even where the core could not reset).
    fn catch_up(&mut self, since: Since, _ctx: ()) {
        self.snoop.reset();
        if since.new_user {
            self.ioeventfd_refused = false;
        }
    }
}

/// Most bytes of one access the snoop follows: the mailbox memory.
const SNOOP_MAX: usize = 64;

/// Whether the access touches BAR0's mailbox page.
fn on_mailbox_page(ivf: &IvfDevice, at: RegionPos) -> bool {
    at.in_bar0() && at.offset / PAGE == u64::from(ivf.regmap().mailbox_page())
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
fn followable(at: RegionPos, count: usize) -> bool {
    count % 4 == 0 && count <= SNOOP_MAX && at.offset % 4 == 0
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

/// `read`: through the core; on the mailbox page, then shown to the snoop.
pub(crate) fn read(ivf: &IvfDevice, buf: UserPtr, count: usize, pos: &mut i64) -> isize {
    let at = RegionPos::of(*pos as u64);
    let n = ivf.core().read(buf, count, pos);
    if n > 0 && at.in_config() {
        crate::guest_cap::after_config_read(ivf, at, buf, n as usize);
        return n;
    }
    // Reads only matter for a reply's first word: a read we cannot follow
    // simply goes unseen (the reply stays pending, nothing is logged).
    if n > 0 && on_mailbox_page(ivf, at) && followable(at, n as usize) {
        let mut data = [0u8; SNOOP_MAX];
        let len = n as usize;
        let mut r = UserSlice::new(buf, len).reader();
        if r.read_slice(&mut data[..len]).is_ok() {
            snoop(ivf, at.offset, &data[..len], false);
        }
    }
    n
}

/// `write`: the RX queue page goes to the dirty tracker (in device-logging
/// mode); the mailbox page is written by the core, then shown to the snoop.
pub(crate) fn write(ivf: &IvfDevice, buf: UserPtr, count: usize, pos: &mut i64) -> isize {
    let at = RegionPos::of(*pos as u64);
    if at.in_config() {
        return config_write(ivf, at, buf, count, pos);
    }
    let mut data = [0u8; SNOOP_MAX];
    let copied = followable(at, count) && {
        let mut r = UserSlice::new(buf, count).reader();
        r.read_slice(&mut data[..count]).is_ok()
    };
    let off = at.offset;
    let map = ivf.regmap();
    let rx_page = u64::from(map.rx_tail_page()) * PAGE;
    let mbx_page = u64::from(map.mailbox_page()) * PAGE;
    let end = off.saturating_add(count as u64);
    let on_mbx_page = at.in_bar0() && off < mbx_page + PAGE && end > mbx_page;
    if at.in_bar0() && ivf.device_logging() && off < rx_page + PAGE && end > rx_page {
        // Only an access wholly inside the page can be followed; any other
        // that touches it taints the tracker (and the core performs it).
        let inside = off >= rx_page && end <= rx_page + PAGE;
        // `then`, not `then_some`: the slice exists only when it was copied
        // (count <= SNOOP_MAX); `then_some` would slice first and panic.
        let seen = (copied && inside).then(|| &data[..count]);
        let n = match dirty::rx_page_write(ivf, off as u32, seen) {
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
        };
        // A write that also spans the mailbox page (the pages are
        // neighbours on ixgbe) cannot be followed word by word there.
        if on_mbx_page && n > 0 {
            unfollowed_mailbox_write(ivf, off, count);
        }
        return n;
    }
    let n = ivf.core().write(buf, count, pos);
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

/// A config-space write: the guest capability's bytes are the driver's and
/// never reach the device (the write counts as done); the rest is the core's.
fn config_write(
    ivf: &IvfDevice,
    at: RegionPos,
    buf: UserPtr,
    count: usize,
    pos: &mut i64,
) -> isize {
    let Some(parts) = crate::guest_cap::config_write_parts(ivf, at, count) else {
        return ivf.core().write(buf, count, pos);
    };
    let start = *pos;
    for (from, len) in parts {
        if len == 0 {
            continue;
        }
        let mut p = start + from as i64;
        let part = UserPtr::from_addr(buf.as_mut_ptr() as usize + from);
        let n = ivf.core().write(part, len, &mut p);
        if n < 0 {
            return n;
        }
    }
    *pos = start + count as i64;
    count as isize
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

/// A write of CTRL.RST resets the VF's queues: the dirty tracker must know
/// their buffers are no longer the device's.
fn reset_watch(ivf: &IvfDevice, off: u64, bytes: &[u8]) {
    let ctrl = u64::from(ivf.regmap().ctrl);
    for (i, w) in bytes.chunks_exact(4).enumerate() {
        let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        if off + 4 * i as u64 == ctrl && Ctrl(v).rst() {
            dirty::vf_reset(ivf);
        }
    }
}

/// A `VFIO_DEVICE_IOEVENTFD`: refused (see ffi/ops.rs `ivf_ioctl`), once
/// in the log per open.
pub(crate) fn refuse_ioeventfd(ivf: &IvfDevice) -> Error {
    let mut pf = ivf.pf_state();
    if !pf.ioeventfd_refused {
        pf.ioeventfd_refused = true;
        dev_info!(
            ivf.dev(),
            "VFIO_DEVICE_IOEVENTFD refused: the device's registers are written only through the driver's traps\n"
        );
    }
    EPERM
}

/// Whether an mmap of `len` bytes at `at` may be made: never over a
/// trapped page of BAR0.
pub(crate) fn mmap_allowed(ivf: &IvfDevice, at: RegionPos, len: u64) -> bool {
    !(at.in_bar0() && overlaps_trap(ivf, at.offset / PAGE, len.div_ceil(PAGE)))
}

/// The mappable areas of a BAR0 of `size` bytes, as (offset, size): BAR0
/// less the trapped pages, for the sparse-mmap capability.
pub(crate) fn mappable_areas(ivf: &IvfDevice, size: u64) -> ([(u64, u64); MAX_AREAS], usize) {
    let mut areas = [(0u64, 0u64); MAX_AREAS];
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
    (areas, nr)
}
