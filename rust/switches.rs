// SPDX-License-Identifier: GPL-2.0

//! The per-VF switches: one row of [`SWITCHES`] each (its sysfs name, its
//! two words, the module parameter that gives newly bound VFs their
//! default, whether it may change while a user has the VF open, and when
//! this kernel cannot turn it on). The shim makes one sysfs attribute per
//! row and serves them all with one show and one store (`shim.c`); the
//! parts read a switch with [`IvfDevice::switch`]. Adding a switch is one
//! variant of [`Switch`] and one row (plus its module parameter).

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;

use crate::device::IvfDevice;
use crate::ffi::vfio_core::device_logging_supported;
use crate::module_parameters;

/// A per-VF switch: the index of its row in [`SWITCHES`].
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Switch {
    /// `dirty_tracking`: the driver logs the VF's DMA (RX tail page trapped).
    DirtyTracking = 0,
    /// `guest_capability`: the guest sees the migration capability.
    GuestCapability = 1,
    /// `announce`: a guest that arrived is announced on the PF's wire.
    Announce = 2,
}

impl Switch {
    /// How many switches there are.
    pub(crate) const COUNT: usize = 3;
}

/// When a switch may change.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) enum Changes {
    /// Only while no user has the VF open (what it changes is fixed for an
    /// open: the trapped pages, the config space the user sees).
    WhileClosed,
    /// At any time (read again at its next use).
    Any,
}

/// One switch's row.
pub(crate) struct Row {
    /// Which switch (its place in the table, checked at build).
    pub(crate) switch: Switch,
    /// Its sysfs attribute.
    pub(crate) name: &'static CStr,
    /// The words sysfs shows and takes: on, then off.
    pub(crate) words: [&'static CStr; 2],
    /// The module parameter: the default of a newly bound VF.
    pub(crate) default: fn() -> bool,
    /// When it may change.
    pub(crate) changes: Changes,
    /// Why this kernel cannot turn it on, if it cannot.
    pub(crate) unsupported: fn() -> Option<&'static str>,
}

fn never() -> Option<&'static str> {
    None
}

/// Every switch.
pub(crate) static SWITCHES: [Row; Switch::COUNT] = [
    Row {
        switch: Switch::DirtyTracking,
        name: c"dirty_tracking",
        words: [c"device", c"none"],
        default: || module_parameters::device_dirty_tracking.value() && device_logging_supported(),
        changes: Changes::WhileClosed,
        unsupported: || {
            (!device_logging_supported()).then_some(
                "this kernel has no iova_bitmap (CONFIG_IOMMUFD_DRIVER), the vfio core cannot report DMA logging",
            )
        },
    },
    Row {
        switch: Switch::GuestCapability,
        name: c"guest_capability",
        words: [c"on", c"off"],
        default: || module_parameters::guest_capability.value(),
        changes: Changes::WhileClosed,
        unsupported: never,
    },
    Row {
        switch: Switch::Announce,
        name: c"announce",
        words: [c"on", c"off"],
        default: || module_parameters::announce.value(),
        changes: Changes::Any,
        unsupported: never,
    },
];

// Each row sits at its switch's index.
const _: () = {
    let mut i = 0;
    while i < Switch::COUNT {
        assert!(SWITCHES[i].switch as usize == i);
        i += 1;
    }
};

/// The switches of one VF.
pub(crate) struct Switches([AtomicBool; Switch::COUNT]);

impl Switches {
    /// Each at its default (the module parameters now).
    pub(crate) fn defaults() -> Self {
        Switches(core::array::from_fn(|i| {
            AtomicBool::new((SWITCHES[i].default)())
        }))
    }

    /// Whether `s` is on.
    pub(crate) fn get(&self, s: Switch) -> bool {
        self.0[s as usize].load(Ordering::Acquire)
    }

    /// Turns `s` on or off; the caller obeyed its row's [`Changes`].
    pub(crate) fn set(&self, s: Switch, on: bool) {
        self.0[s as usize].store(on, Ordering::Release);
    }
}

/// The switch at sysfs index `i`, if any.
pub(crate) fn row(i: u32) -> Option<&'static Row> {
    SWITCHES.get(i as usize)
}

/// What was written to `row`'s attribute (`text`, a trailing newline
/// allowed): on or off. `EINVAL` for another word; `EOPNOTSUPP` for "on"
/// where this kernel cannot (said in the log: the administrator asked).
pub(crate) fn parse(ivf: &IvfDevice, row: &Row, text: &[u8]) -> Result<bool> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let on = if text == row.words[0].to_bytes() {
        true
    } else if text == row.words[1].to_bytes() {
        false
    } else {
        return Err(EINVAL);
    };
    if on {
        if let Some(why) = (row.unsupported)() {
            dev_info!(
                ivf.dev(),
                "{} {}: {}\n",
                row.name.to_str().unwrap_or("?"),
                row.words[0].to_str().unwrap_or("?"),
                why
            );
            return Err(EOPNOTSUPP);
        }
    }
    Ok(on)
}
