// SPDX-License-Identifier: GPL-2.0

//! The announce's sender (`announce_tx.c`): a delayed work that sends
//! rounds of frames on the VF's PF netdev. What to send is decided in
//! `crate::announce`; this file owns the C object.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::prelude::*;

use super::bindings;
use crate::common::announce::{Plan, FRAME_MAX, MAX_FRAMES};

// The C sender's limits are the shared crate's.
const _: () = assert!(MAX_FRAMES == bindings::ivf_announce_limits_IVF_ANNOUNCE_MAX_FRAMES as usize);
const _: () = assert!(FRAME_MAX == bindings::ivf_announce_limits_IVF_ANNOUNCE_FRAME_MAX as usize);

/// The sender of one VF, made at its first announce, freed with the device.
pub(crate) struct Announcer(AtomicPtr<bindings::ivf_announce>);

/// The sender's counters since bind.
pub(crate) type AnnounceStats = bindings::ivf_announce_stats;

impl Announcer {
    /// None made yet.
    pub(crate) const fn new() -> Self {
        Announcer(AtomicPtr::new(core::ptr::null_mut()))
    }

    fn get(&self) -> Option<NonNull<bindings::ivf_announce>> {
        NonNull::new(self.0.load(Ordering::Acquire))
    }

    fn get_or_make(&self, vf: &kernel::pci::Device) -> Result<NonNull<bindings::ivf_announce>> {
        if let Some(a) = self.get() {
            return Ok(a);
        }
        let pdev: *mut bindings::pci_dev = (&raw const *vf).cast_mut().cast();
        // SAFETY: `vf` is a live PCI device, bound to us while the sender
        // runs (the last close stops it, and the device's release frees it
        // after unregistering waited for that close).
        let made = NonNull::new(unsafe { bindings::ivf_announce_alloc(pdev) }).ok_or(ENOMEM)?;
        match self.0.compare_exchange(
            core::ptr::null_mut(),
            made.as_ptr(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(made),
            Err(other) => {
                // SAFETY: ours, never shared; another caller's won.
                unsafe { bindings::ivf_announce_free(made.as_ptr()) };
                NonNull::new(other).ok_or(EINVAL)
            }
        }
    }

    /// Sends `plan` on `vf`'s PF netdev: `rounds` rounds, the first at
    /// once, then after `first_ms`, each next gap `step_ms` longer. Ends an
    /// announce still running. `Ok(false)`: the first round waits (up to a
    /// second) because another started less than a second ago (counted as
    /// `limited`).
    pub(crate) fn start(
        &self,
        vf: &kernel::pci::Device,
        plan: &Plan,
        rounds: u32,
        first_ms: u32,
        step_ms: u32,
    ) -> Result<bool> {
        let a = self.get_or_make(vf)?;
        let n = plan.count.min(MAX_FRAMES);
        let mut bytes = KVec::with_capacity(n * FRAME_MAX, GFP_KERNEL)?;
        let mut lens = [0u16; MAX_FRAMES];
        for (i, e) in plan.entries().iter().take(n).enumerate() {
            let f = e.frame();
            bytes.extend_from_slice(&f.bytes, GFP_KERNEL)?;
            lens[i] = f.len as u16;
        }
        // SAFETY: `a` is live (freed only on drop); `bytes` holds `n`
        // frames of FRAME_MAX bytes and `lens` `n` lengths, both copied
        // before the call returns.
        let started = unsafe {
            bindings::ivf_announce_start(
                a.as_ptr(),
                bytes.as_ptr(),
                lens.as_ptr(),
                n as u32,
                plan.dropped as u32,
                rounds,
                first_ms,
                step_ms,
            )
        };
        Ok(started)
    }

    /// Ends a running announce (its work finished when this returns).
    pub(crate) fn stop(&self) {
        if let Some(a) = self.get() {
            // SAFETY: live until drop.
            unsafe { bindings::ivf_announce_stop(a.as_ptr()) };
        }
    }

    /// The counters (zero before the first announce).
    pub(crate) fn stats(&self) -> AnnounceStats {
        let mut out = AnnounceStats::default();
        if let Some(a) = self.get() {
            // SAFETY: live until drop; `out` lives across the call.
            unsafe { bindings::ivf_announce_stats(a.as_ptr(), &mut out) };
        }
        out
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if let Some(a) = self.get() {
            // SAFETY: ours; nothing uses it after the device is released.
            unsafe { bindings::ivf_announce_free(a.as_ptr()) };
        }
    }
}
