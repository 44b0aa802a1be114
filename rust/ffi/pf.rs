// SPDX-License-Identifier: GPL-2.0

//! The PF netdev's VF settings (`ndo_get_vf_config`, `ndo_set_vf_*`),
//! through the shim, which takes rtnl and finds the VF's PF and index.

use kernel::prelude::*;

use super::bindings::{self, ifla_vf_info, pci_dev};
use crate::common::admin::AdminField;

fn raw(pci: &kernel::pci::Device) -> *mut pci_dev {
    // `pci::Device` is a transparent wrapper of `struct pci_dev`.
    (&raw const *pci).cast_mut().cast()
}

/// The VF's settings at its PF; `EOPNOTSUPP`/`ENODEV` when its PF driver
/// has none to give.
pub(crate) fn get_vf_config(vf: &kernel::pci::Device) -> Result<ifla_vf_info> {
    let mut ivi = ifla_vf_info::default();
    // SAFETY: `vf` is a live PCI device; `ivi` lives across the call.
    kernel::error::to_result(unsafe { bindings::ivf_pf_get_vf_config(raw(vf), &mut ivi) })?;
    Ok(ivi)
}

/// Sets one of the VF's settings at its PF to its value in `ivi`.
pub(crate) fn set_vf_config(
    vf: &kernel::pci::Device,
    field: AdminField,
    ivi: &ifla_vf_info,
) -> Result {
    // The shim's numbering of the fields (shim.h).
    let field = match field {
        AdminField::Mac => bindings::ivf_admin_field_IVF_ADMIN_MAC,
        AdminField::Vlan => bindings::ivf_admin_field_IVF_ADMIN_VLAN,
        AdminField::SpoofChk => bindings::ivf_admin_field_IVF_ADMIN_SPOOFCHK,
        AdminField::Trust => bindings::ivf_admin_field_IVF_ADMIN_TRUST,
        AdminField::Rate => bindings::ivf_admin_field_IVF_ADMIN_RATE,
        AdminField::LinkState => bindings::ivf_admin_field_IVF_ADMIN_LINK_STATE,
    };
    // SAFETY: as in `get_vf_config`.
    kernel::error::to_result(unsafe { bindings::ivf_pf_set_vf_config(raw(vf), field, ivi) })
}
