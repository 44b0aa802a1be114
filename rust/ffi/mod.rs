// SPDX-License-Identifier: GPL-2.0

//! The FFI layer: the only Rust in the module that touches raw pointers.
//!
//! Every callback the kernel makes into the module (PCI probe/remove/
//! reset_done, the `vfio_device_ops`, the migration and DMA-logging ops, the
//! data files' `file_operations`, sysfs) is a short trampoline here. It
//! turns the raw pointers into references once, under one invariant, and
//! calls a safe method of the logic (`IvfDevice`, `lm`, `trap`, `dirty`,
//! `pf_admin`), which contain no `unsafe`:
//!
//! **Invariant.** A pointer the kernel passes to a callback is valid for the
//! duration of the call. A `vfio_device` passed to one of our ops belongs
//! to a device allocated with [`ops::IVF_VFIO_OPS`], so it is the first
//! field of a [`crate::device::IvfDevice`] (both `#[repr(C)]`), which lives
//! from `init` until `release`; the driver data of a PCI device bound to us
//! is that same device; the private data of a file with our
//! `file_operations` is a `MigFile` until `release`.
//!
//! The other direction, the module calling the kernel, goes through
//! [`vfio_core::CoreDevice`] (the vfio-pci-core device), [`mig_file`] (creating
//! and holding data files), [`pf`] (the PF netdev's VF settings) and the
//! MMIO accessor `crate::mmio`. The C shim (`shim.c`) holds what only C
//! can express: macros, inline functions and static tables.

pub(crate) mod announce;
pub(crate) mod bindings;
pub(crate) mod fault;
pub(crate) mod mig_file;
pub(crate) mod ops;
pub(crate) mod pci;
pub(crate) mod pf;
pub(crate) mod sysfs;
pub(crate) mod uapi;
pub(crate) mod vfio_core;

use crate::device::IvfDevice;
use bindings::vfio_device;

/// The device around a `vfio_device` of ours.
///
/// # Safety
///
/// `vdev` must be passed by the vfio core to one of our ops (see the
/// module's invariant); the reference must not outlive that call.
unsafe fn ivf<'a>(vdev: *mut vfio_device) -> &'a IvfDevice {
    // SAFETY: per the invariant, `vdev` is the first field of the
    // `core` field, itself first, of a live `IvfDevice`.
    unsafe { &*vdev.cast::<IvfDevice>() }
}

/// The device of a PCI device bound to us, from its driver data; `None`
/// before probe has set it.
///
/// # Safety
///
/// `pdev` must be passed by the PCI core to one of our callbacks, or to a
/// sysfs attribute of a device bound to us.
unsafe fn ivf_of_pdev<'a>(pdev: *mut bindings::pci_dev) -> Option<&'a IvfDevice> {
    // SAFETY: bound to us: the driver data is null or our device.
    let p = unsafe { (*pdev).dev.driver_data.cast::<IvfDevice>() };
    // SAFETY: probe stored our device there; it lives while bound.
    unsafe { p.as_ref() }
}
