// SPDX-License-Identifier: GPL-2.0

//! The guest-visible migration capability (Documentation/guest-capability.rst):
//! a Vendor Specific capability that the driver adds to the VF's config
//! space as the VFIO user reads it. Reads of its bytes, and of the next
//! pointer that links it, are answered here after the core's read; writes
//! to its bytes are dropped before the core's write. The device never sees
//! either. Layout and placement are the shared crate's (`common::guest_cap`).

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::common::guest_cap::{self, offers, CapView, PlaceError, Placement, LEN};
use crate::device::IvfDevice;
use crate::epoch::{FollowsDevice, Since};
use crate::ffi::uapi::RegionPos;
use crate::ffi::vfio_core::random_u32;
use crate::log_limit::vf_line;
use crate::switches::Switch;

/// The capability's state, under the device's `cap` mutex.
pub(crate) struct GuestCap {
    /// Where it sits, for the current open (none when switched off, or
    /// when no place was found).
    placement: Option<Placement>,
    /// The migration generation: random at bind, new at every resume.
    generation: u32,
    /// What the last resume restored (`guest_cap::restored` bits).
    restored: u8,
}

impl GuestCap {
    /// The state at bind: a random generation, so that two VFs, or one VF
    /// bound twice, are unlikely to show the same.
    pub(crate) fn new() -> Self {
        GuestCap {
            placement: None,
            generation: random_u32(),
            restored: 0,
        }
    }

    /// The generation shown.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    /// Where the capability sits, if shown.
    pub(crate) fn placement(&self) -> Option<Placement> {
        self.placement
    }
}

impl FollowsDevice for GuestCap {
    type Ctx<'c> = ();

    /// A reset leaves no restored state behind (the PF forgot the filters,
    /// the registers are the reset's) and keeps the generation: the guest
    /// did not move. A new user also gets a new place (decided at its open)
    /// and a new generation: nothing of one user reaches the next.
    fn catch_up(&mut self, since: Since, _ctx: ()) {
        self.restored = 0;
        if since.new_user {
            self.placement = None;
            self.generation = fresh(self.generation);
        }
    }
}

fn view(ivf: &IvfDevice, cap: &GuestCap) -> [u8; LEN] {
    let mut o = offers::MIGRATION;
    if ivf.switch(Switch::DirtyTracking) {
        o |= offers::DEVICE_DIRTY_TRACKING;
    }
    guest_cap::render(&CapView {
        offers: o,
        restored: cap.restored,
        generation: cap.generation,
    })
}

/// At open (the core enabled the device and built its config view): finds
/// the capability's place, if it is switched on.
pub(crate) fn opened(ivf: &IvfDevice) {
    let mut cap = ivf.guest_cap();
    cap.placement = None;
    if !ivf.switch(Switch::GuestCapability) {
        return;
    }
    let placed = ivf
        .core()
        .config_snapshot()
        .map_err(|e| {
            vf_line!(
                ivf,
                dev_info,
                "guest capability: config space unreadable ({}): not shown\n",
                e.to_errno()
            );
        })
        .and_then(|s| {
            guest_cap::place(&s.user, &s.assigned, &s.hw).map_err(|e| {
                let why = match e {
                    PlaceError::NoList => "no capability list",
                    PlaceError::BadList(_) => "a capability list that does not end",
                    PlaceError::NoRoom => "no free dword-aligned gap in standard config space",
                };
                vf_line!(ivf, dev_info, "guest capability: {}: not shown\n", why);
            })
        });
    if let Ok(p) = placed {
        dev_dbg!(
            ivf.dev(),
            "guest capability at {:#x}, linked from {:#x}\n",
            p.at,
            p.link
        );
        cap.placement = Some(p);
    }
}

/// A resume from a stream completed: the guest is on a new device. A new
/// generation, different from the last, and what was restored.
pub(crate) fn resumed(ivf: &IvfDevice, restored: u8) {
    let mut cap = ivf.guest_cap();
    cap.generation = fresh(cap.generation);
    cap.restored = restored;
}

/// A random generation other than `old`.
fn fresh(old: u32) -> u32 {
    let mut g = random_u32();
    while g == old {
        g = random_u32();
    }
    g
}

/// After the core read `n` bytes of config space at `at` into the user's
/// `buf`: our bytes in that span are replaced by the capability's.
fn after_config_read(ivf: &IvfDevice, at: RegionPos, buf: UserPtr, n: usize) {
    let cap = ivf.guest_cap();
    let Some(p) = cap.placement else {
        return;
    };
    let bytes = view(ivf, &cap);
    drop(cap);
    let start = at.offset as usize;
    for i in 0..n {
        if let Some(b) = p.byte_at(&bytes, start + i) {
            let mut w =
                UserSlice::new(UserPtr::from_addr(buf.as_mut_ptr() as usize + i), 1).writer();
            // A user that unmapped its own buffer meanwhile reads garbage.
            let _ = w.write_slice(&[b]);
        }
    }
}

/// The parts of a config write of `count` bytes at `at` that reach the core:
/// everything but the capability's bytes. `None`: no capability bytes in it.
fn config_write_parts(ivf: &IvfDevice, at: RegionPos, count: usize) -> Option<[(usize, usize); 2]> {
    let p = ivf.guest_cap().placement?;
    let (start, end) = (at.offset as usize, at.offset as usize + count);
    let (cap_start, cap_end) = (usize::from(p.at), usize::from(p.at) + LEN);
    if end <= cap_start || start >= cap_end {
        return None;
    }
    // (offset in the access, length) before and after the capability.
    let before = (0, cap_start.saturating_sub(start).min(count));
    let after_from = cap_end.saturating_sub(start).min(count);
    Some([before, (after_from, count - after_from)])
}

/// A config-space read: the core's, then the guest capability's bytes put
/// over what the user got.
pub(crate) fn config_read(
    ivf: &IvfDevice,
    at: RegionPos,
    buf: UserPtr,
    count: usize,
    pos: &mut i64,
) -> isize {
    let n = ivf.core().read(buf, count, pos);
    if n > 0 {
        after_config_read(ivf, at, buf, n as usize);
    }
    n
}

/// A config-space write: the guest capability's bytes are the driver's and
/// never reach the device (the write counts as done); the rest is the core's.
pub(crate) fn config_write(
    ivf: &IvfDevice,
    at: RegionPos,
    buf: UserPtr,
    count: usize,
    pos: &mut i64,
) -> isize {
    let Some(parts) = config_write_parts(ivf, at, count) else {
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
