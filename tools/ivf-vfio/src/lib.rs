// SPDX-License-Identifier: GPL-2.0

//! Userspace VFIO access for `vfmig` and the samples.
//!
//! - [`sysfs`]: find VFs, their PF, driver, IOMMU group and vfio cdev;
//! - [`Device`]: a VFIO device opened through the iommufd cdev
//!   (`/dev/vfio/devices/vfioN` + `/dev/iommu`) or the legacy group and
//!   container (`/dev/vfio/N` + `/dev/vfio/vfio`): region access, BAR mmap,
//!   reset, features, DMA dirty logging ([`dirty_iovas`] reads a report).

#![warn(missing_docs)]

pub mod sysfs;
pub mod uapi;

mod device;
mod error;

pub use device::{
    dirty_iovas, precopy_info, read_data, write_data, Backend, Bar, Device, MigrationFlags,
};
pub use error::{Error, Result};
