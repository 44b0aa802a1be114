// SPDX-License-Identifier: GPL-2.0

//! Kernel-log lines a VFIO user can trigger, bounded. A user that loops an
//! ioctl the driver refuses (a bad stream, a STOP without one, a ring at an
//! unmapped address) must not fill the host's log: each such line goes
//! through a [`LogLimit`], which lets [`BURST`] lines through in each
//! [`INTERVAL_NS`] window and then says how many it held back. Lines only an
//! administrator causes (bind, module parameters) are not limited.

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use crate::ffi::vfio_core::monotonic_ns;

/// Lines printed in one window, at most.
pub(crate) const BURST: u32 = 5;
/// The window: a minute (the kernel's default is 10 lines in 5 s, which a
/// loop of refusals running for minutes would still turn into hundreds).
pub(crate) const INTERVAL_NS: i64 = 60_000_000_000;

/// A window of log lines: lock-free, so it can be used under any lock.
pub(crate) struct LogLimit {
    /// When the window began (monotonic ns); far in the past at first.
    start_ns: AtomicI64,
    printed: AtomicU32,
    held_back: AtomicU32,
}

impl LogLimit {
    /// A limiter whose first line goes through.
    pub(crate) const fn new() -> Self {
        LogLimit {
            start_ns: AtomicI64::new(i64::MIN / 2),
            printed: AtomicU32::new(0),
            held_back: AtomicU32::new(0),
        }
    }

    /// Whether a line may be printed now: `Some(n)` if so, `n` being the
    /// lines held back since the last one printed (to be said first);
    /// `None` to stay quiet.
    pub(crate) fn admit(&self) -> Option<u32> {
        let now = monotonic_ns();
        let start = self.start_ns.load(Ordering::Acquire);
        if now.saturating_sub(start) >= INTERVAL_NS
            && self
                .start_ns
                .compare_exchange(start, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.printed.store(1, Ordering::Release);
            return Some(self.held_back.swap(0, Ordering::AcqRel));
        }
        if self.printed.fetch_add(1, Ordering::AcqRel) < BURST {
            Some(0)
        } else {
            self.held_back.fetch_add(1, Ordering::AcqRel);
            None
        }
    }
}

/// The limiter of lines where no VF's state is at hand: migration files
/// (which may outlive their device) and the PF settings' checks.
pub(crate) static SHARED_LINES: LogLimit = LogLimit::new();

/// `dev_LEVEL!(dev, ...)` through the limiter `limit`: a line a VFIO user
/// can cause. Says first how many lines the limiter held back, if any.
macro_rules! user_line {
    ($limit:expr, $level:ident, $dev:expr, $($arg:tt)*) => {
        if let Some(held) = $limit.admit() {
            if held > 0 {
                kernel::dev_info!($dev, "{} similar lines held back\n", held);
            }
            kernel::$level!($dev, $($arg)*);
        }
    };
}
pub(crate) use user_line;

/// `dev_LEVEL!` for a line about VF `ivf` that its user can cause, through
/// the VF's own limiter.
macro_rules! vf_line {
    ($ivf:expr, $level:ident, $($arg:tt)*) => {
        $crate::log_limit::user_line!($ivf.lines(), $level, $ivf.dev(), $($arg)*)
    };
}
pub(crate) use vf_line;
