// SPDX-License-Identifier: GPL-2.0

//! The parts of `include/uapi/linux/vfio.h` and `iommufd.h` we use.
//!
//! Every VFIO and iommufd ioctl is `_IO(';', nr)`: no size is encoded, the
//! structures carry their own `argsz`/`size`.

#![allow(missing_docs)]

const fn io(nr: u32) -> libc::c_ulong {
    ((b';' as u32) << 8 | nr) as libc::c_ulong
}

const VFIO_BASE: u32 = 100;
pub const VFIO_GET_API_VERSION: libc::c_ulong = io(VFIO_BASE);
pub const VFIO_CHECK_EXTENSION: libc::c_ulong = io(VFIO_BASE + 1);
pub const VFIO_SET_IOMMU: libc::c_ulong = io(VFIO_BASE + 2);
pub const VFIO_GROUP_GET_STATUS: libc::c_ulong = io(VFIO_BASE + 3);
pub const VFIO_GROUP_SET_CONTAINER: libc::c_ulong = io(VFIO_BASE + 4);
pub const VFIO_GROUP_GET_DEVICE_FD: libc::c_ulong = io(VFIO_BASE + 6);
pub const VFIO_DEVICE_GET_INFO: libc::c_ulong = io(VFIO_BASE + 7);
pub const VFIO_DEVICE_GET_REGION_INFO: libc::c_ulong = io(VFIO_BASE + 8);
pub const VFIO_DEVICE_RESET: libc::c_ulong = io(VFIO_BASE + 11);
pub const VFIO_DEVICE_FEATURE: libc::c_ulong = io(VFIO_BASE + 17);
pub const VFIO_DEVICE_BIND_IOMMUFD: libc::c_ulong = io(VFIO_BASE + 18);
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: libc::c_ulong = io(VFIO_BASE + 19);
pub const VFIO_IOMMU_MAP_DMA: libc::c_ulong = io(VFIO_BASE + 13);
pub const VFIO_IOMMU_UNMAP_DMA: libc::c_ulong = io(VFIO_BASE + 14);

pub const IOMMU_DESTROY: libc::c_ulong = io(0x80);
pub const IOMMU_IOAS_ALLOC: libc::c_ulong = io(0x81);
pub const IOMMU_IOAS_MAP: libc::c_ulong = io(0x85);
pub const IOMMU_IOAS_UNMAP: libc::c_ulong = io(0x86);
pub const IOMMU_HWPT_ALLOC: libc::c_ulong = io(0x89);

pub const VFIO_API_VERSION: i32 = 0;
pub const VFIO_TYPE1V2_IOMMU: libc::c_ulong = 3;

pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1 << 0;

pub const VFIO_DEVICE_FLAGS_RESET: u32 = 1 << 0;
pub const VFIO_DEVICE_FLAGS_PCI: u32 = 1 << 1;
pub const VFIO_DEVICE_FLAGS_CDEV: u32 = 1 << 9;

pub const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
pub const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;

pub const VFIO_REGION_INFO_FLAG_READ: u32 = 1 << 0;
pub const VFIO_REGION_INFO_FLAG_WRITE: u32 = 1 << 1;
pub const VFIO_REGION_INFO_FLAG_MMAP: u32 = 1 << 2;
pub const VFIO_REGION_INFO_FLAG_CAPS: u32 = 1 << 3;
pub const VFIO_REGION_INFO_CAP_SPARSE_MMAP: u16 = 1;

pub const VFIO_DEVICE_FEATURE_GET: u32 = 1 << 16;
pub const VFIO_DEVICE_FEATURE_SET: u32 = 1 << 17;
pub const VFIO_DEVICE_FEATURE_PROBE: u32 = 1 << 18;
pub const VFIO_DEVICE_FEATURE_MIGRATION: u32 = 1;
pub const VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: u32 = 2;
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_START: u32 = 6;
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP: u32 = 7;
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: u32 = 8;
pub const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: u32 = 9;
pub const VFIO_MIG_GET_PRECOPY_INFO: libc::c_ulong = io(VFIO_BASE + 21);

/// `enum vfio_device_mig_state`.
pub mod mig {
    pub const ERROR: u32 = 0;
    pub const STOP: u32 = 1;
    pub const RUNNING: u32 = 2;
    pub const STOP_COPY: u32 = 3;
    pub const RESUMING: u32 = 4;
    pub const RUNNING_P2P: u32 = 5;
    pub const PRE_COPY: u32 = 6;
    pub const PRE_COPY_P2P: u32 = 7;

    /// The state's name as the uAPI spells it.
    pub fn name(state: u32) -> &'static str {
        match state {
            ERROR => "ERROR",
            STOP => "STOP",
            RUNNING => "RUNNING",
            STOP_COPY => "STOP_COPY",
            RESUMING => "RESUMING",
            RUNNING_P2P => "RUNNING_P2P",
            PRE_COPY => "PRE_COPY",
            PRE_COPY_P2P => "PRE_COPY_P2P",
            _ => "?",
        }
    }
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct VfioPrecopyInfo {
    pub argsz: u32,
    pub flags: u32,
    pub initial_bytes: u64,
    pub dirty_bytes: u64,
}

pub const VFIO_MIGRATION_STOP_COPY: u64 = 1 << 0;
pub const VFIO_MIGRATION_P2P: u64 = 1 << 1;
pub const VFIO_MIGRATION_PRE_COPY: u64 = 1 << 2;

