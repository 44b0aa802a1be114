// SPDX-License-Identifier: GPL-2.0

//! PCI driver glue: probe creates and registers the vfio device of a VF,
//! remove tears it down, reset_done tells the device. The `pci_driver`
//! itself and its ID table live in `shim.c` because they are C macros.

use kernel::prelude::*;

use super::bindings::{self, pci_dev, pci_device_id, vfio_pci_core_device};
use super::ivf_of_pdev;
use super::ops::IVF_VFIO_OPS;
use crate::device::IvfDevice;

/// Registers the PCI driver (module init).
pub(crate) fn register() -> Result {
    // SAFETY: called once from module init; the driver struct is static.
    kernel::error::to_result(unsafe { bindings::ivf_pci_driver_register() })
}

/// Unregisters the PCI driver (module exit); removes every bound device.
pub(crate) fn unregister() {
    // SAFETY: called once from module exit, after a successful `register`.
    unsafe { bindings::ivf_pci_driver_unregister() }
}

/// The `probe` callback of our `pci_driver`.
///
/// # Safety
///
/// Called by the PCI core with a valid device that matched our ID table.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_pci_probe(
    pdev: *mut pci_dev,
    _id: *const pci_device_id,
) -> kernel::ffi::c_int {
    // SAFETY: `pdev` is being probed, alive for the whole call.
    match unsafe { probe(pdev) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `pdev` is being probed.
unsafe fn probe(pdev: *mut pci_dev) -> Result {
    // SAFETY: `_vfio_alloc_device` allocates a zeroed `IvfDevice`, whose
    // first field embeds the `vfio_device` at offset 0 (as the C macro
    // `vfio_alloc_device()` checks), runs our `init` and returns that
    // `vfio_device` or an ERR_PTR.
    let vdev = unsafe {
        bindings::_vfio_alloc_device(
            size_of::<IvfDevice>(),
            &raw mut (*pdev).dev,
            &IVF_VFIO_OPS.0,
        )
    };
    let core: *mut vfio_pci_core_device = kernel::error::from_err_ptr(vdev)?.cast();
    // SAFETY: `pdev` is being probed and `core` was just allocated for it.
    // vfio-pci-core finds its device through the driver data, so it is set
    // before registration, as `dev_set_drvdata()` does.
    unsafe { (*pdev).dev.driver_data = core.cast() };
    // SAFETY: `core` is a fully initialised vfio-pci-core device.
    let ret = unsafe { bindings::vfio_pci_core_register_device(core) };
    if ret != 0 {
        // SAFETY: we own the reference `_vfio_alloc_device` returned.
        unsafe { bindings::ivf_vfio_put_device(vdev) };
        return Err(Error::from_errno(ret));
    }
    Ok(())
}

/// The `remove` callback of our `pci_driver`.
///
/// # Safety
///
/// Called by the PCI core for a device whose probe succeeded.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_pci_remove(pdev: *mut pci_dev) {
    // SAFETY: probe stored our core device in the driver data.
    let core: *mut vfio_pci_core_device = unsafe { (*pdev).dev.driver_data.cast() };
    // SAFETY: `core` is registered; unregistering waits for users to close
    // it, then the probe's reference is dropped.
    unsafe {
        bindings::vfio_pci_core_unregister_device(core);
        bindings::ivf_vfio_put_device(&raw mut (*core).vdev);
    }
}

/// `reset_done` of our PCI error handlers: FLR, VFIO_DEVICE_RESET, AER.
///
/// # Safety
///
/// Called by the PCI core for a device bound to us.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_pci_reset_done(pdev: *mut pci_dev) {
    // SAFETY: bound to us (the driver data is unset during probe, when
    // there is no migration to end).
    if let Some(ivf) = unsafe { ivf_of_pdev(pdev) } {
        ivf.reset_done();
    }
}
