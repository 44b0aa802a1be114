// SPDX-License-Identifier: GPL-2.0

//! Our vfio device: the vfio-pci-core device plus the VF's identity, and the
//! `vfio_device_ops` that serve it. Everything not overridden here is plain
//! vfio-pci-core behaviour (config space, BAR access and mmap, MSI-X, FLR,
//! iommufd and the legacy container).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::sync::Mutex;

use crate::common::ids::{self, Family, VfDevice};
use crate::common::regs::{regmap, RegMap};
use crate::dirty::{self, DirtyLog};
use crate::lm::{self, DevCtx, Migration};
use crate::trap::{self, PfState};
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
    /// The migration FSM and its files.
    mig: Mutex<Migration>,
    /// A reset happened that `mig` has not seen yet (see lm.rs).
    reset_pending: AtomicBool,
    /// The PF channel: the mailbox log (see trap.rs).
    pf: Mutex<PfState>,
    /// Resets so far; a log of an older generation is void.
    reset_gen: AtomicU64,
    /// Device DMA logging (see dirty.rs).
    dirty: Mutex<DirtyLog>,
    /// Dirty-tracking mode: the driver logs DMA (RX tail page trapped).
    /// Changed only while no user has the device open.
    device_logging: AtomicBool,
    /// Opens so far; a logging session of an earlier open is void.
    open_gen: AtomicU64,
}

impl IvfDevice {
    /// The `IvfDevice` around a `vfio_device` of ours.
    ///
    /// # Safety
    ///
    /// `vdev` must belong to a device allocated with [`IVF_VFIO_OPS`].
    pub(crate) unsafe fn from_vdev(vdev: *mut vfio_device) -> *mut IvfDevice {
        // `vdev` is the first field of `core`, which is the first field here.
        vdev.cast()
    }

    /// The `IvfDevice` of a PCI device bound to us, from its driver data.
    ///
    /// # Safety
    ///
    /// `pdev` must be bound to this driver (probe has set the driver data).
    pub(crate) unsafe fn from_pdev(pdev: *mut bindings::pci_dev) -> *mut IvfDevice {
        // SAFETY: probe stored our core device, the first field, there.
        unsafe { (*pdev).dev.driver_data.cast() }
    }

    fn ctx(&self) -> DevCtx<'_> {
        DevCtx {
            core: (&raw const self.core).cast_mut(),
            vf: self.vf,
            reset_pending: &self.reset_pending,
            pf: &self.pf,
            reset_gen: &self.reset_gen,
        }
    }

    /// The vfio-pci-core device.
    pub(crate) fn core_ptr(&self) -> *mut vfio_pci_core_device {
        (&raw const self.core).cast_mut()
    }

    /// The PCI device, for log messages.
    pub(crate) fn dev(&self) -> &kernel::device::Device {
        // SAFETY: the PCI device outlives its vfio device.
        unsafe { kernel::device::Device::from_raw(&raw mut (*self.core.pdev).dev) }
    }

    /// The logging state, locked.
    pub(crate) fn dirty_log(&self) -> kernel::sync::MutexGuard<'_, DirtyLog> {
        self.dirty.lock()
    }

    /// Whether the driver logs DMA (and traps the RX tail page).
    pub(crate) fn device_logging(&self) -> bool {
        self.device_logging.load(Ordering::Acquire)
    }

    /// Sets the mode; the caller made sure nobody has the device open.
    pub(crate) fn set_device_logging(&self, on: bool) {
        self.device_logging.store(on, Ordering::Release);
    }

    /// Resets so far.
    pub(crate) fn reset_gen(&self) -> u64 {
        self.reset_gen.load(Ordering::Acquire)
    }

    /// Opens so far.
    pub(crate) fn open_gen(&self) -> u64 {
        self.open_gen.load(Ordering::Acquire)
    }

    /// The VF's register map.
    pub(crate) fn regmap(&self) -> &'static RegMap {
        regmap(self.vf.family)
    }

    /// The VF's family.
    pub(crate) fn family(&self) -> Family {
        self.vf.family
    }

    /// The PF channel state, locked, current with resets.
    pub(crate) fn pf_state(&self) -> kernel::sync::MutexGuard<'_, PfState> {
        trap::lock_pf(&self.pf, &self.reset_gen)
    }

    /// A reset finished (FLR, VFIO_DEVICE_RESET, AER): any migration ends.
    pub(crate) fn reset_done(&self) {
        self.reset_gen.fetch_add(1, Ordering::AcqRel);
        self.reset_pending.store(true, Ordering::Release);
        // Apply it now if nobody holds the state; else the holder's next
        // entry does (never block here: see lm.rs).
        if let Some(mut mig) = self.mig.try_lock() {
            lm::apply_pending_reset(&self.ctx(), &mut mig);
        }
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
    // SAFETY: our fields of our own allocation; nothing else reads them
    // before `init` returns, and the allocation never moves (pinned).
    unsafe {
        (&raw mut (*ivf).vf).write(vf);
        (&raw mut (*ivf).reset_pending).write(AtomicBool::new(false));
        (&raw mut (*ivf).reset_gen).write(AtomicU64::new(0));
        (&raw mut (*ivf).open_gen).write(AtomicU64::new(0));
        (&raw mut (*ivf).device_logging).write(AtomicBool::new(dirty::default_device_logging()));
        let log = kernel::new_mutex!(DirtyLog::default(), "intel_vf_vfio_pci::dirty");
        pin_init::raw_init(&raw mut (*ivf).dirty, log);
        let pf = kernel::new_mutex!(PfState::default(), "intel_vf_vfio_pci::pf");
        pin_init::raw_init(&raw mut (*ivf).pf, pf);
        let mig = kernel::new_mutex!(Migration::new(), "intel_vf_vfio_pci::mig");
        // A mutex initialiser cannot fail.
        pin_init::raw_init(&raw mut (*ivf).mig, mig);
        (*vdev).migration_flags = lm::MIGRATION_FLAGS;
        (*vdev).mig_ops = &IVF_MIG_OPS;
    }
    0
}

