// SPDX-License-Identifier: GPL-2.0

//! Fault injection for tests: the module parameters `fault_inject_*` set
//! the start, debugfs `intel_vf_vfio_pci/fault_inject_*` flips them at any
//! time (shim.c).

use super::bindings;

/// A fault a test can inject.
#[derive(Copy, Clone)]
pub(crate) enum Fault {
    /// Save streams of the next major version, as a newer driver would.
    FutureStream,
    /// Every quiesce fails (ETIMEDOUT).
    Quiesce,
}

/// Creates the debugfs switches from the parameters (module init).
pub(crate) fn init(future_stream: bool, quiesce: bool) {
    // SAFETY: called once at module init, before any device is probed.
    unsafe { bindings::ivf_faults_init(future_stream, quiesce) }
}

/// Removes the debugfs switches (module exit).
pub(crate) fn exit() {
    // SAFETY: called once at module exit, after `init`.
    unsafe { bindings::ivf_faults_exit() }
}

/// Whether `fault` is injected now.
pub(crate) fn injected(fault: Fault) -> bool {
    let f = match fault {
        Fault::FutureStream => bindings::ivf_fault_IVF_FAULT_FUTURE_STREAM,
        Fault::Quiesce => bindings::ivf_fault_IVF_FAULT_QUIESCE,
    };
    // SAFETY: reads a flag; any value is valid.
    unsafe { bindings::ivf_fault_injected(f) }
}
