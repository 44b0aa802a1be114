// SPDX-License-Identifier: GPL-2.0

//! The administrator's settings half of the PF-side state channel: read on
//! the source with `ndo_get_vf_config`; on the destination compared and, on
//! any difference, refused (the default: the destination's administrator
//! owns them), or applied with `ndo_set_vf_*` where the administrator set
//! `admin_settings_owned_by_destination=0`. Decided before anything is
//! changed, undone if the load fails later (Documentation/pf-channel.rst).

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use kernel::pci::Device as PciDevice;
use kernel::prelude::*;

use crate::common::admin::{AdminConfig, AdminField};
use crate::common::bits::{vlan_id, vlan_priority};
use crate::common::bytes::copy_into;
use crate::ffi::bindings;
use crate::ffi::pf::{get_vf_config, set_vf_config};
use crate::log_limit::{user_line, SHARED_LINES};

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
pub(crate) fn get(vf: &PciDevice) -> Result<Option<AdminConfig>> {
    let ivi = match get_vf_config(vf) {
        Ok(ivi) => ivi,
        Err(e) if e == EOPNOTSUPP || e == ENODEV => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut mac = [0u8; 6];
    copy_into(&mut mac, &ivi.mac);
    Ok(Some(AdminConfig {
        mac,
        vlan: vlan_id(ivi.vlan),
        qos: vlan_priority(ivi.qos),
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
    vf: &PciDevice,
    src: &AdminConfig,
    vf_mac: Option<[u8; 6]>,
    owned_by_destination: bool,
) -> Result<AdminPlan> {
    let Some(cur) = get(vf)? else {
        user_line!(
            SHARED_LINES,
            dev_err,
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
            user_line!(SHARED_LINES, dev_err, dev,
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

fn set(vf: &PciDevice, field: AdminField, c: &AdminConfig) -> Result {
    set_vf_config(vf, field, &to_ivi(c))
}

/// Sets the VF's spoof checking again to what `c` says (the administrator's
/// current setting), after a PF driver turned it off behind its back.
pub(crate) fn reapply_spoofchk(vf: &PciDevice, c: &AdminConfig) -> Result {
    set(vf, AdminField::SpoofChk, c)
}

impl AdminPlan {
    /// Whether applying it changes any setting.
    pub(crate) fn changes_anything(&self) -> bool {
        !self.fields.is_empty()
    }

    /// Sets the planned fields. On a failure the fields already set are put
    /// back to the destination's own values before the error returns.
    pub(crate) fn apply(&self, dev: &kernel::device::Device, vf: &PciDevice) -> Result {
        for (i, &field) in self.fields.iter().enumerate() {
            if let Err(e) = set(vf, field, &self.want) {
                let (want, have) = self.want.differs(&self.before, field).unwrap_or_default();
                user_line!(
                    SHARED_LINES,
                    dev_err,
                    dev,
                    "the destination PF cannot set VF {} to {:#x} (it has {:#x}): error {}\n",
                    field.name(),
                    want,
                    have,
                    e.to_errno()
                );
                self.undo_first(dev, vf, i);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Puts every planned field back to the destination's own value, for a
    /// load that failed after [`AdminPlan::apply`].
    pub(crate) fn undo(&self, dev: &kernel::device::Device, vf: &PciDevice) {
        self.undo_first(dev, vf, self.fields.len());
    }

    fn undo_first(&self, dev: &kernel::device::Device, vf: &PciDevice, n: usize) {
        for &field in self.fields.iter().take(n).rev() {
            if let Err(e) = set(vf, field, &self.before) {
                user_line!(
                    SHARED_LINES,
                    dev_err,
                    dev,
                    "could not restore VF {} after a failed load: error {}\n",
                    field.name(),
                    e.to_errno()
                );
            }
        }
    }
}
