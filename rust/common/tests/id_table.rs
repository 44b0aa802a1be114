// SPDX-License-Identifier: GPL-2.0

//! The module's C ID table (rust/shim.c) must list exactly the VFs of
//! `ivf_common::ids::SUPPORTED_VFS`, in the same order.

use ivf_common::ids::SUPPORTED_VFS;

#[test]
fn shim_table_matches_shared_table() {
    let shim = include_str!("../../shim.c");
    let ids: Vec<u16> = shim
        .lines()
        .filter_map(|l| l.split("PCI_VENDOR_ID_INTEL, 0x").nth(1))
        .map(|rest| u16::from_str_radix(&rest[..4], 16).expect("hex device id"))
        .collect();
    let expected: Vec<u16> = SUPPORTED_VFS.iter().map(|v| v.device_id).collect();
    assert_eq!(ids, expected);
}
