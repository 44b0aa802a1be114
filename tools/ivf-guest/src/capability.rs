// SPDX-License-Identifier: GPL-2.0

//! The guest's side of the driver's migration capability: found by walking
//! the VF's capability list through the VFIO config region, as a guest
//! driver walks it in its own config space (Documentation/guest-capability.rst).

use ivf_common::guest_cap::{self, CapView, CAP_ID_VNDR, CAP_LIST, LEN};
use ivf_vfio::uapi::VFIO_PCI_CONFIG_REGION_INDEX;
use ivf_vfio::Device;

/// The capability as found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its offset in config space.
    pub at: u8,
    /// What it says.
    pub view: CapView,
}

fn read(dev: &Device, at: usize, buf: &mut [u8]) -> Result<(), String> {
    dev.read_region(VFIO_PCI_CONFIG_REGION_INDEX, at as u64, buf)
        .map_err(|e| format!("config read at {at:#x}: {e}"))
}

/// The standard capabilities in list order, as (offset, ID).
pub fn capabilities(dev: &Device) -> Result<Vec<(u8, u8)>, String> {
    let mut b = [0u8; 2];
    read(dev, CAP_LIST, &mut b[..1])?;
    let mut pos = usize::from(b[0] & !3);
    let mut out = Vec::new();
    // At most (256 - 64) / 4 capabilities: a longer list loops.
    while pos != 0 && out.len() < 48 {
        read(dev, pos, &mut b)?;
        out.push((pos as u8, b[0]));
        pos = usize::from(b[1] & !3);
    }
    Ok(out)
}

/// The driver's migration capability, if the VF shows one: the first
/// Vendor Specific capability with its signature.
pub fn find(dev: &Device) -> Result<Option<Found>, String> {
    for (at, id) in capabilities(dev)? {
        if id != CAP_ID_VNDR {
            continue;
        }
        let mut bytes = [0u8; LEN];
        read(dev, usize::from(at), &mut bytes)?;
        if let Ok(view) = guest_cap::parse(&bytes) {
            return Ok(Some(Found { at, view }));
        }
    }
    Ok(None)
}
