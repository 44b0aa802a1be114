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
//! what a tail write posts before the device sees it. Which part an access
//! goes to is `IvfDevice::read`/`write`'s choice (device.rs).
//!
//! The snoop sees only the device's words: a followable access to the
//! mailbox page is performed here, from or into a kernel copy, with the
//! VF's mailbox lock held, so neither a thread that rewrites the user's
//! buffer nor a concurrent access (another thread, the replay, the forget)
//! can change what the snoop logs as the PF's verdict. Any other access to
//! the page goes through the core under the same lock and taints the snoop.

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::common::bits::Ctrl;
use crate::common::hal::RegIo;
use crate::common::mbx::Snoop;
use crate::common::regs::RegMap;
use crate::device::IvfDevice;
use crate::epoch::{FollowsDevice, Since};
use crate::ffi::uapi::RegionPos;
use crate::log_limit::vf_line;
use crate::switches::Switch;

/// BAR0 page size of the trapping (the registers' layout unit).
const PAGE: u64 = 4096;

/// Most areas [`mappable_areas`] makes: BAR0 less two trapped pages.
pub(crate) const MAX_AREAS: usize = 3;

/// The per-device PF channel state, under the device's `pf` mutex.
#[derive(Default)]
pub(crate) struct PfChannel {
    /// The mailbox watcher and its log.
    pub(crate) snoop: Snoop,
    /// An ioeventfd was refused this open (said once).
    pub(crate) ioeventfd_refused: bool,
    /// A save found a mailbox request in flight this open (said once).
    pub(crate) in_flight_said: bool,
}

impl FollowsDevice for PfChannel {
    type Ctx<'c> = ();

    /// A reset wipes the PF's filters for the VF, and with them the log;
    /// a new user starts with an empty one (one user's MAC and VLANs never
    /// travel in the next's stream, even where the core could not reset).
    fn catch_up(&mut self, since: Since, _ctx: ()) {
        self.snoop.reset();
        if since.new_user {
            self.ioeventfd_refused = false;
            self.in_flight_said = false;
        }
    }
}

/// Most bytes of one trapped access the driver follows word by word (the
/// snoop here, the RX tail tracker in dirty.rs): the mailbox memory.
pub(crate) const FOLLOW_MAX: usize = 64;

/// Whether a trapped access of `count` bytes at BAR offset `offset` is one
/// the driver follows word by word (what VF drivers do: aligned 32-bit
/// words, at most [`FOLLOW_MAX`] bytes); any other access of a trapped page
/// taints what follows it.
pub(crate) fn followable_words(offset: u64, count: usize) -> bool {
    count % 4 == 0 && count <= FOLLOW_MAX && offset % 4 == 0
}

