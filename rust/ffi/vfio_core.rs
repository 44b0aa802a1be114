// SPDX-License-Identifier: GPL-2.0

//! The vfio-pci-core device as the logic sees it: its PCI device, BAR0
//! under the locks that keep it decoded, guest memory through the device's
//! own accessor (the type1 container's `vfio_dma_rw` or an iommufd access
//! on its IOAS, never the IOMMU domain), the core's own accesses, the FSM's
//! next step, and the clock and random numbers the logic needs.

use kernel::prelude::*;
use kernel::types::Opaque;
use kernel::uaccess::UserPtr;

use super::bindings::{self, vfio_device, vfio_device_mig_state as MigState, vfio_pci_core_device};
use crate::common::guest_cap::STD_CONFIG_LEN;
use crate::common::tracker::DmaRead;
use crate::mmio::Bar0;

/// The `vfio_pci_core_device` embedded first in our device.
///
/// # Invariants
///
/// It was initialised by `vfio_pci_core_init_dev` (our `init` runs it
/// before anything else), so `pdev` is set and outlives it.
///
/// `Opaque`: C changes it behind any Rust reference (its locks, `barmap`,
/// `vconfig`), so Rust reads its fields only through raw pointers.
#[repr(transparent)]
pub(crate) struct CoreDevice(Opaque<vfio_pci_core_device>);

// SAFETY: the vfio core shares the device between threads and guards its
// fields with its own locks; Rust reads `pdev` (set once at init) and
// `barmap` (under memory_lock) only.
unsafe impl Sync for CoreDevice {}
// SAFETY: as above; the device is not tied to a thread.
unsafe impl Send for CoreDevice {}

impl CoreDevice {
    /// The raw device, for the FFI layer's own calls.
    pub(super) fn raw(&self) -> *mut vfio_pci_core_device {
        self.0.get()
    }

    /// The embedded `vfio_device`, for the core's calls.
    pub(crate) fn vdev(&self) -> *mut vfio_device {
        // SAFETY: a field of a live struct.
        unsafe { &raw mut (*self.raw()).vdev }
    }

    fn pdev(&self) -> *mut bindings::pci_dev {
        // SAFETY: set by `vfio_pci_core_init_dev` and never changed after.
        unsafe { (*self.raw()).pdev }
    }

    /// The VF's PCI device.
    pub(crate) fn pci(&self) -> &kernel::pci::Device {
        // SAFETY: `pdev` is live (type invariant); `pci::Device` is a
        // transparent wrapper of `struct pci_dev`.
        unsafe { &*self.pdev().cast::<kernel::pci::Device>() }
    }

    /// The VF's device, for log messages.
    pub(crate) fn dev(&self) -> &kernel::device::Device {
        self.pci().as_ref()
    }

    /// BAR0 for one sequence, with memory_lock held for reading: a reset
    /// waits for the sequence instead of resetting under it. `ENODEV` when
    /// memory decode is off.
    pub(crate) fn bar0(&self) -> Result<LockedBar0<'_>> {
        // SAFETY: our device is open whenever the logic runs a sequence;
        // released in `LockedBar0::drop`.
        if unsafe { bindings::ivf_memory_lock(self.raw()) } != 0 {
            return Err(ENODEV);
        }
        Ok(LockedBar0 {
            // SAFETY: memory_lock is held and decode is on (checked above).
            bar: unsafe { self.mapped_bar0() },
            core: self,
        })
    }

    /// BAR0 and guest memory for the dirty tracker: dev_set->lock (which
    /// keeps the device bound and attached), then memory_lock. `None` when
    /// memory decode is off. Guest memory is read through `dma`, the
    /// device's own accessor.
    pub(crate) fn dev_lock<'a>(&'a self, dma: &'a DmaAccess) -> Option<DevLock<'a>> {
        // SAFETY: as in `bar0`; released in `DevLock::drop`.
        if unsafe { bindings::ivf_dev_lock(self.raw()) } != 0 {
            return None;
        }
        // SAFETY: memory_lock is held and decode is on (checked above).
        let mut bar = unsafe { self.mapped_bar0() };
        // Guest-memory reads release memory_lock for a moment (shim.c,
        // ivf_dma_read): from then on each access checks the decode.
        // SAFETY: the device outlives the lock, which holds memory_lock
        // for every access but during those reads.
        unsafe { bar.check_decode(self.raw()) };
        Some(DevLock {
            bar,
            core: self,
            dma,
        })
    }

    /// # Safety
    ///
    /// memory_lock must be held with decode on, as `ivf_memory_lock` leaves it.
    unsafe fn mapped_bar0(&self) -> Bar0 {
        let len = self.pci().resource_len(0).unwrap_or(0) as usize;
        // SAFETY: with memory_lock held and decode on, barmap[0] is the live
        // mapping of BAR0 (checked non-null by the shim), `len` bytes long.
        unsafe { Bar0::new((*self.raw()).barmap[0], len) }
    }

    /// The standard config space as the VFIO user sees it, which bytes
    /// vfio assigns, and what the device returns (for placing the guest
    /// capability); `ENODEV` unless the device is open.
    pub(crate) fn config_snapshot(&self) -> Result<ConfigSnapshot> {
        let mut snap = ConfigSnapshot {
            user: [0; STD_CONFIG_LEN],
            assigned: [false; STD_CONFIG_LEN],
            hw: [0; STD_CONFIG_LEN],
        };
        // SAFETY: the three arrays are 256 bytes each, as the shim writes;
        // the shim checks that vfio's config arrays exist (open).
        kernel::error::to_result(unsafe {
            bindings::ivf_config_snapshot(
                self.raw(),
                snap.user.as_mut_ptr(),
                snap.assigned.as_mut_ptr(),
                snap.hw.as_mut_ptr(),
            )
        })?;
        Ok(snap)
    }

    /// The FSM's next single step from `cur` towards `new`
    /// (`vfio_mig_get_next_state`).
    pub(crate) fn next_state(&self, cur: MigState, new: MigState) -> Result<MigState> {
        let mut next = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_ERROR;
        // SAFETY: our device is open; the core validates both states.
        kernel::error::to_result(unsafe {
            bindings::vfio_mig_get_next_state(self.vdev(), cur, new, &mut next)
        })?;
        Ok(next)
    }

    /// The core's `read` of a region (config space, BARs), at `pos`.
    pub(crate) fn read(&self, buf: UserPtr, count: usize, pos: &mut i64) -> isize {
        // SAFETY: the core checks the user pointer and the position.
        unsafe { bindings::vfio_pci_core_read(self.vdev(), buf.as_mut_ptr().cast(), count, pos) }
    }

    /// The core's `write` of a region, at `pos`.
    pub(crate) fn write(&self, buf: UserPtr, count: usize, pos: &mut i64) -> isize {
        // SAFETY: as in `read`.
        unsafe { bindings::vfio_pci_core_write(self.vdev(), buf.as_const_ptr().cast(), count, pos) }
    }
}

