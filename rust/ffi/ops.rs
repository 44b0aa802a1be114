// SPDX-License-Identifier: GPL-2.0

//! The `vfio_device_ops` of our devices, their `vfio_migration_ops` and
//! `vfio_log_ops`: trampolines into `IvfDevice`, `trap` and `dirty`.
//! Everything not overridden is plain vfio-pci-core (config space, BAR
//! access and mmap, MSI-X, FLR, iommufd and the legacy container).

use kernel::ffi::{c_int, c_long, c_uint, c_ulong};
use kernel::prelude::*;
use kernel::uaccess::UserPtr;

use super::bindings::{self, vfio_device};
use super::uapi::RegionPos;
use super::{ivf, vfio_core::CoreDevice};
use crate::common::ids;
use crate::device::{IvfDevice, VfState};
use crate::switches::Switch;
use crate::{dirty, lm, trap};

/// A `vfio_device_ops` table that can live in a `static`.
///
/// The raw struct holds a `*mut c_char` name and is therefore not `Sync`.
#[repr(transparent)]
pub(crate) struct OpsTable(pub(crate) bindings::vfio_device_ops);

// SAFETY: the table is immutable after compilation; the vfio core only reads
// it, from any thread, and the name it points to is a static string.
unsafe impl Sync for OpsTable {}