/// The BAR0 pages kept out of the mmap: the mailbox page, and the RX queue
/// page in device-logging mode.
fn trapped_pages(ivf: &IvfDevice) -> [Option<u64>; 2] {
    let map = ivf.regmap();
    let rx = ivf
        .switch(Switch::DirtyTracking)
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

/// Whether the snoop can follow an access of `count` bytes at `at`.
fn followable(at: RegionPos, count: usize) -> bool {
    followable_words(at.offset, count)
}

/// Shows `bytes` (what was read or written at `off`) to the snoop, a
/// 32-bit word at a time, as the VF drivers access the mailbox.
fn snoop(ivf: &IvfDevice, off: u64, bytes: &[u8], write: bool) {
    let map: &RegMap = ivf.regmap();
    let mut pf = ivf.pf_channel();
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

/// Where an access at `at` of `count` bytes lies against the mailbox page.
pub(crate) enum MailboxSpan {
    /// Not on it.
    Outside,
    /// Wholly on it.
    Inside,
    /// Partly: the first `n` bytes lie on one side of a page edge.
    Straddles(usize),
}

/// Where an access of `count` bytes at `at` lies against the mailbox page.
pub(crate) fn mailbox_span(ivf: &IvfDevice, at: RegionPos, count: usize) -> MailboxSpan {
    if !at.in_bar0() || count == 0 {
        return MailboxSpan::Outside;
    }
    let page = u64::from(ivf.regmap().mailbox_page()) * PAGE;
    let (off, end) = (at.offset, at.offset.saturating_add(count as u64));
    if end <= page || off >= page + PAGE {
        MailboxSpan::Outside
    } else if off >= page && end <= page + PAGE {
        MailboxSpan::Inside
    } else {
        // Cut at the first page edge inside the access.
        let edge = if off < page { page } else { page + PAGE };
        MailboxSpan::Straddles((edge - off) as usize)
    }
}

/// Runs `one` on each side of the mailbox page's edge, as two accesses
/// (the core splits an access into register-sized ones anyway); returns
/// the bytes done, or the first error.
pub(crate) fn split_at_edge(
    buf: UserPtr,
    count: usize,
    pos: &mut i64,
    first: usize,
    mut one: impl FnMut(UserPtr, usize, &mut i64) -> isize,
) -> isize {
    let n = one(buf, first, pos);
    if n != first as isize {
        return n;
    }
    let rest = UserPtr::from_addr(buf.as_mut_ptr() as usize + first);
    match one(rest, count - first, pos) {
        m if m < 0 => m,
        m => n + m,
    }
}

/// Reads `out.len()` bytes at BAR0 offset `off` (inside the mailbox page,
/// word-aligned) from the device, a 32-bit word at a time as VF drivers
/// access the mailbox. `None` when BAR0 cannot be reached now.
fn device_read(ivf: &IvfDevice, off: u64, out: &mut [u8]) -> Option<()> {
    let mut bar = ivf.core().bar0().ok()?;
    for (i, w) in out.chunks_exact_mut(4).enumerate() {
        w.copy_from_slice(&bar.read32(off as u32 + 4 * i as u32).to_le_bytes());
    }
    Some(())
}

/// Writes `bytes` at BAR0 offset `off` (inside the mailbox page,
/// word-aligned), a 32-bit word at a time. `None` when BAR0 cannot be
/// reached now (nothing was written).
fn device_write(ivf: &IvfDevice, off: u64, bytes: &[u8]) -> Option<()> {
    let mut bar = ivf.core().bar0().ok()?;
    for (i, w) in bytes.chunks_exact(4).enumerate() {
        let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        bar.write32(off as u32 + 4 * i as u32, v);
    }
    Some(())
}

/// A read wholly on the mailbox page: from the device into a kernel copy
/// that the snoop sees before the user does.
pub(crate) fn mailbox_read(
    ivf: &IvfDevice,
    at: RegionPos,
    buf: UserPtr,
    count: usize,
    pos: &mut i64,
) -> isize {
    let mut data = [0u8; FOLLOW_MAX];
    let lock = ivf.mailbox();
    // Reads only matter for a reply's first word: a read we cannot follow
    // simply goes unseen (the reply stays pending, nothing is logged).
    if !followable(at, count) || device_read(ivf, at.offset, &mut data[..count]).is_none() {
        return ivf.core().read(buf, count, pos);
    }
    snoop(ivf, at.offset, &data[..count], false);
    drop(lock);
    // The device's words are read (and any read-to-clear bit cleared):
    // they are the user's now, whether or not its buffer takes them.
    let mut w = UserSlice::new(buf, count).writer();
    if let Err(e) = w.write_slice(&data[..count]) {
        return e.to_errno() as isize;
    }
    *pos += count as i64;
    count as isize
}

/// A write wholly on the mailbox page: from a kernel copy, which the snoop
/// sees. The caller tells the tracker when it reset the VF.
pub(crate) fn mailbox_write(
    ivf: &IvfDevice,
    at: RegionPos,
    buf: UserPtr,
    count: usize,
    pos: &mut i64,
) -> Written {
    let mut data = [0u8; FOLLOW_MAX];
    let copied = followable(at, count) && {
        let mut r = UserSlice::new(buf, count).reader();
        r.read_slice(&mut data[..count]).is_ok()
    };
    let _mailbox = ivf.mailbox();
    if copied && device_write(ivf, at.offset, &data[..count]).is_some() {
        snoop(ivf, at.offset, &data[..count], true);
        *pos += count as i64;
        return Written {
            n: count as isize,
            vf_reset: rst_written(ivf, at.offset, &data[..count]),
        };
    }
    let n = ivf.core().write(buf, count, pos);
    if n > 0 {
        ivf.pf_channel().snoop.taint();
    }
    Written {
        n,
        vf_reset: n > 0 && covers_ctrl(ivf, at.offset, count),
    }
}

/// What a write on the mailbox page did.
pub(crate) struct Written {
    /// Bytes written, or a negative errno.
    pub(crate) n: isize,
    /// It may have reset the VF (CTRL.RST, or an unfollowed write over
    /// CTRL): the tracker must know its buffers are no longer the device's.
    pub(crate) vf_reset: bool,
}

/// Whether a write of `count` bytes at `off` covers CTRL.
fn covers_ctrl(ivf: &IvfDevice, off: u64, count: usize) -> bool {
    let ctrl = u64::from(ivf.regmap().ctrl);
    off <= ctrl && ctrl < off.saturating_add(count as u64)
}

/// Whether `bytes` written at `off` set CTRL.RST.
fn rst_written(ivf: &IvfDevice, off: u64, bytes: &[u8]) -> bool {
    let ctrl = u64::from(ivf.regmap().ctrl);
    bytes.chunks_exact(4).enumerate().any(|(i, w)| {
        off + 4 * i as u64 == ctrl && Ctrl(u32::from_le_bytes([w[0], w[1], w[2], w[3]])).rst()
    })
}

/// A `VFIO_DEVICE_IOEVENTFD`: refused (see ffi/ops.rs `ivf_ioctl`), once
/// in the log per open.
pub(crate) fn refuse_ioeventfd(ivf: &IvfDevice) -> Error {
    let mut pf = ivf.pf_channel();
    if !pf.ioeventfd_refused {
        pf.ioeventfd_refused = true;
        vf_line!(ivf, dev_info,
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
