// SPDX-License-Identifier: GPL-2.0

//! Errors that say what was being done, to what, and what the kernel said.

use std::fmt;
use std::io;

/// An error from a VFIO or sysfs operation.
#[derive(Debug)]
pub struct Error {
    /// What was being done, e.g. "VFIO_DEVICE_BIND_IOMMUFD on /dev/vfio/devices/vfio0".
    pub what: String,
    /// The underlying OS error.
    pub source: io::Error,
    /// Whether the kernel gave `source` because another user holds the
    /// device open (see [`Error::is_busy`]).
    busy: bool,
}

impl Error {
    /// Wraps `source` with a description of the operation.
    pub fn new(what: impl Into<String>, source: io::Error) -> Self {
        Error {
            what: what.into(),
            source,
            busy: false,
        }
    }

    /// An error the kernel gave because another user holds the device open
    /// (see [`Error::is_busy`]); the errno is kept as the kernel gave it.
    pub fn busy(what: impl Into<String>, source: io::Error) -> Self {
        Error {
            busy: true,
            ..Error::new(what, source)
        }
    }

    /// Whether opening a device failed because another user holds it:
    /// [`Device::open_cdev`](crate::Device::open_cdev) and
    /// [`Device::open_group`](crate::Device::open_group) mark the errnos
    /// with which the kernel refuses a second user at each step. These are
    /// not all EBUSY: VFIO_DEVICE_BIND_IOMMUFD answers EINVAL when the
    /// device is bound to another iommufd already (`vfio_df_open()`: the
    /// cdev path allows one open), EBUSY when its group is open. The errno
    /// has other causes too (none of which this crate's arguments give), so
    /// a caller that reports "busy" should say who holds the device
    /// ([`PciDevice::vfio_holders`](crate::sysfs::PciDevice::vfio_holders)).
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// The errno, if the OS gave one.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// Captures `errno` right after a failed libc call.
    pub fn last_os(what: impl Into<String>) -> Self {
        Error::new(what, io::Error::last_os_error())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Result of this crate's operations.
pub type Result<T> = std::result::Result<T, Error>;