/// `init`: vfio-pci-core's own init, then our state.
///
/// # Safety
///
/// Called by the vfio core, once, on a zeroed allocation made with our ops.
unsafe extern "C" fn ivf_init_dev(vdev: *mut vfio_device) -> c_int {
    // SAFETY: the vfio core calls `init` once, on the zeroed allocation.
    let ret = unsafe { bindings::vfio_pci_core_init_dev(vdev) };
    if ret != 0 {
        return ret;
    }
    let core = vdev.cast::<CoreDevice>();
    // SAFETY: `vfio_pci_core_init_dev` has set `pdev`: the `CoreDevice`
    // invariant holds from here on.
    let pci = unsafe { (*core).pci() };
    let Some(vf) = ids::lookup(pci.vendor_id().as_raw(), pci.device_id()) else {
        // Cannot happen through our ID table; refuse rather than guess.
        // SAFETY: undo the successful core init above.
        unsafe { bindings::vfio_pci_core_release_dev(vdev) };
        return ENODEV.to_errno();
    };
    let ivf = vdev.cast::<IvfDevice>();
    // SAFETY: our allocation, which never moves; `state` is uninitialised
    // (zeroed) and nothing reads it before `init` returns.
    unsafe {
        let state = ivf
            .cast::<u8>()
            .add(IvfDevice::STATE_OFFSET)
            .cast::<VfState>();
        pin_init::raw_init(state, VfState::new(vf));
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
    let ivf = vdev.cast::<IvfDevice>();
    // SAFETY: called once after a successful `init`; close has ended every
    // transfer, so dropping the state frees nothing live.
    unsafe {
        let state = ivf.cast::<u8>().add(IvfDevice::STATE_OFFSET);
        core::ptr::drop_in_place(state.cast::<VfState>());
        bindings::vfio_pci_core_release_dev(vdev);
    }
}

/// `open_device`: enable the PCI device for the user (first open only).
///
/// # Safety
///
/// Called by the vfio core for one of our devices, under its open lock.
unsafe extern "C" fn ivf_open_device(vdev: *mut vfio_device) -> c_int {
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { ivf(vdev) };
    let core = ivf.core().raw();
    // SAFETY: `core` is registered; enable/finish_enable pair as vfio-pci does.
    unsafe {
        let ret = bindings::vfio_pci_core_enable(core);
        if ret != 0 {
            return ret;
        }
        bindings::vfio_pci_core_finish_enable(core);
        // The mode is fixed while open: log_ops only in device-logging mode
        // (otherwise the DMA_LOGGING features answer ENOTTY).
        (*vdev).log_ops = if ivf.switch(Switch::DirtyTracking) {
            &IVF_LOG_OPS
        } else {
            core::ptr::null()
        };
    }
    ivf.opened();
    0
}

/// `close_device`: end any transfer (its fds fail from now on), then close.
///
/// # Safety
///
/// Called by the vfio core for one of our devices, on last close.
unsafe extern "C" fn ivf_close_device(vdev: *mut vfio_device) {
    // SAFETY: vfio calls this for our device.
    unsafe { ivf(vdev) }.closing();
    // SAFETY: the core close that `open_device` pairs with.
    unsafe { bindings::vfio_pci_core_close_device(vdev) };
}

/// `read`: the core's, shown to the mailbox snoop on the mailbox page.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
unsafe extern "C" fn ivf_read(
    vdev: *mut vfio_device,
    buf: *mut u8,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: vfio calls this for our device, with its position.
    let (ivf, pos) = unsafe { (ivf(vdev), &mut *ppos) };
    ivf.read(UserPtr::from_ptr(buf.cast()), count, pos)
}

/// `write`: the trapped pages' writes go through the snoop and the tracker.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
unsafe extern "C" fn ivf_write(
    vdev: *mut vfio_device,
    buf: *const u8,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: vfio calls this for our device, with its position.
    let (ivf, pos) = unsafe { (ivf(vdev), &mut *ppos) };
    ivf.write(UserPtr::from_ptr(buf.cast_mut().cast()), count, pos)
}

/// `ioctl`: vfio-pci-core's, except `VFIO_DEVICE_IOEVENTFD`, which is
/// refused (EPERM): the core would write registers itself, past the mailbox
/// snoop and the dirty tracker, and the core reads its argument from user
/// memory again after any check of ours (a second thread could move the
/// offset onto a trapped page in between). QEMU uses ioeventfds only for
/// its quirks of other vendors' devices.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
unsafe extern "C" fn ivf_ioctl(vdev: *mut vfio_device, cmd: c_uint, arg: c_ulong) -> c_long {
    if cmd == bindings::ivf_uapi_IVF_VFIO_DEVICE_IOEVENTFD {
        // SAFETY: vfio calls this for our device.
        return trap::refuse_ioeventfd(unsafe { ivf(vdev) }).to_errno() as c_long;
    }
    // SAFETY: the vfio core's own ioctl, with its own arguments.
    unsafe { bindings::vfio_pci_core_ioctl(vdev, cmd, arg) }
}

/// `mmap`: a trapped page is never mapped; the rest is the core's.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
unsafe extern "C" fn ivf_mmap(vdev: *mut vfio_device, vma: *mut bindings::vm_area_struct) -> c_int {
    // SAFETY: the core hands us a live VMA for this call; its start and end
    // are the active members of their unions.
    let (pgoff, start, end) = unsafe {
        let span = &(*vma).__bindgen_anon_1.__bindgen_anon_1;
        ((*vma).vm_pgoff as u64, span.vm_start, span.vm_end)
    };
    let at = RegionPos::of(pgoff << kernel::page::PAGE_SHIFT);
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { ivf(vdev) };
    if !trap::mmap_allowed(ivf, at, (end - start) as u64) {
        // The sparse-mmap capability says which parts map: not this one.
        return EINVAL.to_errno();
    }
    // SAFETY: the core's own mmap for everything else.
    unsafe { bindings::vfio_pci_core_mmap(vdev, vma) }
}

/// The sparse-mmap capability with room for the areas `trap` makes.
#[repr(C)]
#[derive(Default)]
struct SparseMmap {
    cap: bindings::vfio_region_info_cap_sparse_mmap,
    areas: [bindings::vfio_region_sparse_mmap_area; trap::MAX_AREAS],
}

/// `get_region_info_caps`: the core's answer, plus for BAR0 a sparse-mmap
/// capability that leaves out the trapped pages.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
unsafe extern "C" fn ivf_get_region_info_caps(
    vdev: *mut vfio_device,
    info: *mut bindings::vfio_region_info,
    caps: *mut bindings::vfio_info_cap,
) -> c_int {
    // SAFETY: the core's own answer first.
    let ret = unsafe { bindings::vfio_pci_ioctl_get_region_info(vdev, info, caps) };
    // SAFETY: `info` is the core's, filled in above.
    let info = unsafe { &mut *info };
    if ret != 0
        || info.index != bindings::VFIO_PCI_BAR0_REGION_INDEX
        || info.flags & bindings::VFIO_REGION_INFO_FLAG_MMAP == 0
    {
        return ret;
    }
    // SAFETY: vfio calls this for our device.
    let ivf = unsafe { ivf(vdev) };
    let (areas, nr) = trap::mappable_areas(ivf, info.size);
    if nr == 0 {
        // Nothing left to map.
        info.flags &= !bindings::VFIO_REGION_INFO_FLAG_MMAP;
        return 0;
    }
    let mut cap = SparseMmap::default();
    cap.cap.header.id = bindings::VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16;
    cap.cap.header.version = 1;
    cap.cap.nr_areas = nr as u32;
    for (slot, &(offset, size)) in cap.areas.iter_mut().zip(&areas[..nr]) {
        *slot = bindings::vfio_region_sparse_mmap_area { offset, size };
    }
    let len = size_of::<bindings::vfio_region_info_cap_sparse_mmap>()
        + nr * size_of::<bindings::vfio_region_sparse_mmap_area>();
    // SAFETY: `cap` holds a complete capability of `len` bytes (the areas
    // follow the header as its flexible array); the core copies it.
    unsafe { bindings::vfio_info_add_capability(caps, (&raw mut cap).cast(), len) }
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
    match unsafe { ivf(vdev) }.set_state(new) {
        Ok(Some(f)) => f.into_raw(),
        Ok(None) => core::ptr::null_mut(),
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
) -> c_int {
    // SAFETY: vfio calls this for our device; `out` is its result variable.
    unsafe { *out = ivf(vdev).get_state() };
    0
}

/// `migration_get_data_size`.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
unsafe extern "C" fn ivf_get_data_size(vdev: *mut vfio_device, out: *mut c_ulong) -> c_int {
    // SAFETY: vfio calls this for our device; `out` is its result variable.
    unsafe { *out = ivf(vdev).data_size() as c_ulong };
    0
}

static IVF_MIG_OPS: bindings::vfio_migration_ops = bindings::vfio_migration_ops {
    migration_set_state: Some(ivf_set_state),
    migration_get_state: Some(ivf_get_state),
    migration_get_data_size: Some(ivf_get_data_size),
};

/// `log_start`.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices, with its checked
/// interval tree of `nnodes` ranges.
unsafe extern "C" fn ivf_log_start(
    vdev: *mut vfio_device,
    ranges: *mut bindings::rb_root_cached,
    nnodes: u32,
    page_size: *mut u64,
) -> c_int {
    let copy = |pairs: &mut [u64]| {
        // SAFETY: `pairs` is writable for its length; `ranges` is the
        // core's tree for this call.
        let n = unsafe {
            bindings::ivf_log_ranges(ranges, pairs.as_mut_ptr(), (pairs.len() / 2) as u32)
        };
        n as usize
    };
    // SAFETY: vfio calls this for our device; `page_size` is its in/out value.
    let (ivf, page_size) = unsafe { (ivf(vdev), &mut *page_size) };
    match dirty::start(ivf, nnodes, copy, *page_size) {
        Ok(chosen) => {
            *page_size = chosen;
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `log_stop`.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices.
unsafe extern "C" fn ivf_log_stop(vdev: *mut vfio_device) -> c_int {
    // SAFETY: vfio calls this for our device.
    dirty::stop(unsafe { ivf(vdev) });
    0
}

/// `log_read_and_clear`: one window of a report.
///
/// # Safety
///
/// Called by the vfio core for one of our open devices, with the report's
/// bitmap iterator.
unsafe extern "C" fn ivf_log_read_and_clear(
    vdev: *mut vfio_device,
    iova: c_ulong,
    length: c_ulong,
    bitmap: *mut bindings::iova_bitmap,
) -> c_int {
    let mut set = |at: u64, len: u64| {
        // SAFETY: `bitmap` is the core's iterator for this window; the
        // tracker clips every span to the window.
        unsafe { bindings::ivf_log_set(bitmap, at as usize, len as usize) }
    };
    // SAFETY: vfio calls this for our device.
    match dirty::report(unsafe { ivf(vdev) }, iova as u64, length as u64, &mut set) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The log ops of a device in device-logging mode.
static IVF_LOG_OPS: bindings::vfio_log_ops = bindings::vfio_log_ops {
    log_start: Some(ivf_log_start),
    log_stop: Some(ivf_log_stop),
    log_read_and_clear: Some(ivf_log_read_and_clear),
};

/// The iommufd ops, where the kernel has iommufd: vfio-pci-core's physical
/// ones, wrapped by the shim so that the device's guest-memory accessor
/// follows its attachment (`struct ivf_dma`). Without iommufd (Debian's
/// kernels: `CONFIG_IOMMUFD` off) the device is reached through the
/// group/container only.
mod iommufd {
    use super::vfio_device;
    use kernel::ffi::c_int;

    type BindFn = unsafe extern "C" fn(
        *mut vfio_device,
        *mut super::bindings::iommufd_ctx,
        *mut u32,
    ) -> c_int;
    type DeviceFn = unsafe extern "C" fn(*mut vfio_device);
    type IoasFn = unsafe extern "C" fn(*mut vfio_device, *mut u32) -> c_int;

    #[cfg(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m"))]
    mod on {
        use super::super::{bindings, ivf, vfio_device};
        use kernel::ffi::c_int;

        /// `bind_iommufd`.
        ///
        /// # Safety
        ///
        /// Called by the vfio core for one of our devices, under its
        /// dev_set->lock, with a valid context and output pointer.
        pub(super) unsafe extern "C" fn bind(
            vdev: *mut vfio_device,
            ictx: *mut bindings::iommufd_ctx,
            id: *mut u32,
        ) -> c_int {
            // SAFETY: vfio calls this for our device; the accessor is
            // changed under dev_set->lock, which the core holds.
            unsafe { bindings::ivf_iommufd_bind(vdev, ictx, id, ivf(vdev).dma_access().raw()) }
        }

        /// `unbind_iommufd`.
        ///
        /// # Safety
        ///
        /// As [`bind`], for a bound device.
        pub(super) unsafe extern "C" fn unbind(vdev: *mut vfio_device) {
            // SAFETY: as in `bind`.
            unsafe { bindings::ivf_iommufd_unbind(vdev, ivf(vdev).dma_access().raw()) }
        }

        /// `attach_ioas`.
        ///
        /// # Safety
        ///
        /// As [`bind`], for a bound device; `pt_id` is valid.
        pub(super) unsafe extern "C" fn attach(vdev: *mut vfio_device, pt_id: *mut u32) -> c_int {
            // SAFETY: as in `bind`.
            unsafe { bindings::ivf_iommufd_attach_ioas(vdev, pt_id, ivf(vdev).dma_access().raw()) }
        }

        /// `detach_ioas`.
        ///
        /// # Safety
        ///
        /// As [`bind`], for a bound device.
        pub(super) unsafe extern "C" fn detach(vdev: *mut vfio_device) {
            // SAFETY: as in `bind`.
            unsafe { bindings::ivf_iommufd_detach_ioas(vdev, ivf(vdev).dma_access().raw()) }
        }
    }

    #[cfg(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m"))]
    pub(super) const BIND: Option<BindFn> = Some(on::bind);
    #[cfg(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m"))]
    pub(super) const UNBIND: Option<DeviceFn> = Some(on::unbind);
    #[cfg(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m"))]
    pub(super) const ATTACH_IOAS: Option<IoasFn> = Some(on::attach);
    #[cfg(any(CONFIG_IOMMUFD = "y", CONFIG_IOMMUFD = "m"))]
    pub(super) const DETACH_IOAS: Option<DeviceFn> = Some(on::detach);

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
    ioctl: Some(ivf_ioctl),
    get_region_info_caps: Some(ivf_get_region_info_caps),
    device_feature: Some(bindings::vfio_pci_core_ioctl_feature),
    read: Some(ivf_read),
    write: Some(ivf_write),
    mmap: Some(ivf_mmap),
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
