// SPDX-License-Identifier: GPL-2.0

//! The administrator's settings half of the PF-side state channel: read on
//! the source with `ndo_get_vf_config`, and on the destination either
//! applied with `ndo_set_vf_*` (the default) or, with the module parameter
//! `admin_settings_owned_by_destination=1`, compared and refused on any
//! difference. Both before the VF runs (Documentation/pf-channel.rst).

use kernel::prelude::*;

use crate::common::admin::{AdminConfig, AdminField};
use crate::common::bytes::copy_into;
use crate::vfio::{bindings, pci_dev};

fn to_ivi(c: &AdminConfig) -> bindings::ifla_vf_info {
    let mut mac = [0u8; 32];
    copy_into(&mut mac, &c.mac);
    bindings::ifla_vf_info {
        mac,
        vlan: u32::from(c.vlan),
        qos: u32::from(c.qos),
        vlan_proto: c.vlan_proto,
        spoofchk: u32::from(c.spoofchk),
        trusted: u32::from(c.trusted),
        linkstate: u32::from(c.link_state),
        min_tx_rate: c.min_tx_rate,
        max_tx_rate: c.max_tx_rate,
        ..Default::default()
    }
}

/// The VF's settings at its PF, or `None` when its PF driver has none to give.
pub(crate) fn get(pdev: *mut pci_dev) -> Result<Option<AdminConfig>> {
    let mut ivi = bindings::ifla_vf_info::default();
    // SAFETY: `pdev` is a bound VF; the shim takes rtnl and finds its PF.
    let ret = unsafe { bindings::ivf_pf_get_vf_config(pdev, &mut ivi) };
    if ret == EOPNOTSUPP.to_errno() || ret == ENODEV.to_errno() {
        return Ok(None);
    }
    kernel::error::to_result(ret)?;
    let mut mac = [0u8; 6];
    copy_into(&mut mac, &ivi.mac);
    Ok(Some(AdminConfig {
        mac,
        vlan: (ivi.vlan & 0xfff) as u16,
        qos: (ivi.qos & 7) as u8,
        spoofchk: ivi.spoofchk == 1,
        trusted: ivi.trusted == 1,
        link_state: ivi.linkstate.min(2) as u8,
        vlan_proto: ivi.vlan_proto,
        min_tx_rate: ivi.min_tx_rate,
        max_tx_rate: ivi.max_tx_rate,
    }))
}

/// Gives the destination VF the source's settings `src`, or (when the
/// destination's administrator owns them) checks that it has them.
///
/// `vf_mac` is the MAC the VF set itself through its mailbox: that one is the
/// mailbox replay's to restore, and forcing it here would make it an
/// administrator's MAC the guest could no longer change.
pub(crate) fn apply(
    dev: &kernel::device::Device,
    pdev: *mut pci_dev,
    src: &AdminConfig,
    vf_mac: Option<[u8; 6]>,
    owned_by_destination: bool,
) -> Result {
    let Some(cur) = get(pdev)? else {
        dev_err!(
            dev,
            "the destination PF reports no VF settings; the source's cannot be honoured\n"
        );
        return Err(EOPNOTSUPP);
    };
    for field in AdminField::ALL {
        let Some((want, have)) = src.differs(&cur, field) else {
            continue;
        };
        if field == AdminField::Mac && (Some(src.mac) == vf_mac || src.mac == [0; 6]) {
            continue;
        }
        if owned_by_destination {
            dev_err!(
                dev,
                "VF setting {} is {:#x} on the source PF, {:#x} here, and the destination's administrator owns it\n",
                field.name(),
                want,
                have
            );
            return Err(EREMCHG);
        }
        let ivi = to_ivi(src);
        // SAFETY: as in `get`; `ivi` lives across the call.
        let ret = unsafe { bindings::ivf_pf_set_vf_config(pdev, field as u32, &ivi) };
        if ret != 0 {
            dev_err!(
                dev,
                "the destination PF cannot set VF {} to {:#x} (it has {:#x}): error {}\n",
                field.name(),
                want,
                have,
                ret
            );
            return Err(Error::from_errno(ret));
        }
    }
    Ok(())
}
