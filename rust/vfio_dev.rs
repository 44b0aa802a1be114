// SPDX-License-Identifier: GPL-2.0

//! Our vfio device: the vfio-pci-core device plus the VF's identity, and the
//! `vfio_device_ops` that serve it. Everything not overridden here is plain
//! vfio-pci-core behaviour (config space, BAR access and mmap, MSI-X, FLR,
//! iommufd and the legacy container).

use kernel::prelude::*;

use crate::common::ids::{self, VfDevice};
use crate::vfio::{bindings, vfio_device, vfio_pci_core_device, OpsTable};

/// One VF bound to this driver.
///
/// Allocated by the vfio core (`_vfio_alloc_device`) as one zeroed block;
/// `core` must stay the first field, the rest is initialised by
/// [`ivf_init_dev`] and dropped by [`ivf_release_dev`].
#[repr(C)]
pub(crate) struct IvfDevice {
    core: vfio_pci_core_device,
    /// What the VF is; set by `init`.
    vf: &'static VfDevice,
}

impl IvfDevice {
    /// The `IvfDevice` around a `vfio_device` of ours.
    ///
    /// # Safety
    ///
    /// `vdev` must belong to a device allocated with [`IVF_VFIO_OPS`].
    unsafe fn from_vdev(vdev: *mut vfio_device) -> *mut IvfDevice {
        // `vdev` is the first field of `core`, which is the first field here.
        vdev.cast()
    }
}

/// `init`: vfio-pci-core's own init, then our fields.
///
/// # Safety
///
/// Called by the vfio core, once, on a zeroed allocation made with our ops.
unsafe extern "C" fn ivf_init_dev(vdev: *mut vfio_device) -> kernel::ffi::c_int {
    // SAFETY: the vfio core calls `init` once, on the zeroed allocation.
    let ret = unsafe { bindings::vfio_pci_core_init_dev(vdev) };
    if ret != 0 {
        return ret;
    }
    // SAFETY: `init` is only called for devices allocated with our ops.
    let ivf = unsafe { IvfDevice::from_vdev(vdev) };
    // SAFETY: `vfio_pci_core_init_dev` set `pdev`, which outlives the device.
    let (vendor, device) = unsafe { ((*(*ivf).core.pdev).vendor, (*(*ivf).core.pdev).device) };
    let Some(vf) = ids::lookup(vendor, device) else {
        // Cannot happen through our ID table; refuse rather than guess.
        // SAFETY: undo the successful core init above.
        unsafe { bindings::vfio_pci_core_release_dev(vdev) };
        return ENODEV.to_errno();
    };
    // SAFETY: `vf` is a plain reference field of our own allocation; nothing
    // else reads it before `init` returns.
    unsafe { (&raw mut (*ivf).vf).write(vf) };
    0
}

/// `release`: the last reference is gone; undo `init`.
///
/// # Safety
///
/// Called by the vfio core, once, after a successful `init`.
unsafe extern "C" fn ivf_release_dev(vdev: *mut vfio_device) {
    // Our own fields hold nothing to drop yet (a `&'static`).
    // SAFETY: called once by the vfio core after a successful `init`.
    unsafe { bindings::vfio_pci_core_release_dev(vdev) };
}

/// `open_device`: enable the PCI device for the user (first open only).
///
/// # Safety
///
/// Called by the vfio core for one of our devices, under its open lock.
unsafe extern "C" fn ivf_open_device(vdev: *mut vfio_device) -> kernel::ffi::c_int {
    // SAFETY: vfio calls this for our device, under its open lock.
    let ivf = unsafe { IvfDevice::from_vdev(vdev) };
    // SAFETY: `core` is registered; enable/finish_enable pair as vfio-pci does.
    unsafe {
        let core = &raw mut (*ivf).core;
        let ret = bindings::vfio_pci_core_enable(core);
        if ret != 0 {
            return ret;
        }
        bindings::vfio_pci_core_finish_enable(core);
        pr_debug!(
            "intel_vf_vfio_pci: opened a {} ({} family)\n",
            (*ivf).vf.name,
            (*ivf).vf.family.name()
        );
    }
    0
}

/// The ops of every device this driver binds.
pub(crate) static IVF_VFIO_OPS: OpsTable = OpsTable(bindings::vfio_device_ops {
    // The kernel's `char` is `u8`; a byte string keeps this a constant.
    name: c"intel-vf-vfio-pci".to_bytes_with_nul().as_ptr().cast_mut(),
    init: Some(ivf_init_dev),
    release: Some(ivf_release_dev),
    open_device: Some(ivf_open_device),
    close_device: Some(bindings::vfio_pci_core_close_device),
    ioctl: Some(bindings::vfio_pci_core_ioctl),
    get_region_info_caps: Some(bindings::vfio_pci_ioctl_get_region_info),
    device_feature: Some(bindings::vfio_pci_core_ioctl_feature),
    read: Some(bindings::vfio_pci_core_read),
    write: Some(bindings::vfio_pci_core_write),
    mmap: Some(bindings::vfio_pci_core_mmap),
    request: Some(bindings::vfio_pci_core_request),
    match_: Some(bindings::vfio_pci_core_match),
    match_token_uuid: Some(bindings::vfio_pci_core_match_token_uuid),
    bind_iommufd: Some(bindings::vfio_iommufd_physical_bind),
    unbind_iommufd: Some(bindings::vfio_iommufd_physical_unbind),
    attach_ioas: Some(bindings::vfio_iommufd_physical_attach_ioas),
    detach_ioas: Some(bindings::vfio_iommufd_physical_detach_ioas),
    pasid_attach_ioas: None,
    pasid_detach_ioas: None,
    dma_unmap: None,
});
