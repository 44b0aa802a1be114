// SPDX-License-Identifier: GPL-2.0

//! The guest-visible migration capability (Documentation/guest-capability.rst),
//! read as a guest reads it: through the VFIO config region, by walking the
//! capability list (`ivf_guest::capability`).

use std::time::Duration;

use ivf_common::guest_cap::{self, offers, restored, CAP_LIST, LEN};
use ivf_guest::capability::{self, Found};
use ivf_migrate::{MigrateOptions, Vm};
use ivf_vfio::sysfs::{self, Bdf, DirtyTracking};
use ivf_vfio::uapi::VFIO_PCI_CONFIG_REGION_INDEX;
use ivf_vfio::Device;

use crate::host;
use crate::ktap::{s, Outcome, Test};
use crate::migration::{e, goto, load, open, program, save};
use crate::{ensure, ensure_eq, tests};

/// This suite, in run order.
pub static TESTS: &[&Test] = tests![
    capability_absent_by_default,
    capability_discovered,
    capability_guest_writes_ignored,
    capability_generation_kept_across_reset,
    capability_generation_changes_on_resume,
    capability_generation_changes_across_live_migration,
];

/// Shows (or hides) the capability on `vfs` for the scope of the value;
/// the default (off) comes back on drop.
struct Shown(Vec<Bdf>);

impl Shown {
    fn on(vfs: &[Bdf]) -> Result<Shown, String> {
        for &vf in vfs {
            s(sysfs::set_guest_capability(vf, true))?;
        }
        Ok(Shown(vfs.to_vec()))
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        for &vf in &self.0 {
            let _ = sysfs::set_guest_capability(vf, false);
        }
    }
}

fn found(dev: &Device, vf: Bdf) -> Result<Found, String> {
    capability::find(dev)?.ok_or_else(|| {
        format!(
            "{vf}: no migration capability in the list {:x?}",
            capability::capabilities(dev).unwrap_or_default()
        )
    })
}

fn capability_absent_by_default() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    ensure!(
        !s(sysfs::guest_capability(vf))?,
        "the module's default is off (guest_capability=N)"
    );
    let dev = open(vf)?;
    let caps = capability::capabilities(&dev)?;
    ensure!(
        capability::find(&dev)?.is_none(),
        "{vf}: a migration capability while switched off: {caps:x?}"
    );
    // The VF's own list, unchanged: PCIe and MSI-X (in the order the
    // device links them).
    let mut ids: Vec<u8> = caps.iter().map(|c| c.1).collect();
    ids.sort_unstable();
    ensure_eq!(ids, vec![0x10, 0x11], "{vf}: capability IDs {caps:x?}");
    Ok(())
}

fn capability_discovered() -> Outcome {
    let vfs = host::need_vfs(1)?;
    let vf = vfs[0];
    let _on = Shown::on(&vfs)?;
    ensure_eq!(
        sysfs::driver_attr(vf, "guest_capability_offset"),
        Some("-1".to_string()),
        "{vf}: no place while closed"
    );
    let dev = open(vf)?;
    let f = found(&dev, vf)?;
    println!(
        "# capability_discovered: {vf}: at {:#x}, generation {:#010x}, offers {:#x}",
        f.at, f.view.generation, f.view.offers
    );
    // Linked last: the VF's last capability's next pointer leads to it.
    let caps = capability::capabilities(&dev)?;
    ensure_eq!(
        caps.last().copied(),
        Some((f.at, 0x09)),
        "{vf}: the last capability"
    );
    let mut ids: Vec<u8> = caps.iter().map(|c| c.1).collect();
    ids.sort_unstable();
    ensure_eq!(
        ids,
        vec![0x09, 0x10, 0x11],
        "{vf}: capability IDs {caps:x?}"
    );
    ensure_eq!(f.at, 0xe8, "{vf}: its place on an 82576 VF");
    ensure_eq!(
        sysfs::driver_attr(vf, "guest_capability_offset"),
        Some("0xe8".to_string()),
        "{vf}: sysfs says where it is"
    );
    let mut raw = [0u8; LEN];
    s(dev.read_region(VFIO_PCI_CONFIG_REGION_INDEX, u64::from(f.at), &mut raw))?;
    ensure_eq!(raw[guest_cap::off::NEXT], 0, "{vf}: the last capability");
    ensure_eq!(
        usize::from(raw[guest_cap::off::LENGTH]),
        LEN,
        "{vf}: length"
    );
    ensure_eq!(&raw[4..8], b"IVFM", "{vf}: signature");
    let device = s(sysfs::dirty_tracking(vf))? == DirtyTracking::Device;
    let want = offers::MIGRATION
        | if device {
            offers::DEVICE_DIRTY_TRACKING
        } else {
            0
        };
    ensure_eq!(
        f.view.offers,
        want,
        "{vf}: offers (dirty tracking {device})"
    );
    ensure_eq!(f.view.restored, 0, "{vf}: nothing restored on a fresh open");
    ensure_eq!(
        f.view.generation,
        s(sysfs::guest_generation(vf))?,
        "{vf}: the generation sysfs shows"
    );
    // Every access size sees the same bytes.
    for size in [1usize, 2, 4] {
        for at in (usize::from(f.at)..usize::from(f.at) + LEN).step_by(size) {
            let mut b = [0u8; 4];
            s(dev.read_region(VFIO_PCI_CONFIG_REGION_INDEX, at as u64, &mut b[..size]))?;
            let off = at - usize::from(f.at);
            ensure_eq!(
                &b[..size],
                &raw[off..off + size],
                "{vf}: {size}-byte read at {at:#x}"
            );
        }
    }
    // The header still reads through: the list pointer is the VF's own.
    let mut p = [0u8; 1];
    s(dev.read_region(VFIO_PCI_CONFIG_REGION_INDEX, CAP_LIST as u64, &mut p))?;
    ensure!(
        p[0] != f.at && Some(p[0]) == caps.first().map(|c| c.0),
        "{vf}: the list starts at {:#x}",
        p[0]
    );
    Ok(())
}

