// SPDX-License-Identifier: GPL-2.0

//! The VFs this driver serves, and the device family each belongs to.
//!
//! The PCI ID table of the module (`rust/shim.c`) lists the same devices; the
//! host test `tests/id_table.rs` keeps the two equal.

/// PCI vendor ID of Intel.
pub const PCI_VENDOR_ID_INTEL: u16 = 0x8086;

/// A device family: VFs that share a register map, quiesce and save/restore
/// sequences and a PF mailbox protocol.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Family {
    /// VFs of the ixgbe PF driver: 82599, X540, X550 and X550EM.
    Ixgbe = 1,
    /// VFs of the igb PF driver: 82576 (emulated by QEMU) and I350.
    Igb = 2,
}

impl Family {
    /// Every family, in wire-code order.
    pub const ALL: [Family; 2] = [Family::Ixgbe, Family::Igb];

    /// Short lower-case name, as shown by `vfmig` and in kernel messages.
    pub const fn name(self) -> &'static str {
        match self {
            Family::Ixgbe => "ixgbe",
            Family::Igb => "igb",
        }
    }

    /// The family with wire code `code`, if any.
    pub const fn from_code(code: u8) -> Option<Family> {
        match code {
            1 => Some(Family::Ixgbe),
            2 => Some(Family::Igb),
            _ => None,
        }
    }
}

/// One supported VF device ID.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VfDevice {
    /// PCI device ID of the VF (vendor is always Intel).
    pub device_id: u16,
    /// Family the VF belongs to.
    pub family: Family,
    /// Marketing name of the controller the VF belongs to.
    pub name: &'static str,
}

const fn vf(device_id: u16, family: Family, name: &'static str) -> VfDevice {
    VfDevice {
        device_id,
        family,
        name,
    }
}

/// Every VF the module binds to, in the order of the module's ID table.
pub const SUPPORTED_VFS: [VfDevice; 7] = [
    vf(0x10ed, Family::Ixgbe, "82599 VF"),
    vf(0x1515, Family::Ixgbe, "X540 VF"),
    vf(0x1565, Family::Ixgbe, "X550 VF"),
    vf(0x15a8, Family::Ixgbe, "X550EM_x VF"),
    vf(0x15c5, Family::Ixgbe, "X550EM_a VF"),
    vf(0x10ca, Family::Igb, "82576 VF"),
    vf(0x1520, Family::Igb, "I350 VF"),
];

/// Looks up a VF by PCI vendor and device ID.
pub fn lookup(vendor: u16, device: u16) -> Option<&'static VfDevice> {
    if vendor != PCI_VENDOR_ID_INTEL {
        return None;
    }
    SUPPORTED_VFS.iter().find(|vf| vf.device_id == device)
}

/// A PF whose VFs are in [`SUPPORTED_VFS`]: its device ID and the
/// controller's name (what a test run's KTAP header names).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PfDevice {
    /// PCI device ID of the PF (vendor is always Intel).
    pub device_id: u16,
    /// Family its VFs belong to.
    pub family: Family,
    /// The controller.
    pub name: &'static str,
}

const fn pf(device_id: u16, family: Family, name: &'static str) -> PfDevice {
    PfDevice {
        device_id,
        family,
        name,
    }
}

/// PFs of the supported VFs that the test beds and tools name (QEMU's igb
/// is an 82576; the emulated 82599 is the SFP+ 0x10fb).
pub const KNOWN_PFS: [PfDevice; 8] = [
    pf(0x10f7, Family::Ixgbe, "82599"),
    pf(0x10fb, Family::Ixgbe, "82599"),
    pf(0x10fc, Family::Ixgbe, "82599"),
    pf(0x1557, Family::Ixgbe, "82599"),
    pf(0x1528, Family::Ixgbe, "X540"),
    pf(0x1563, Family::Ixgbe, "X550"),
    pf(0x10c9, Family::Igb, "82576"),
    pf(0x1521, Family::Igb, "I350"),
];

/// Looks up a PF by PCI vendor and device ID.
pub fn lookup_pf(vendor: u16, device: u16) -> Option<&'static PfDevice> {
    if vendor != PCI_VENDOR_ID_INTEL {
        return None;
    }
    KNOWN_PFS.iter().find(|pf| pf.device_id == device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_each_family() {
        assert_eq!(lookup(0x8086, 0x10ca).map(|v| v.family), Some(Family::Igb));
        assert_eq!(
            lookup(0x8086, 0x10ed).map(|v| v.family),
            Some(Family::Ixgbe)
        );
        // The PFs themselves are not ours, nor is another vendor's device.
        assert_eq!(lookup(0x8086, 0x10c9), None);
        assert_eq!(lookup(0x15b3, 0x10ca), None);
    }

    #[test]
    fn each_family_has_a_known_pf_and_none_is_a_vf() {
        for f in Family::ALL {
            assert!(KNOWN_PFS.iter().any(|p| p.family == f), "{f:?}");
        }
        for p in KNOWN_PFS {
            assert_eq!(lookup(PCI_VENDOR_ID_INTEL, p.device_id), None);
            assert_eq!(lookup_pf(PCI_VENDOR_ID_INTEL, p.device_id), Some(&p));
        }
        assert_eq!(lookup_pf(0x8086, 0x10ca), None, "a VF is no PF");
        assert_eq!(lookup_pf(0x15b3, 0x10c9), None);
    }

    #[test]
    fn family_codes_round_trip() {
        for f in Family::ALL {
            assert_eq!(Family::from_code(f as u8), Some(f));
        }
        assert_eq!(Family::from_code(0), None);
        assert_eq!(Family::from_code(3), None);
    }

    #[test]
    fn device_ids_are_unique() {
        for (i, a) in SUPPORTED_VFS.iter().enumerate() {
            for b in &SUPPORTED_VFS[i + 1..] {
                assert_ne!(a.device_id, b.device_id);
            }
        }
    }
}
