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
