// SPDX-License-Identifier: GPL-2.0

//! uAPI values and structs as the bindings define them: where a region
//! access lands, and the structs the driver reads from or writes to the
//! VFIO user.

use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

use super::bindings;

/// Where a device-fd offset lands (vfio-pci-core's `VFIO_PCI_OFFSET_*`
/// macros, through the shim).
#[derive(Copy, Clone)]
pub(crate) struct RegionPos {
    /// The region index (`VFIO_PCI_BAR0_REGION_INDEX`, ...).
    pub(crate) index: u32,
    /// The offset inside the region.
    pub(crate) offset: u64,
}

impl RegionPos {
    /// Splits a device-fd offset.
    pub(crate) fn of(pos: u64) -> Self {
        // SAFETY: pure arithmetic in C (the macros).
        let (index, offset) = unsafe {
            (
                bindings::ivf_region_index(pos),
                bindings::ivf_region_offset(pos),
            )
        };
        RegionPos { index, offset }
    }

    /// Whether it is in config space.
    pub(crate) fn in_config(self) -> bool {
        self.index == bindings::VFIO_PCI_CONFIG_REGION_INDEX
    }

    /// Whether it is in BAR0.
    pub(crate) fn in_bar0(self) -> bool {
        self.index == bindings::VFIO_PCI_BAR0_REGION_INDEX
    }
}

/// A uAPI struct that may be filled from user memory or copied to it.
///
/// # Safety
///
/// Implementors are bindgen `#[repr(C)]` structs of integers only, so that
/// any bytes are a valid value and the value's bytes are all initialised
/// (no padding).
pub(crate) unsafe trait Uapi: Default {}

// SAFETY: u32, u32, u64, u64: integers, no padding.
unsafe impl Uapi for bindings::vfio_precopy_info {}

/// Reads the first `len` bytes of a `T` from the user at `addr`, as the
/// core does with its `minsz` (the rest stays zero).
pub(crate) fn read_user<T: Uapi>(addr: usize, len: usize) -> Result<T> {
    let mut value = T::default();
    let len = len.min(size_of::<T>());
    // SAFETY: `value` is a live `T` of `size_of::<T>()` bytes and, by
    // `Uapi`, any bytes written into it make a valid `T`.
    let bytes = unsafe { core::slice::from_raw_parts_mut((&raw mut value).cast::<u8>(), len) };
    UserSlice::new(UserPtr::from_addr(addr), len)
        .reader()
        .read_slice(bytes)?;
    Ok(value)
}

/// Writes the first `len` bytes of `value` to the user at `addr`.
pub(crate) fn write_user<T: Uapi>(addr: usize, value: &T, len: usize) -> Result {
    let len = len.min(size_of::<T>());
    // SAFETY: `value` is a live `T`; by `Uapi` all its bytes are initialised.
    let bytes = unsafe { core::slice::from_raw_parts((&raw const *value).cast::<u8>(), len) };
    UserSlice::new(UserPtr::from_addr(addr), len)
        .writer()
        .write_slice(bytes)
}
