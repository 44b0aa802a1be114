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
}

impl Error {
    /// Wraps `source` with a description of the operation.
    pub fn new(what: impl Into<String>, source: io::Error) -> Self {
        Error {
            what: what.into(),
            source,
        }
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