/// `release`: the last reference is gone; undo `init`.
///
/// # Safety
///
/// Called by the vfio core, once, after a successful `init`.
unsafe extern "C" fn ivf_release_dev(vdev: *mut vfio_device) {
    // SAFETY: called once by the vfio core after a successful `init`; close
    // has ended every transfer, so dropping the FSM state frees nothing live.
    unsafe {
        let ivf = IvfDevice::from_vdev(vdev);
        core::ptr::drop_in_place(&raw mut (*ivf).mig);
        core::ptr::drop_in_place(&raw mut (*ivf).pf);
        core::ptr::drop_in_place(&raw mut (*ivf).dirty);
        bindings::vfio_pci_core_release_dev(vdev);
    }
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
        (*ivf).open_gen.fetch_add(1, Ordering::AcqRel);
        // The mode is fixed while open: log_ops only in device-logging mode
        // (otherwise the DMA_LOGGING features answer ENOTTY).
        (*vdev).log_ops = if (*ivf).device_logging() {
            &dirty::IVF_LOG_OPS
        } else {
            core::ptr::null()
        };
        // Opening resets the VF: whatever a previous user left, we start RUNNING.
        (*ivf).mig.lock().reset();
        // And with an empty mailbox log even where the core could not reset
        // the VF: one user's MAC and VLANs never travel in the next's stream.
        (*ivf).pf_state().snoop.reset();
        (*ivf).reset_pending.store(false, Ordering::Release);
        pr_debug!(
            "opened a {} ({} family)\n",
            (*ivf).vf.name,
            (*ivf).vf.family.name()
        );
    }
    0
}

/// `close_device`: end any transfer (its fds fail from now on), then close.
///
/// # Safety
///
/// Called by the vfio core for one of our devices, on last close.
unsafe extern "C" fn ivf_close_device(vdev: *mut vfio_device) {
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    ivf.mig.lock().reset();
    // Logging ends with the open. Called under dev_set->lock, which the
    // tracker takes inside `dirty`: only try; a session left behind is of
    // an old open generation and dropped at its next use.
    if let Some(mut log) = ivf.dirty.try_lock() {
        log.stop();
    }
    // SAFETY: the core close that `open_device` pairs with.
    unsafe { bindings::vfio_pci_core_close_device(vdev) };
}

/// `migration_set_state`.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
unsafe extern "C" fn ivf_set_state(
    vdev: *mut vfio_device,
    new: bindings::vfio_device_mig_state,
) -> *mut bindings::file {
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    let mut mig = ivf.mig.lock();
    match lm::set_state(&ivf.ctx(), &mut mig, vdev, new) {
        Ok(f) => f,
        // ERR_PTR: the negative errno as a pointer.
        Err(e) => e.to_errno() as isize as *mut bindings::file,
    }
}

