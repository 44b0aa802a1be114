// SPDX-License-Identifier: GPL-2.0

//! The PF's side of the data path: raw frames on the PF netdev
//! ([`PfPort`], shared with ivf-bench through ivf-guest), and the PF's
//! registers.

use std::io;

pub use ivf_guest::pf::PfPort;

/// Reads `count` 32-bit registers of the PF's BAR0 from `offset`, through a
/// read-only mapping of its sysfs resource file (the PF driver keeps it).
pub fn read_pf_regs(pf: &str, offset: usize, count: usize) -> Result<Vec<u32>, String> {
    let path = format!("/sys/bus/pci/devices/{pf}/resource0");
    let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    let len = offset + 4 * count;
    // SAFETY: a fresh read-only shared mapping of the PF's BAR, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap {path}: {}", io::Error::last_os_error()));
    }
    let regs = (0..count)
        // SAFETY: inside the mapping, aligned; MMIO needs volatile.
        .map(|i| unsafe {
            p.cast::<u8>()
                .add(offset + 4 * i)
                .cast::<u32>()
                .read_volatile()
        })
        .collect();
    // SAFETY: unmapping what we mapped.
    unsafe { libc::munmap(p, len) };
    Ok(regs)
}

/// The valid receive-address entries (RAR) of a pool, as (entry, MAC).
pub type PoolRars = Vec<(usize, [u8; 6])>;

/// What the igb PF's switch holds for pool `vf`: the valid receive-address
/// entries (RAR) that deliver to it, and the VLAN IDs of the VLAN filters
/// (VLVF) that do.
pub fn pool_filters(pf: &str, vf: u32) -> Result<(PoolRars, Vec<u16>), String> {
    use ivf_common::bits::{IgbRar, IgbVlvf};
    let mut rars = Vec::new();
    for n in 0..IgbRar::COUNT {
        let r = read_pf_regs(pf, IgbRar::offset(n) as usize, 2)?;
        let e = IgbRar {
            low: r[0],
            high: r[1],
        };
        if e.valid() && e.has_pool(vf) {
            rars.push((n, e.mac()));
        }
    }
    let vlans = read_pf_regs(pf, IgbVlvf::OFFSET as usize, IgbVlvf::COUNT)?
        .into_iter()
        .map(IgbVlvf)
        .filter(|v| v.valid() && v.has_pool(vf))
        .map(|v| v.vid())
        .collect();
    Ok((rars, vlans))
}

/// Every frame on the NIC's wire so far, from the outer QEMU's capture
/// (`IVF_WIRE`, a pcap tools/vm/run has it write as frames pass).
pub fn wire_frames() -> Result<Vec<Vec<u8>>, String> {
    let path =
        std::env::var("IVF_WIRE").map_err(|_| "IVF_WIRE not set (run under tools/vm/run)")?;
    let data = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    if data.len() < 24 || data[..4] != [0xd4, 0xc3, 0xb2, 0xa1] {
        return Err(format!("{path}: not a little-endian pcap"));
    }
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        let end = (off + 16 + caplen).min(data.len());
        frames.push(data[off + 16..end].to_vec());
        off = end;
    }
    Ok(frames)
}

/// The RARP frames on the wire from `mac`: the VLAN ID of each (`None`
/// untagged), in wire order.
pub fn wire_rarps_from(mac: [u8; 6]) -> Result<Vec<Option<u16>>, String> {
    Ok(wire_frames()?
        .iter()
        .filter(|f| f.len() >= 42 && f[..6] == [0xff; 6] && f[6..12] == mac)
        .filter_map(|f| match u16::from_be_bytes([f[12], f[13]]) {
            0x8035 => Some(None),
            0x8100 if f.len() >= 46 && u16::from_be_bytes([f[16], f[17]]) == 0x8035 => {
                Some(Some(u16::from_be_bytes([f[14], f[15]]) & 0xfff))
            }
            _ => None,
        })
        .collect())
}