fn capability_guest_writes_ignored() -> Outcome {
    let vfs = host::need_vfs(1)?;
    let vf = vfs[0];
    let _on = Shown::on(&vfs)?;
    let dev = open(vf)?;
    let f = found(&dev, vf)?;
    let at = u64::from(f.at);
    let mut before = [0u8; 256];
    s(dev.read_region(VFIO_PCI_CONFIG_REGION_INDEX, 0, &mut before))?;
    // Garbage at every size, at every offset of the capability, and one
    // write spanning the PCIe capability's last dword and the capability.
    for size in [1usize, 2, 4] {
        for off in (0..LEN as u64).step_by(size) {
            let junk = [0xa5u8, 0x5a, 0xff, 0x00];
            s(dev.write_region(VFIO_PCI_CONFIG_REGION_INDEX, at + off, &junk[..size]))?;
        }
    }
    s(dev.write_region(VFIO_PCI_CONFIG_REGION_INDEX, at - 4, &[0xff; 12]))?;
    let mut after = [0u8; 256];
    s(dev.read_region(VFIO_PCI_CONFIG_REGION_INDEX, 0, &mut after))?;
    let start = usize::from(f.at);
    ensure_eq!(
        &after[start..start + LEN],
        &before[start..start + LEN],
        "{vf}: the capability after guest writes"
    );
    ensure_eq!(found(&dev, vf)?, f, "{vf}: still found, unchanged");
    // The device is still the VF it was.
    ensure_eq!(e(dev.config_read16(0))?, 0x8086, "{vf}: vendor ID");
    Ok(())
}

fn capability_generation_kept_across_reset() -> Outcome {
    let vfs = host::need_vfs(1)?;
    let vf = vfs[0];
    let _on = Shown::on(&vfs)?;
    let dev = open(vf)?;
    let g0 = found(&dev, vf)?.view.generation;
    e(dev.reset())?;
    let f = found(&dev, vf)?;
    ensure_eq!(
        f.view.generation,
        g0,
        "{vf}: generation after VFIO_DEVICE_RESET"
    );
    ensure_eq!(f.view.restored, 0, "{vf}: restored after a reset");
    drop(dev);
    // A new user gets a new one: nothing of one user reaches the next.
    let dev = open(vf)?;
    ensure!(
        found(&dev, vf)?.view.generation != g0,
        "{vf}: generation {g0:#x} again after a reopen"
    );
    Ok(())
}

fn capability_generation_changes_on_resume() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let _on = Shown::on(&vfs)?;
    let src = open(vfs[0])?;
    let dst = open(vfs[1])?;
    let g_src = found(&src, vfs[0])?.view.generation;
    let g_dst = found(&dst, vfs[1])?.view.generation;
    program(&src, 7)?;
    let bytes = save(&src)?;
    load(&dst, &bytes)?;
    let f = found(&dst, vfs[1])?;
    ensure!(
        f.view.generation != g_dst,
        "{}: generation {:#x} before and after the resume",
        vfs[1],
        g_dst
    );
    ensure!(
        f.view.restored & restored::REGISTERS != 0,
        "{}: restored {:#x} lacks REGISTERS",
        vfs[1],
        f.view.restored
    );
    ensure!(
        f.view.restored & restored::ADMIN == 0,
        "{}: restored {:#x}: the destination owns its settings (default)",
        vfs[1],
        f.view.restored
    );
    goto(&dst, ivf_vfio::uapi::mig::RUNNING)?;
    goto(&src, ivf_vfio::uapi::mig::RUNNING)?;
    ensure_eq!(
        found(&src, vfs[0])?.view.generation,
        g_src,
        "{}: the source's generation (it was not resumed)",
        vfs[0]
    );
    // A refused stream changes nothing (the reopen drew a new generation:
    // nothing of one user reaches the next).
    drop(dst);
    let dst = open(vfs[1])?;
    let g1 = found(&dst, vfs[1])?.view.generation;
    ensure!(
        g1 != f.view.generation,
        "{}: a new user sees the last user's generation {:#x}",
        vfs[1],
        g1
    );
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    ensure!(load(&dst, &bad).is_err(), "a corrupt stream was loaded");
    ensure_eq!(
        found(&dst, vfs[1])?.view.generation,
        g1,
        "{}: generation after a refused stream",
        vfs[1]
    );
    Ok(())
}

fn capability_generation_changes_across_live_migration() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let _on = Shown::on(&vfs)?;
    let mut vm = s(Vm::start(vfs[0]))?;
    std::thread::sleep(Duration::from_millis(200));
    let before = found(vm.device(), vfs[0])?;
    s(vm.migrate(vfs[1], &MigrateOptions::default(), &mut |_| {}))?;
    let after = found(vm.device(), vfs[1])?;
    println!(
        "# capability_generation_changes_across_live_migration: {:#010x} on {} -> {:#010x} on {}, restored {:#x}",
        before.view.generation, vfs[0], after.view.generation, vfs[1], after.view.restored
    );
    ensure!(
        after.view.generation != before.view.generation,
        "the guest sees generation {:#x} before and after moving",
        before.view.generation
    );
    ensure_eq!(
        after.view.restored & (restored::REGISTERS | restored::FILTERS),
        restored::REGISTERS | restored::FILTERS,
        "restored on the destination (registers, and the guest's MAC replayed)"
    );
    let _ = vm.shutdown();
    Ok(())
}
