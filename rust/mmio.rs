// SPDX-License-Identifier: GPL-2.0

//! The MMIO accessor: BAR0 of a VF as the HAL's [`RegIo`], bounds-checked
//! and counted (the counts are the benchmark's figures). The locks under
//! which a mapping is valid are the FFI layer's (`ffi::vfio_core`).

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
    /// The device whose decode each access checks first, where the lock
    /// that keeps it decoded is released during a sequence (the tracker's
    /// guest-memory reads).
    decode_of: Option<*mut crate::ffi::bindings::vfio_pci_core_device>,
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
            decode_of: None,
            counts: MmioCounts::default(),
        }
    }

    /// From now on, an access first checks that `core` still decodes
    /// memory (vfio-pci-core's own test), and does nothing (reads all
    /// ones) when it does not.
    ///
    /// # Safety
    ///
    /// `core` must outlive this value, and memory_lock must be held for
    /// reading at every access.
    pub(crate) unsafe fn check_decode(
        &mut self,
        core: *mut crate::ffi::bindings::vfio_pci_core_device,
    ) {
        self.decode_of = Some(core);
    }

    fn in_bounds(&self, off: u32) -> bool {
        let off = off as usize;
        off % 4 == 0 && off + 4 <= self.len && self.decodes()
    }

    fn decodes(&self) -> bool {
        match self.decode_of {
            None => true,
            // SAFETY: per `check_decode`, the device lives and memory_lock
            // is held for reading.
            Some(core) => unsafe { crate::ffi::bindings::ivf_bar_decodes(core) },
        }
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
