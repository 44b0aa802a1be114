// SPDX-License-Identifier: GPL-2.0

//! The sysfs attributes' Rust side (the attribute plumbing is macros in
//! shim.c): the per-VF switches (one generic attribute per row of
//! `crate::switches::SWITCHES`), the tracker's and the announce's counters,
//! the guest capability's placement, the migration times.

use kernel::prelude::*;

use super::bindings::{self, pci_dev};
use super::ivf_of_pdev;
use crate::switches;

/// How many per-VF switches there are (the shim makes one attribute each).
#[no_mangle]
pub(crate) extern "C" fn ivf_switch_count() -> u32 {
    const _: () =
        assert!(switches::Switch::COUNT <= bindings::ivf_switch_limits_IVF_MAX_SWITCHES as usize);
    switches::Switch::COUNT as u32
}

/// The sysfs name of switch `i` (NUL-terminated, static), or null.
#[no_mangle]
pub(crate) extern "C" fn ivf_switch_name(i: u32) -> *const kernel::ffi::c_char {
    switches::row(i).map_or(core::ptr::null(), |r| r.name.as_char_ptr())
}

/// sysfs read of switch `i`: the word for its state (static), or null.
///
/// # Safety
///
/// `pdev` is bound to this driver (the attribute exists only then).
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_switch_word(
    pdev: *mut pci_dev,
    i: u32,
) -> *const kernel::ffi::c_char {
    // SAFETY: bound, so the driver data is our device.
    let ivf = unsafe { ivf_of_pdev(pdev) };
    match (ivf, switches::row(i)) {
        (Some(ivf), Some(r)) => r.words[usize::from(!ivf.switch(r.switch))].as_char_ptr(),
        _ => core::ptr::null(),
    }
}

/// Whether switch `i` may change only while no user has the VF open (the
/// shim then checks and sets it under dev_set->lock).
#[no_mangle]
pub(crate) extern "C" fn ivf_switch_while_closed(i: u32) -> bool {
    switches::row(i).is_some_and(|r| r.changes == switches::Changes::WhileClosed)
}

/// sysfs write of switch `i`: parses `len` bytes at `buf` into `on`; 0,
/// `-EINVAL` (another word) or `-EOPNOTSUPP` (this kernel cannot).
///
/// # Safety
///
/// As [`ivf_switch_word`]; `buf` holds `len` readable bytes, `on` is the
/// shim's.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_switch_parse(
    pdev: *mut pci_dev,
    i: u32,
    buf: *const u8,
    len: usize,
    on: *mut bool,
) -> kernel::ffi::c_int {
    // SAFETY: as above.
    let (Some(ivf), Some(r)) = (unsafe { ivf_of_pdev(pdev) }, switches::row(i)) else {
        return kernel::error::code::ENODEV.to_errno();
    };
    // SAFETY: sysfs's buffer, `len` bytes.
    let text = unsafe { core::slice::from_raw_parts(buf, len) };
    match switches::parse(ivf, r, text) {
        Ok(v) => {
            // SAFETY: the shim's variable.
            unsafe { *on = v };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Sets switch `i`; the shim obeyed its "while closed" rule.
///
/// # Safety
///
/// As [`ivf_switch_word`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_switch_set(pdev: *mut pci_dev, i: u32, on: bool) {
    // SAFETY: as above.
    if let (Some(ivf), Some(r)) = (unsafe { ivf_of_pdev(pdev) }, switches::row(i)) {
        ivf.set_switch(r.switch, on);
    }
}

/// sysfs `dirty_stats`.
///
/// # Safety
///
/// As [`ivf_switch_word`]; `out` is the shim's.
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

/// sysfs `guest_generation`.
///
/// # Safety
///
/// As [`ivf_switch_word`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_guest_cap_generation(pdev: *mut pci_dev) -> u32 {
    // SAFETY: as above.
    unsafe { ivf_of_pdev(pdev) }.map_or(0, |ivf| ivf.guest_cap().generation())
}

/// sysfs `guest_capability_offset`: where it sits while open, else -1.
///
/// # Safety
///
/// As [`ivf_switch_word`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_guest_cap_offset(pdev: *mut pci_dev) -> kernel::ffi::c_int {
    // SAFETY: as above.
    unsafe { ivf_of_pdev(pdev) }
        .and_then(|ivf| ivf.guest_cap().placement())
        .map_or(-1, |p| kernel::ffi::c_int::from(p.at))
}

/// sysfs `announce_stats`: the sender's counters.
///
/// # Safety
///
/// As [`ivf_switch_word`]; `out` points to writable stats.
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
/// As [`ivf_switch_word`]; `out` points to 5 writable u32.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_migration_times(pdev: *mut pci_dev, out: *mut u32) {
    // shim.c's migration_times_show prints 5 values.
    const _: () = assert!(crate::device::Step::COUNT == 5);
    // SAFETY: as above.
    let t = unsafe { ivf_of_pdev(pdev) }.map_or([0; 5], |ivf| ivf.times());
    // SAFETY: the caller's 5 u32.
    unsafe { core::ptr::copy_nonoverlapping(t.as_ptr(), out, t.len()) };
}

/// sysfs `migration_profile`: where the last quiesce, save, load and
/// resume spent their time, one line each (`crate::profile`), into the
/// `len` bytes at `buf`; returns the bytes written or `-EOVERFLOW`.
///
/// # Safety
///
/// As [`ivf_switch_word`]; `buf` holds `len` writable bytes.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_migration_profile(
    pdev: *mut pci_dev,
    buf: *mut u8,
    len: usize,
) -> isize {
    // SAFETY: as above.
    let Some(ivf) = (unsafe { ivf_of_pdev(pdev) }) else {
        return kernel::error::code::ENODEV.to_errno() as isize;
    };
    let profiles = ivf.profiles();
    // SAFETY: sysfs's page, `len` bytes, ours until we return.
    let mut out = kernel::str::Formatter::new(unsafe { core::slice::from_raw_parts_mut(buf, len) });
    for (step, name) in crate::device::Step::PROFILED {
        if profiles[step as usize].write(name, &mut out).is_err() {
            return kernel::error::code::EOVERFLOW.to_errno() as isize;
        }
    }
    out.bytes_written() as isize
}

/// sysfs `pf_forgets`: times the PF dropped a guest's filters.
///
/// # Safety
///
/// As [`ivf_switch_word`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_pf_forgets(pdev: *mut pci_dev) -> u32 {
    // SAFETY: as above.
    unsafe { ivf_of_pdev(pdev) }.map_or(0, |ivf| ivf.forgets())
}

/// sysfs `migration_flags`: the `VFIO_MIGRATION_*` bits offered.
///
/// # Safety
///
/// As [`ivf_switch_word`].
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_migration_flags(_pdev: *mut pci_dev) -> u32 {
    crate::lm::MIGRATION_FLAGS
}
