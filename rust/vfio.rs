// SPDX-License-Identifier: GPL-2.0

//! The vfio layer: bindgen output for `linux/vfio.h`, `linux/vfio_pci_core.h`
//! and our C shim, and the few safe wrappers the driver logic uses.

use kernel::prelude::*;

/// Raw bindings. Types not defined here come from `kernel::bindings`.
// `unknown_lints`: newer bindgen marks bitfield accessors with lints
// (`unnecessary_transmutes`) that the kernel's rustc may predate.
#[allow(
    unknown_lints,
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::undocumented_unsafe_blocks
)]
pub(crate) mod bindings {
    use kernel::ffi;
    include!("vfio_bindings_generated.rs");
}

pub(crate) use bindings::{vfio_device, vfio_device_ops, vfio_pci_core_device};
pub(crate) use kernel::bindings::{pci_dev, pci_device_id};

/// Turns a kernel-style `ERR_PTR` into a `Result`.
pub(crate) fn from_err_ptr<T>(ptr: *mut T) -> Result<*mut T> {
    let value = ptr as isize;
    // ERR_PTR values are the last page of the address space: -4095..=-1.
    if (-4095..0).contains(&value) {
        // The range check above makes the narrowing exact.
        Err(Error::from_errno(value as i32))
    } else {
        Ok(ptr)
    }
}

/// A `vfio_device_ops` table that can live in a `static`.
///
/// The raw struct holds a `*mut c_char` name and is therefore not `Sync`.
#[repr(transparent)]
pub(crate) struct OpsTable(pub(crate) vfio_device_ops);

// SAFETY: the table is immutable after compilation; the vfio core only reads
// it, from any thread, and the name it points to is a static string.
unsafe impl Sync for OpsTable {}

/// Allocates a vfio device of `size` bytes for `pdev`, calling `ops.init`.
///
/// `size` must be the size of a `#[repr(C)]` struct whose first field is a
/// `vfio_pci_core_device`, so that the vfio core's `vfio_device` is at
/// offset 0, as `vfio_alloc_device()` checks in C.
pub(crate) fn alloc_device(
    pdev: *mut pci_dev,
    ops: &'static OpsTable,
    size: usize,
) -> Result<*mut vfio_pci_core_device> {
    // SAFETY: `pdev` is the device being probed, alive for the whole call;
    // `_vfio_alloc_device` allocates `size` zeroed bytes, runs `ops.init` and
    // returns the embedded `vfio_device` or an ERR_PTR.
    let vdev = unsafe { bindings::_vfio_alloc_device(size, &raw mut (*pdev).dev, &ops.0) };
    // `vfio_device` is the first field of `vfio_pci_core_device`.
    Ok(from_err_ptr(vdev)?.cast())
}

/// Drops the probe's reference to a vfio device; the last one frees it.
///
/// # Safety
///
/// `core` must come from [`alloc_device`] and the caller must own a reference.
pub(crate) unsafe fn put_device(core: *mut vfio_pci_core_device) {
    // SAFETY: per the function's contract, `core` is a live vfio device.
    unsafe { bindings::ivf_vfio_put_device(&raw mut (*core).vdev) };
}