/// `migration_get_state`.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
unsafe extern "C" fn ivf_get_state(
    vdev: *mut vfio_device,
    out: *mut bindings::vfio_device_mig_state,
) -> kernel::ffi::c_int {
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    let mut mig = ivf.mig.lock();
    lm::apply_pending_reset(&ivf.ctx(), &mut mig);
    // SAFETY: `out` points to the core's result variable.
    unsafe { *out = mig.state };
    0
}

/// `migration_get_data_size`.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
unsafe extern "C" fn ivf_get_data_size(
    vdev: *mut vfio_device,
    out: *mut kernel::ffi::c_ulong,
) -> kernel::ffi::c_int {
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { &*IvfDevice::from_vdev(vdev) };
    // SAFETY: `out` points to the core's result variable.
    unsafe { *out = lm::data_size(&ivf.ctx()) as kernel::ffi::c_ulong };
    0
}

static IVF_MIG_OPS: bindings::vfio_migration_ops = bindings::vfio_migration_ops {
    migration_set_state: Some(ivf_set_state),
    migration_get_state: Some(ivf_get_state),
    migration_get_data_size: Some(ivf_get_data_size),
};

/// vfio-pci-core's iommufd ops, where the kernel has iommufd. Without it
/// (Debian's kernels: `CONFIG_IOMMUFD` off) `linux/vfio.h` defines them as
/// NULL macros and the device is reached through the group/container only.
mod iommufd {
    use super::{bindings, vfio_device};
    use kernel::ffi::c_int;

    type BindFn =
        unsafe extern "C" fn(*mut vfio_device, *mut bindings::iommufd_ctx, *mut u32) -> c_int;
    type DeviceFn = unsafe extern "C" fn(*mut vfio_device);
    type IoasFn = unsafe extern "C" fn(*mut vfio_device, *mut u32) -> c_int;

    #[cfg(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m"))]
    pub(super) const BIND: Option<BindFn> = Some(bindings::vfio_iommufd_physical_bind);
    #[cfg(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m"))]
    pub(super) const UNBIND: Option<DeviceFn> = Some(bindings::vfio_iommufd_physical_unbind);
    #[cfg(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m"))]
    pub(super) const ATTACH_IOAS: Option<IoasFn> =
        Some(bindings::vfio_iommufd_physical_attach_ioas);
    #[cfg(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m"))]
    pub(super) const DETACH_IOAS: Option<DeviceFn> =
        Some(bindings::vfio_iommufd_physical_detach_ioas);

    #[cfg(not(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m")))]
    pub(super) const BIND: Option<BindFn> = None;
    #[cfg(not(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m")))]
    pub(super) const UNBIND: Option<DeviceFn> = None;
    #[cfg(not(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m")))]
    pub(super) const ATTACH_IOAS: Option<IoasFn> = None;
    #[cfg(not(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m")))]
    pub(super) const DETACH_IOAS: Option<DeviceFn> = None;
}

/// The ops of every device this driver binds.
pub(crate) static IVF_VFIO_OPS: OpsTable = OpsTable(bindings::vfio_device_ops {
    // The kernel's `char` is `u8`; a byte string keeps this a constant.
    name: c"intel-vf-vfio-pci".to_bytes_with_nul().as_ptr().cast_mut(),
    init: Some(ivf_init_dev),
    release: Some(ivf_release_dev),
    open_device: Some(ivf_open_device),
    close_device: Some(ivf_close_device),
    ioctl: Some(trap::ivf_ioctl),
    get_region_info_caps: Some(trap::ivf_get_region_info_caps),
    device_feature: Some(bindings::vfio_pci_core_ioctl_feature),
    read: Some(trap::ivf_read),
    write: Some(trap::ivf_write),
    mmap: Some(trap::ivf_mmap),
    request: Some(bindings::vfio_pci_core_request),
    match_: Some(bindings::vfio_pci_core_match),
    match_token_uuid: Some(bindings::vfio_pci_core_match_token_uuid),
    bind_iommufd: iommufd::BIND,
    unbind_iommufd: iommufd::UNBIND,
    attach_ioas: iommufd::ATTACH_IOAS,
    detach_ioas: iommufd::DETACH_IOAS,
    pasid_attach_ioas: None,
    pasid_detach_ioas: None,
    dma_unmap: None,
});
