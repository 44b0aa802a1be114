// SPDX-License-Identifier: GPL-2.0

//! A hostile VFIO user: BAR0 accesses of every shape the region file
//! accepts, around each page the driver traps. None may crash or warn in
//! the kernel; each either completes or fails with a clean errno, and what
//! was written reaches the register as a plain vfio-pci would write it.

use ivf_common::regs;
use ivf_vfio::uapi::VFIO_PCI_BAR0_REGION_INDEX as BAR0;
use ivf_vfio::Device;

use crate::host;
use crate::ktap::{s, Outcome, Test};
use crate::{ensure, ensure_eq, tests};

/// The tests of this file, in run order.
pub const TESTS: &[&Test] = tests![hostile_bar_access_shapes, hostile_ioeventfd_refused];

const MAP: &regs::RegMap = &regs::IGB;
const PAGE: u64 = 4096;
/// Access sizes: every size up to two words, the snoop's 64-byte buffer and
/// its neighbours, a page and its neighbours, two pages.
const SIZES: &[usize] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 60, 63, 64, 65, 68, 128, 256, 4092, 4095, 4096, 4097, 4100,
    8192,
];
/// Offsets relative to a trapped page's start: before it, on its edges,
/// inside it and straddling its end.
const OFFSETS: &[i64] = &[-8, -4, -1, 0, 1, 2, 4, 0x7fc, 0xffc, 0xfff];

fn hostile_bar_access_shapes() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let since = host::dmesg_lines().len();
    let dev = s(Device::open_default(vf))?;
    let bar_len = s(dev.region_info(BAR0))?.size;
    let pages = [
        u64::from(MAP.mailbox_page()) * PAGE,
        u64::from(MAP.rx_tail_page()) * PAGE,
    ];
    let (mut done, mut refused) = (0u32, 0u32);
    for &page in &pages {
        for &rel in OFFSETS {
            let Some(off) = page.checked_add_signed(rel) else {
                continue;
            };
            for &len in SIZES {
                // Zeros: a stopped queue and masked interrupts, whatever
                // register they land on.
                let buf = vec![0u8; len];
                let mut back = vec![0u8; len];
                let w = dev.write_region(BAR0, off, &buf);
                let r = dev.read_region(BAR0, off, &mut back);
                let inside = off + len as u64 <= bar_len;
                match (w.is_ok(), r.is_ok(), inside) {
                    (true, true, true) => done += 1,
                    // The core refuses what runs past the BAR's end.
                    (false, false, false) | (true, true, false) => refused += 1,
                    _ => {
                        return Err(format!(
                            "{len} bytes at BAR0 {off:#x} (BAR is {bar_len:#x}): write {w:?}, read {r:?}"
                        ))
                    }
                }
            }
            // Once per offset, all sizes: a complaint comes from within the
            // access's syscall, so this still names where it happened (and
            // reading the log after each of the 460 accesses cost 80 s).
            let bad = host::kernel_complaints(since);
            ensure!(
                bad.is_empty(),
                "after the accesses of {} sizes at BAR0 {off:#x}:\n{}",
                SIZES.len(),
                bad.join("\n")
            );
        }
    }
    // The trapped registers still take a plain write.
    let rdt = u64::from(MAP.rx.tail);
    s(dev.bar0_write32(rdt, 5))?;
    ensure_eq!(s(dev.bar0_read32(rdt))?, 5, "RDT after the shapes");
    s(dev.bar0_write32(rdt, 0))?;
    s(dev.reset())?;
    println!(
        "# hostile_bar_access_shapes: {done} accesses inside BAR0 ({bar_len:#x}), {refused} past its end, {} sizes x {} offsets x {} trapped pages",
        SIZES.len(),
        OFFSETS.len(),
        pages.len()
    );
    Ok(())
}

/// `VFIO_DEVICE_IOEVENTFD` (`_IO(';', 100 + 16)`) is refused whatever its
/// offset: the core would write the register past the driver's traps, and
/// reads its argument again after any check the driver could make.
fn hostile_ioeventfd_refused() -> Outcome {
    use std::os::fd::AsRawFd;
    const VFIO_DEVICE_IOEVENTFD: libc::c_ulong = (b';' as libc::c_ulong) << 8 | (100 + 16);
    const SIZE_32: u32 = 1 << 2;
    let vf = host::need_vfs(1)?[0];
    let dev = s(Device::open_default(vf))?;
    // SAFETY: eventfd(2) with no flags returns a new fd or -1.
    let efd = unsafe { libc::eventfd(0, 0) };
    ensure!(efd >= 0, "eventfd: {}", std::io::Error::last_os_error());
    let mut results = Vec::new();
    for (what, offset) in [
        ("the mailbox page", u64::from(MAP.mbx_mem)),
        (
            "the RX tail page",
            u64::from(MAP.rx_tail_page()) * PAGE + 0x18,
        ),
        ("an untrapped page", 3 * PAGE),
    ] {
        // struct vfio_device_ioeventfd: argsz, flags, offset, data, fd, reserved.
        let mut arg = [0u8; 32];
        arg[0..4].copy_from_slice(&32u32.to_le_bytes());
        arg[4..8].copy_from_slice(&SIZE_32.to_le_bytes());
        arg[8..16].copy_from_slice(&((u64::from(BAR0) << 40) | offset).to_le_bytes());
        arg[24..28].copy_from_slice(&efd.to_le_bytes());
        // SAFETY: `arg` is a complete struct for the kernel to read.
        let r = unsafe { libc::ioctl(dev.as_raw_fd(), VFIO_DEVICE_IOEVENTFD, arg.as_mut_ptr()) };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        results.push((what, r, errno));
    }
    // SAFETY: our eventfd.
    unsafe { libc::close(efd) };
    for (what, r, errno) in results {
        ensure!(
            r == -1 && errno == libc::EPERM,
            "an ioeventfd on {what}: ioctl returned {r} (errno {errno}), not EPERM"
        );
    }
    Ok(())
}
