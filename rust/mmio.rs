// SPDX-License-Identifier: GPL-2.0

//! The MMIO layer: BAR0 of a VF as the HAL's [`RegIo`], bounds-checked and
//! counted (the counts are the benchmark's figures).

use kernel::time::{delay::fsleep, Delta};

use crate::common::hal::RegIo;

/// Access counts of one sequence.
#[derive(Copy, Clone, Default)]
pub(crate) struct MmioCounts {
    /// Register reads (polls included).
    pub(crate) reads: u32,
    /// Register writes.
    pub(crate) writes: u32,
    /// Poll delays.
    pub(crate) delays: u32,
}

/// BAR0 of an enabled VF, mapped by vfio-pci-core.
pub(crate) struct Bar0 {
    base: *mut kernel::ffi::c_void,
    len: usize,
    /// Accesses made through this handle.
    pub(crate) counts: MmioCounts,
}

impl Bar0 {
    /// Wraps the mapping `base` of `len` bytes.
    ///
    /// # Safety
    ///
    /// `base` must be vfio-pci-core's `barmap[0]` of an enabled device, valid
    /// for `len` bytes for the lifetime of this value.
    pub(crate) unsafe fn new(base: *mut kernel::ffi::c_void, len: usize) -> Self {
        Bar0 {
            base,
            len,
            counts: MmioCounts::default(),
        }
    }

    fn in_bounds(&self, off: u32) -> bool {
        let off = off as usize;
        off % 4 == 0 && off + 4 <= self.len
    }
}

/// BAR0 with vfio's memory_lock held for reading: a reset waits for the
/// sequence that uses it, and memory decode stays on.
pub(crate) struct LockedBar0 {
    bar: Bar0,
    core: *mut crate::vfio::vfio_pci_core_device,
}

impl LockedBar0 {
    /// Takes memory_lock of `core`; `ENODEV` when memory decode is off.
    ///
    /// # Safety
    ///
    /// `core` must be an open (enabled) device of ours.
    pub(crate) unsafe fn lock(
        core: *mut crate::vfio::vfio_pci_core_device,
    ) -> kernel::error::Result<Self> {
        // SAFETY: per the contract; released in `drop`.
        if unsafe { crate::vfio::bindings::ivf_memory_lock(core) } != 0 {
            return Err(kernel::error::code::ENODEV);
        }
        // SAFETY: with memory_lock held and decode on, barmap[0] is the
        // live mapping of BAR0 (checked non-null by ivf_memory_lock).
        let bar = unsafe {
            let res = &(*(*core).pdev).resource[0];
            Bar0::new((*core).barmap[0], (res.end - res.start + 1) as usize)
        };
        Ok(LockedBar0 { bar, core })
    }
}

impl Drop for LockedBar0 {
    fn drop(&mut self) {
        // SAFETY: taken in `lock`.
        unsafe { crate::vfio::bindings::ivf_memory_unlock(self.core) }
    }
}

impl core::ops::Deref for LockedBar0 {
    type Target = Bar0;
    fn deref(&self) -> &Bar0 {
        &self.bar
    }
}

impl core::ops::DerefMut for LockedBar0 {
    fn deref_mut(&mut self) -> &mut Bar0 {
        &mut self.bar
    }
}

impl RegIo for Bar0 {
    fn read32(&mut self, off: u32) -> u32 {
        // Offsets come from our register maps; refuse anything else quietly.
        if !self.in_bounds(off) {
            return u32::MAX;
        }
        self.counts.reads += 1;
        // SAFETY: `off` is aligned and inside the mapping (checked above).
        unsafe { kernel::bindings::readl(self.base.add(off as usize)) }
    }

    fn write32(&mut self, off: u32, value: u32) {
        if !self.in_bounds(off) {
            return;
        }
        self.counts.writes += 1;
        // SAFETY: `off` is aligned and inside the mapping (checked above).
        unsafe { kernel::bindings::writel(value, self.base.add(off as usize)) }
    }

    fn delay_us(&mut self, us: u32) {
        self.counts.delays += 1;
        fsleep(Delta::from_micros(i64::from(us)));
    }
}
