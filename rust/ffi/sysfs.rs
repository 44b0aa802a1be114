// SPDX-License-Identifier: GPL-2.0

//! The sysfs attributes' Rust side (the attribute plumbing is macros in
//! shim.c): the dirty-tracking mode and the tracker's counters.

use super::bindings::{self, pci_dev};
use super::ivf_of_pdev;

/// sysfs `dirty_tracking` read: whether the device logs DMA itself.
///
/// # Safety
///
/// `pdev` is bound to this driver (the attribute exists only then).
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_dirty_mode_get(pdev: *mut pci_dev) -> bool {
    // SAFETY: bound, so the driver data is our device.
    unsafe { ivf_of_pdev(pdev) }.is_some_and(|ivf| ivf.device_logging())
}

/// sysfs `dirty_tracking` write, with no user holding the device (the shim
/// checks under dev_set->lock).
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_dirty_mode_set(pdev: *mut pci_dev, on: bool) {
    // SAFETY: as above.
    if let Some(ivf) = unsafe { ivf_of_pdev(pdev) } {
        ivf.set_device_logging(on);
    }
}

/// sysfs `dirty_stats`.
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`]; `out` is the shim's.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_dirty_stats_get(
    pdev: *mut pci_dev,
    out: *mut bindings::ivf_dirty_stats,
) -> kernel::ffi::c_int {
    // SAFETY: as above.
    let Some(ivf) = (unsafe { ivf_of_pdev(pdev) }) else {
        return kernel::error::code::ENODEV.to_errno();
    };
    let Some(s) = crate::dirty::stats(ivf) else {
        return kernel::error::code::EBUSY.to_errno();
    };
    // SAFETY: `out` is the shim's stack variable.
    unsafe {
        *out = bindings::ivf_dirty_stats {
            traps: s.stats.traps,
            descriptors: s.stats.descriptors,
            max_descriptors_per_trap: u64::from(s.stats.max_descriptors_per_trap),
            trap_ns: s.trap_ns,
            reports: s.stats.reports,
            taints: s.stats.taints,
            logging: u64::from(s.logging),
        };
    }
    0
}

/// sysfs `guest_capability` read.
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_guest_cap_get(pdev: *mut pci_dev) -> bool {
    // SAFETY: as above.
    unsafe { ivf_of_pdev(pdev) }.is_some_and(|ivf| ivf.guest_capability())
}

/// sysfs `guest_capability` write, with no user holding the device (the
/// shim checks under dev_set->lock).
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_guest_cap_set(pdev: *mut pci_dev, on: bool) {
    // SAFETY: as above.
    if let Some(ivf) = unsafe { ivf_of_pdev(pdev) } {
        ivf.set_guest_capability(on);
    }
}

/// sysfs `guest_generation`.
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_guest_cap_generation(pdev: *mut pci_dev) -> u32 {
    // SAFETY: as above.
    unsafe { ivf_of_pdev(pdev) }.map_or(0, |ivf| ivf.guest_cap().generation())
}

/// sysfs `guest_capability_offset`: where it sits while open, else -1.
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_guest_cap_offset(pdev: *mut pci_dev) -> kernel::ffi::c_int {
    // SAFETY: as above.
    unsafe { ivf_of_pdev(pdev) }
        .and_then(|ivf| ivf.guest_cap().placement())
        .map_or(-1, |p| kernel::ffi::c_int::from(p.at))
}

/// sysfs `announce` (read).
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_announce_get(pdev: *mut pci_dev) -> bool {
    // SAFETY: as above.
    unsafe { ivf_of_pdev(pdev) }.is_some_and(|ivf| ivf.announce_enabled())
}

/// sysfs `announce` (write).
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_announce_set(pdev: *mut pci_dev, on: bool) {
    // SAFETY: as above.
    if let Some(ivf) = unsafe { ivf_of_pdev(pdev) } {
        ivf.set_announce(on);
    }
}

/// sysfs `announce_stats`: the sender's counters.
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`]; `out` points to writable stats.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_announce_stats_get(
    pdev: *mut pci_dev,
    out: *mut bindings::ivf_announce_stats,
) {
    // SAFETY: as above.
    let stats = unsafe { ivf_of_pdev(pdev) }.map(|ivf| ivf.announcer().stats());
    // SAFETY: the caller's buffer.
    unsafe { *out = stats.unwrap_or_default() };
}

/// sysfs `migration_times`: how long the last quiesce, save, load, PF
/// replay and resume took, in microseconds, into `out[0..5]`.
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`]; `out` points to 5 writable u32.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_migration_times(pdev: *mut pci_dev, out: *mut u32) {
    // shim.c's migration_times_show prints 5 values.
    const _: () = assert!(crate::device::Step::COUNT == 5);
    // SAFETY: as above.
    let t = unsafe { ivf_of_pdev(pdev) }.map_or([0; 5], |ivf| ivf.times());
    // SAFETY: the caller's 5 u32.
    unsafe { core::ptr::copy_nonoverlapping(t.as_ptr(), out, t.len()) };
}

/// sysfs `pf_forgets`: times the PF dropped a guest's filters.
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_pf_forgets(pdev: *mut pci_dev) -> u32 {
    // SAFETY: as above.
    unsafe { ivf_of_pdev(pdev) }.map_or(0, |ivf| ivf.forgets())
}

/// sysfs `migration_flags`: the `VFIO_MIGRATION_*` bits offered.
///
/// # Safety
///
/// As [`ivf_dirty_mode_get`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_migration_flags(_pdev: *mut pci_dev) -> u32 {
    crate::lm::MIGRATION_FLAGS
}
