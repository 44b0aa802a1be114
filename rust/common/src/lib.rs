// SPDX-License-Identifier: GPL-2.0

//! Logic shared by the `intel_vf_vfio_pci` kernel module and the host tools.
//!
//! This crate uses `core` only and never allocates, so the same source is
//! compiled into the kernel module (as a plain module, see
//! `rust/ivf_driver.rs`) and, through Cargo, into `vfmig`, the samples and the
//! host tests. Nothing here touches hardware: it is tables and arithmetic.

// Sibling modules refer to each other as `super::x`, never `crate::x`:
// in the kernel build `crate` is the driver, not this crate.
//
// In the kernel build this file is a submodule and the kernel passes
// `-Zcrate-attr=no_std` itself; on the host it is the crate root.
#![cfg_attr(not(MODULE), no_std)]

pub mod admin;
pub mod announce;
pub mod bits;
pub mod bytes;
pub mod crc32c;
pub mod dirty;
pub mod errno;
pub mod guest_cap;
pub mod hal;
pub mod ids;
pub mod mbx;
pub mod queue_regs;
pub mod regs;
pub mod state;
pub mod stream;
pub mod tracker;