pub const VFIO_DMA_MAP_FLAG_READ: u32 = 1 << 0;
pub const VFIO_DMA_MAP_FLAG_WRITE: u32 = 1 << 1;

pub const IOMMU_IOAS_MAP_FIXED_IOVA: u32 = 1 << 0;
pub const IOMMU_IOAS_MAP_WRITEABLE: u32 = 1 << 1;
pub const IOMMU_IOAS_MAP_READABLE: u32 = 1 << 2;

#[repr(C)]
#[derive(Default, Debug)]
pub struct VfioGroupStatus {
    pub argsz: u32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct VfioDeviceInfo {
    pub argsz: u32,
    pub flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
    pub cap_offset: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct VfioRegionInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub cap_offset: u32,
    pub size: u64,
    pub offset: u64,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct VfioDeviceBindIommufd {
    pub argsz: u32,
    pub flags: u32,
    pub iommufd: i32,
    pub out_devid: u32,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct VfioDeviceAttachIommufdPt {
    pub argsz: u32,
    pub flags: u32,
    pub pt_id: u32,
}

/// `struct vfio_device_feature` followed by its payload `T`: raw bytes
/// (`[u8; N]`) or a payload structure (8-byte aligned payloads start right
/// after `flags`, as in the uAPI).
#[repr(C)]
#[derive(Debug)]
pub struct VfioDeviceFeature<T> {
    pub argsz: u32,
    pub flags: u32,
    pub data: T,
}

/// `struct vfio_device_feature_dma_logging_control` (DMA_LOGGING_START).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct VfioDmaLoggingControl {
    pub page_size: u64,
    pub num_ranges: u32,
    pub reserved: u32,
    /// User pointer to `num_ranges` [`VfioDmaLoggingRange`]s.
    pub ranges: u64,
}

/// `struct vfio_device_feature_dma_logging_range`.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfioDmaLoggingRange {
    pub iova: u64,
    pub length: u64,
}

/// `struct vfio_device_feature_dma_logging_report` (DMA_LOGGING_REPORT).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct VfioDmaLoggingReport {
    pub iova: u64,
    pub length: u64,
    pub page_size: u64,
    /// User pointer to the bitmap: one bit per page, in u64 words.
    pub bitmap: u64,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct VfioIommuType1DmaMap {
    pub argsz: u32,
    pub flags: u32,
    pub vaddr: u64,
    pub iova: u64,
    pub size: u64,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct VfioIommuType1DmaUnmap {
    pub argsz: u32,
    pub flags: u32,
    pub iova: u64,
    pub size: u64,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct IommuIoasAlloc {
    pub size: u32,
    pub flags: u32,
    pub out_ioas_id: u32,
}

/// `struct iommu_hwpt_alloc`: a paging HWPT from an IOAS (no driver data).
#[repr(C)]
#[derive(Default, Debug)]
pub struct IommuHwptAlloc {
    pub size: u32,
    pub flags: u32,
    pub dev_id: u32,
    pub pt_id: u32,
    pub out_hwpt_id: u32,
    pub reserved: u32,
    pub data_type: u32,
    pub data_len: u32,
    pub data_uptr: u64,
    pub fault_id: u32,
    pub reserved2: u32,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct IommuIoasMap {
    pub size: u32,
    pub flags: u32,
    pub ioas_id: u32,
    pub reserved: u32,
    pub user_va: u64,
    pub length: u64,
    pub iova: u64,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct IommuIoasUnmap {
    pub size: u32,
    pub ioas_id: u32,
    pub iova: u64,
    pub length: u64,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct IommuDestroy {
    pub size: u32,
    pub id: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_uapi() {
        // _IO(';', 100) and _IO(';', 0x81), as the kernel headers compute them.
        assert_eq!(VFIO_GET_API_VERSION, 0x3b64);
        assert_eq!(VFIO_DEVICE_FEATURE, 0x3b75);
        assert_eq!(IOMMU_IOAS_ALLOC, 0x3b81);
        assert_eq!(IOMMU_HWPT_ALLOC, 0x3b89);
        assert_eq!(std::mem::size_of::<IommuHwptAlloc>(), 48);
    }

    #[test]
    fn struct_sizes_match_the_uapi() {
        assert_eq!(size_of::<VfioDeviceInfo>(), 24);
        assert_eq!(size_of::<VfioRegionInfo>(), 32);
        assert_eq!(size_of::<VfioDeviceBindIommufd>(), 16);
        assert_eq!(size_of::<VfioIommuType1DmaMap>(), 32);
        assert_eq!(size_of::<IommuIoasMap>(), 40);
        assert_eq!(size_of::<IommuIoasUnmap>(), 24);
        assert_eq!(size_of::<VfioDmaLoggingControl>(), 24);
        assert_eq!(size_of::<VfioDmaLoggingRange>(), 16);
        assert_eq!(size_of::<VfioDmaLoggingReport>(), 32);
        // The payload starts right after argsz and flags.
        assert_eq!(size_of::<VfioDeviceFeature<VfioDmaLoggingReport>>(), 40);
        assert_eq!(std::mem::offset_of!(VfioDeviceFeature<u64>, data), 8);
    }
}
