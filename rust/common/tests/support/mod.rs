// SPDX-License-Identifier: GPL-2.0

//! What the integration tests share: register and memory doubles of a
//! device (`io`), the PF side of a VF's mailbox (`mbx`) and the stream
//! builder (`stream`). A test takes it with `mod support;`. The fuzz
//! targets and the samples include the files they need with `#[path]`
//! (they are not part of the shared crate, so never of the kernel module).

pub mod io;
pub mod mbx;
pub mod stream;
