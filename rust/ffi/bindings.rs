// SPDX-License-Identifier: GPL-2.0

//! bindgen output for `linux/vfio.h`, `linux/vfio_pci_core.h` and our C shim
//! (`shim.h`). Types not defined here come from `kernel::bindings`.

// `unknown_lints`: newer bindgen marks bitfield accessors with lints
// (`unnecessary_transmutes`) that the kernel's rustc may predate.
#![allow(
    unknown_lints,
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::undocumented_unsafe_blocks
)]

use kernel::ffi;
include!("../vfio_bindings_generated.rs");
