// SPDX-License-Identifier: GPL-2.0

//! The Linux errno values the shared crate's errors name (positive; `core`
//! has no libc). One table for the stream's, the HAL's and the mailbox's
//! errors, so a number is written once.

/// I/O error: the device did not do what it was told.
pub const EIO: i32 = 5;
/// No such device.
pub const ENODEV: i32 = 19;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// File too large.
pub const EFBIG: i32 = 27;
/// Result out of range.
pub const ERANGE: i32 = 34;
/// No data available.
pub const ENODATA: i32 = 61;
/// Protocol error.
pub const EPROTO: i32 = 71;
/// Bad message.
pub const EBADMSG: i32 = 74;
/// Illegal byte sequence.
pub const EILSEQ: i32 = 84;
/// Message too long.
pub const EMSGSIZE: i32 = 90;
/// Protocol not available.
pub const ENOPROTOOPT: i32 = 92;
/// Protocol not supported.
pub const EPROTONOSUPPORT: i32 = 93;
/// Operation not supported.
pub const EOPNOTSUPP: i32 = 95;
/// Connection timed out.
pub const ETIMEDOUT: i32 = 110;
/// Remote I/O error.
pub const EREMOTEIO: i32 = 121;
