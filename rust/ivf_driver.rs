// SPDX-License-Identifier: GPL-2.0

//! intel_vf_vfio_pci: a vfio-pci variant driver for Intel SR-IOV NIC virtual
//! functions (ixgbe family: 82599, X540, X550, X550EM; igb family: 82576,
//! I350).
//!
//! Layers, top to bottom:
//! - [`ffi`]: every callback from the kernel (PCI, `vfio_device_ops`,
//!   migration and logging ops, the data files, sysfs) as a trampoline,
//!   every call into the kernel as a safe wrapper, and the bindings; the
//!   only place besides [`mmio`] with `unsafe`;
//! - [`device`]: one bound VF and its state; [`epoch`]: the one rule by
//!   which that state follows resets and users;
//! - [`lm`]: the migration FSM and its data files; [`trap`]: the trapped
//!   BAR0 pages; [`dirty`]: device DMA logging; [`pf_admin`]: PF settings;
//!   [`forget`]: the PF made to drop a guest's filters at open and close;
//!   [`announce`]: a guest that arrived announced on the PF's wire;
//! - [`mmio`]: BAR0 as the HAL's register interface;
//! - [`common`]: the shared no_std crate (HAL, register maps, stream,
//!   mailbox, tracker), also built on the host for the tools and tests.
//!
//! The PCI ID table, driver registration and fops tables are in `shim.c`
//! (macros).

use kernel::prelude::*;

// The shared crate serves the host tools too: not all of it is used here.
mod announce;
#[allow(dead_code, unreachable_pub, unused_imports)]
#[path = "common/src/lib.rs"]
mod common;
mod device;
mod dirty;
mod epoch;
mod ffi;
mod forget;
mod guest_cap;
mod lm;
mod log_limit;
mod mmio;
mod msg;
mod pf_admin;
mod profile;
mod switches;
mod trap;

module! {
    type: IntelVfVfioPci,
    name: "intel_vf_vfio_pci",
    authors: ["intel-vf-vfio developers"],
    description: "VFIO PCI variant driver for Intel 82599/X540/X550 and 82576/I350 VFs",
    license: "GPL",
    params: {
        admin_settings_owned_by_destination: bool {
            default: true,
            description: "Y (default): the destination's administrator owns the VF's settings (MAC, VLAN, spoofchk, trust, rate, link state); a stream whose settings differ is refused (EREMCHG) and nothing is changed. N: apply the stream's settings with ndo_set_vf_* (only where the stream's author is trusted with them)",
        },
        device_dirty_tracking: bool {
            default: true,
            description: "Default dirty-tracking mode of newly bound VFs (per VF: sysfs dirty_tracking). Y: the driver logs the VF's DMA (vfio_log_ops), trapping the RX tail page of BAR0. N: no trapping and no log_ops; dirty tracking is left to the IOMMU (iommufd) or the VMM",
        },
        guest_capability: bool {
            default: false,
            description: "Default of newly bound VFs (per VF: sysfs guest_capability, settable while the VF is not open). Y: the VF's config space shows the guest a Vendor Specific capability with the migration generation (Documentation/guest-capability.rst). N (default): the guest sees the VF's config space as it is, so hosts with and without the capability stay migration-compatible",
        },
        announce: bool {
            default: true,
            description: "Default of newly bound VFs (per VF: sysfs announce). Y (default): when a VF that took a migration stream goes to RUNNING, send RARP frames from each MAC of its guest (once untagged or in the port VLAN, once per guest VLAN; 5 rounds over 800 ms) on the PF's netdev, so switches learn the guest's new port at once. N: send nothing (for sites that forbid it)",
        },
        fault_inject_future_stream: bool {
            default: false,
            description: "Testing only: write migration streams of the next major version, as a newer driver would (every destination refuses them); debugfs intel_vf_vfio_pci/fault_inject_future_stream flips it at any time",
        },
        fault_inject_quiesce: bool {
            default: false,
            description: "Testing only: make every quiesce fail (ETIMEDOUT) to exercise the ERROR state; debugfs intel_vf_vfio_pci/fault_inject_quiesce flips it at any time",
        },
    },
}

/// The module: owns the PCI driver registration.
struct IntelVfVfioPci;

impl kernel::Module for IntelVfVfioPci {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        ffi::fault::init(
            module_parameters::fault_inject_future_stream.value(),
            module_parameters::fault_inject_quiesce.value(),
        );
        if let Err(e) = ffi::pci::register() {
            ffi::fault::exit();
            return Err(e);
        }
        Ok(IntelVfVfioPci)
    }
}

impl Drop for IntelVfVfioPci {
    fn drop(&mut self) {
        ffi::pci::unregister();
        ffi::fault::exit();
    }
}
