// SPDX-License-Identifier: GPL-2.0

//! The administrator's settings half of the PF-side state channel: read on
//! the source with `ndo_get_vf_config`; on the destination compared and, on
//! any difference, refused (the default: the destination's administrator
//! owns them), or applied with `ndo_set_vf_*` where the administrator set
//! `admin_settings_owned_by_destination=0`. Decided before anything is
//! changed, undone if the load fails later (Documentation/pf-channel.rst).

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

/// What a load will change at the PF, decided before anything is changed:
/// the fields to set to the stream's values, and the destination's own
/// settings to return to should the load fail after them.
pub(crate) struct AdminPlan {
    want: AdminConfig,
    before: AdminConfig,
    fields: KVec<AdminField>,
}

/// Decides what the stream's settings `src` may change on the destination
/// VF, touching nothing.
///
/// By default (`admin_settings_owned_by_destination=1`) the destination's
/// administrator owns its settings: a stream that asks for other settings is
/// refused with `EREMCHG`, naming the setting and both values, so a crafted
/// stream can neither lift a port VLAN, spoof checking or a rate limit nor
/// gain trust or another tenant's MAC. Only an administrator who sets the
/// parameter to 0 lets the stream's settings be applied.
///
/// `vf_mac` is the MAC the VF set itself through its mailbox: that one is the
/// mailbox replay's to restore (the PF driver checks it as it would the
/// guest's own request), and forcing it here would make it an administrator's
/// MAC the guest could no longer change.
pub(crate) fn plan(
    dev: &kernel::device::Device,
    pdev: *mut pci_dev,
    src: &AdminConfig,
    vf_mac: Option<[u8; 6]>,
    owned_by_destination: bool,
) -> Result<AdminPlan> {
    let Some(cur) = get(pdev)? else {
        dev_err!(
            dev,
            "the destination PF reports no VF settings; the source's cannot be honoured\n"
        );
        return Err(EOPNOTSUPP);
    };
    let mut fields = KVec::new();
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
                "resume: VF setting {} is {:#x} in the stream, {:#x} here, and the destination's administrator owns it (admin_settings_owned_by_destination=1)\n",
                field.name(),
                want,
                have
            );
            return Err(EREMCHG);
        }
        fields.push(field, GFP_KERNEL)?;
    }
    Ok(AdminPlan {
        want: *src,
        before: cur,
        fields,
    })
}

fn set(pdev: *mut pci_dev, field: AdminField, c: &AdminConfig) -> i32 {
    let ivi = to_ivi(c);
    // SAFETY: as in `get`; `ivi` lives across the call.
    unsafe { bindings::ivf_pf_set_vf_config(pdev, field as u32, &ivi) }
}

impl AdminPlan {
    /// Sets the planned fields. On a failure the fields already set are put
    /// back to the destination's own values before the error returns.
    pub(crate) fn apply(&self, dev: &kernel::device::Device, pdev: *mut pci_dev) -> Result {
        for (i, &field) in self.fields.iter().enumerate() {
            let ret = set(pdev, field, &self.want);
            if ret != 0 {
                let (want, have) = self.want.differs(&self.before, field).unwrap_or_default();
                dev_err!(
                    dev,
                    "the destination PF cannot set VF {} to {:#x} (it has {:#x}): error {}\n",
                    field.name(),
                    want,
                    have,
                    ret
                );
                self.undo_first(dev, pdev, i);
                return Err(Error::from_errno(ret));
            }
        }
        Ok(())
    }

    /// Puts every planned field back to the destination's own value, for a
    /// load that failed after [`AdminPlan::apply`].
    pub(crate) fn undo(&self, dev: &kernel::device::Device, pdev: *mut pci_dev) {
        self.undo_first(dev, pdev, self.fields.len());
    }

    fn undo_first(&self, dev: &kernel::device::Device, pdev: *mut pci_dev, n: usize) {
        for &field in self.fields.iter().take(n).rev() {
            let ret = set(pdev, field, &self.before);
            if ret != 0 {
                dev_err!(
                    dev,
                    "could not restore VF {} after a failed load: error {}\n",
                    field.name(),
                    ret
                );
            }
        }
    }
}
