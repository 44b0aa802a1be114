// SPDX-License-Identifier: GPL-2.0

//! The shared crate's errors in the kernel's terms: shown in kernel-log
//! lines ([`Msg`]) and returned as the errno each one names
//! ([`KernelError`]), so no caller drops the reason for a bare `EINVAL`.

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use kernel::prelude::*;

use crate::common::hal::HalError;
use crate::common::mbx::{MbxError, Uncarried};
use crate::common::stream::StreamError;

/// Shows a shared-crate value (core `Display`) in kernel messages.
pub(crate) struct Msg<T>(pub(crate) T);

impl<T: core::fmt::Display> kernel::fmt::Display for Msg<T> {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(&self.0, f)
    }
}

/// A shared-crate error that names its errno.
pub(crate) trait KernelError {
    /// The kernel error for it.
    fn kernel_error(&self) -> Error;
}

macro_rules! names_its_errno {
    ($($t:ty),*) => {
        $(impl KernelError for $t {
            fn kernel_error(&self) -> Error {
                Error::from_errno(-self.errno())
            }
        })*
    };
}

names_its_errno!(StreamError, HalError, MbxError, Uncarried);