/// The standard config space of an open VF, three ways (see
/// [`crate::common::guest_cap::place`]).
pub(crate) struct ConfigSnapshot {
    /// As the VFIO user sees it.
    pub(crate) user: [u8; STD_CONFIG_LEN],
    /// Bytes vfio gives to the header or a capability.
    pub(crate) assigned: [bool; STD_CONFIG_LEN],
    /// What the device returns.
    pub(crate) hw: [u8; STD_CONFIG_LEN],
}

/// The monotonic clock now, in nanoseconds (`ktime_get`).
pub(crate) fn monotonic_ns() -> i64 {
    // SAFETY: callable in any context after boot.
    unsafe { kernel::bindings::ktime_get() }
}

/// A random number (`get_random_u32`).
pub(crate) fn random_u32() -> u32 {
    // SAFETY: callable in any context after boot.
    unsafe { bindings::ivf_random_u32() }
}

/// BAR0 with memory_lock held for reading.
pub(crate) struct LockedBar0<'a> {
    bar: Bar0,
    core: &'a CoreDevice,
}

impl Drop for LockedBar0<'_> {
    fn drop(&mut self) {
        // SAFETY: taken in `CoreDevice::bar0`.
        unsafe { bindings::ivf_memory_unlock(self.core.raw()) }
    }
}

impl core::ops::Deref for LockedBar0<'_> {
    type Target = Bar0;
    fn deref(&self) -> &Bar0 {
        &self.bar
    }
}

impl core::ops::DerefMut for LockedBar0<'_> {
    fn deref_mut(&mut self) -> &mut Bar0 {
        &mut self.bar
    }
}

/// The tracker's view of the device: BAR0 and guest memory, locked.
pub(crate) struct DevLock<'a> {
    /// BAR0.
    pub(crate) bar: Bar0,
    core: &'a CoreDevice,
    dma: &'a DmaAccess,
}

impl DevLock<'_> {
    /// Guest memory through the device's IOMMU domain, and BAR0.
    pub(crate) fn split(&mut self) -> (&mut Bar0, Dma<'_>) {
        (&mut self.bar, Dma(self.core, self.dma))
    }
}

impl Drop for DevLock<'_> {
    fn drop(&mut self) {
        // SAFETY: taken in `CoreDevice::dev_lock`.
        unsafe { bindings::ivf_dev_unlock(self.core.raw()) }
    }
}

/// Guest memory as the VF sees it, while its [`DevLock`] is held. A read
/// releases memory_lock while it copies (a reset may then run: the
/// tracker's caller checks the epoch after).
pub(crate) struct Dma<'a>(&'a CoreDevice, &'a DmaAccess);

impl DmaRead for Dma<'_> {
    fn read(&mut self, iova: u64, buf: &mut [u8]) -> bool {
        // SAFETY: the DevLock this borrows from holds dev_set->lock and
        // memory_lock, as the shim asserts; `buf` is writable for its
        // length; the accessor is this device's, under dev_set->lock.
        unsafe {
            bindings::ivf_dma_read(
                self.0.raw(),
                self.1.raw(),
                iova,
                buf.as_mut_ptr().cast(),
                buf.len(),
            ) == 0
        }
    }
}

/// The device's own guest-memory accessor (shim.c `struct ivf_dma`): the
/// iommufd access that follows the device's attachment, or nothing (then
/// reads go to the type1 container). Zeroed with the device; changed by
/// the shim only, under dev_set->lock.
#[repr(transparent)]
pub(crate) struct DmaAccess(Opaque<bindings::ivf_dma>);

// SAFETY: only the shim reads or writes it, under the device's
// dev_set->lock.
unsafe impl Sync for DmaAccess {}
// SAFETY: as above.
unsafe impl Send for DmaAccess {}

impl DmaAccess {
    /// The raw accessor, for the shim.
    pub(crate) fn raw(&self) -> *mut bindings::ivf_dma {
        self.0.get()
    }
}

/// Whether the vfio core can report DMA logging on this kernel (it needs
/// `CONFIG_IOMMUFD_DRIVER`'s iova_bitmap, which Debian's kernels lack).
pub(crate) fn device_logging_supported() -> bool {
    // SAFETY: a pure query of the kernel's configuration.
    unsafe { bindings::ivf_device_logging_supported() }
}
